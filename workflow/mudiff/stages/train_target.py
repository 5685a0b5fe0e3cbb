"""Stage `train_target`: the original (target) model on the whole train set, with training dynamics."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from mudiff.io import save_checkpoints, save_model, write_json, write_table
from mudiff.models import build as build_model
from mudiff.options import build
from mudiff.sections import TrainConfig
from mudiff.stages import device_of, device_tags, load_data, target_recipe
from mudiff.tracking import job_run
from mudiff.training import Dynamics, accuracy, fit


def dynamics_table(ids: np.ndarray, records: dict[str, np.ndarray]) -> pd.DataFrame:
    """Long table: one row per (epoch, id)."""
    epochs, n = records["p_y"].shape
    table = pd.DataFrame({"epoch": np.repeat(np.arange(1, epochs + 1), n), "id": np.tile(ids, epochs)})
    for name, values in records.items():
        table[name] = values.reshape(-1).astype(np.float32)
    table["correct"] = table["correct"].astype(bool)
    return table


def checkpoint_epochs(epochs: int, count: int) -> list[int]:
    """`count` evenly spaced epochs (1-based), the last one included."""
    return sorted({max(1, round(epochs * (i + 1) / count)) for i in range(count)})


@dataclass
class Params:
    model: str
    device: str
    train: TrainConfig


def run(job: dict) -> None:
    p = build(Params, job["params"])
    with job_run(job) as mlrun:  # a device refusal is then the run's recorded error
        device = device_of(p.device)
        mlrun.set_tags(device_tags(device))
        prepared, data = load_data(job["input"]["arrays"], device)
        torch.manual_seed(job["seed"])
        model = build_model(p.model, prepared.shape, prepared.num_classes, seed=job["seed"])
        recipe = target_recipe(p.train)
        dyn = Dynamics(recipe.epochs, len(prepared.y_train), device)
        keep = checkpoint_epochs(recipe.epochs, p.train.checkpoints)
        states: dict[int, dict] = {}

        def snapshot(m, epoch):
            if epoch in keep:
                states[epoch] = {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}

        start = time.perf_counter()
        fit(
            model,
            data,
            torch.arange(len(prepared.y_train), device=device),
            recipe,
            job["seed"],
            dynamics=dyn,
            on_epoch_end=snapshot,
            desc="target",
        )
        seconds = time.perf_counter() - start
        metrics = {
            "train_acc": accuracy(model, data, "train"),
            "test_acc": accuracy(model, data, "test"),
            "seconds": seconds,
        }
        save_model(model, job["output"]["model"])
        save_checkpoints(states, job["output"]["checkpoints"])
        write_table(dynamics_table(prepared.id_train, dyn.numpy()), job["output"]["dynamics"])
        write_json(metrics, job["output"]["metrics"])
        mlrun.log_metrics(metrics)
        print(
            f"target {p.model}: train {metrics['train_acc']:.2f}%, test {metrics['test_acc']:.2f}%, {seconds:.1f}s"
        )
