"""Stage `unlearn`: one method on one forget set, starting from the target model.

Records wall time, peak memory, and the forget set's per-sample phi and correctness before
unlearning (epoch 0) and after every epoch (meta-algorithms number epochs on across their steps).
Meta-algorithms also receive the scores table's rows of F, and what they note (steps, fallbacks)
goes to record.json and to MLflow tags `mudiff.note.*`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from mudiff import methods
from mudiff.device import peak_memory_mb, reset_peak_memory
from mudiff.forget_sets import validate_ids
from mudiff.io import read_ids, read_table, save_model, write_json, write_table
from mudiff.methods.base import UnlearnTask, check_finite
from mudiff.models import load as load_model
from mudiff.options import build
from mudiff.sections import TrainConfig
from mudiff.stages import device_of, device_tags, load_data, sample_positions, target_recipe
from mudiff.tracking import job_run
from mudiff.training import per_sample, predict, prediction_table


@dataclasses.dataclass
class Outcome:
    """What one unlearning run gives: the model, F's trace, its time and what the method noted."""

    model: torch.nn.Module
    trace: pd.DataFrame  # epoch, id, phi, correct (epoch 0 = the model before unlearning)
    seconds: float
    notes: dict
    retain_size: int


def unlearn_one(
    method_name: str,
    params,
    model,
    prepared,
    data,
    forget_ids: np.ndarray,
    model_name: str,
    train: TrainConfig,
    seed: int,
    forget_scores: pd.DataFrame | None = None,
) -> Outcome:
    """Run one method on one forget set from `model`, recording F after every epoch (the stage's science;
    the tuning command calls it too). Raises `DivergedError` where the method leaves a non-finite model."""
    device = data.device
    method = methods.get(method_name)
    forget = sample_positions(prepared, forget_ids, device)
    keep = torch.ones(len(prepared.y_train), dtype=torch.bool, device=device)
    keep[forget] = False
    retain = keep.nonzero().squeeze(1)
    trace, overhead = [], [0.0]

    def on_epoch_end(net, epoch):
        t = time.perf_counter()
        stats = per_sample(predict(net, data, "train", forget), data.y_train[forget])
        trace.append(
            pd.DataFrame(
                {
                    "epoch": epoch,
                    "id": forget_ids,
                    "phi": stats["phi"].cpu().numpy(),
                    "correct": stats["correct"].cpu().numpy(),
                }
            )
        )
        overhead[0] += time.perf_counter() - t

    on_epoch_end(model, 0)
    overhead[0] = 0.0
    task = UnlearnTask(
        data, forget, retain, model_name, target_recipe(train), seed, on_epoch_end, forget_scores
    )
    torch.manual_seed(seed)
    start = time.perf_counter()
    model = method.unlearn(model, task, params)
    seconds = time.perf_counter() - start - overhead[0]
    table = pd.concat(trace, ignore_index=True)
    # A diverged model (NaN or inf weights) must fail its job rather than be evaluated as a result.
    retrain = methods.split(method_name) == (None, "retrain")
    check_finite(model, data, method_name, params, task.target_recipe if retrain else None, table)
    return Outcome(model, table, seconds, task.notes, int(len(retain)))


@dataclass
class Params:
    model: str
    device: str
    train: TrainConfig  # how the target was trained: retrain reuses it
    hyper: dict  # the method's own block (built as its Params below)


def run(job: dict) -> None:
    p, inp, out = build(Params, job["params"]), job["input"], job["output"]
    method_name = job["wildcards"]["method"]
    params = build(methods.get(method_name).Params, p.hyper)
    with job_run(job) as mlrun:  # a device refusal is then the run's recorded error
        device = device_of(p.device)
        mlrun.set_tags(device_tags(device))
        prepared, data = load_data(inp["arrays"], device)
        forget_ids = validate_ids(read_ids(inp["forget_set"]), prepared.id_train, inp["forget_set"])
        model = load_model(p.model, prepared, inp["model"], device)
        forget_scores = None
        if "scores" in inp:
            forget_scores = read_table(inp["scores"]).set_index("id").reindex(forget_ids).reset_index()
        reset_peak_memory(device)
        done = unlearn_one(
            method_name,
            params,
            model,
            prepared,
            data,
            forget_ids,
            p.model,
            p.train,
            job["seed"],
            forget_scores,
        )
        record = {
            "method": method_name,
            "forget_set": job["wildcards"]["forget_set"],
            "seconds": done.seconds,
            "peak_memory_mb": peak_memory_mb(device),
            "device": str(device),
            "forget_size": len(forget_ids),
            "retain_size": done.retain_size,
            "params": dataclasses.asdict(params),
            "notes": done.notes,
        }
        save_model(done.model, out["model"])
        write_table(
            prediction_table(done.model, data, prepared.id_train, prepared.id_test), out["predictions"]
        )
        write_table(done.trace, out["trace"])
        write_json(record, out["record"])
        mlrun.log_metrics({"seconds": done.seconds, "peak_memory_mb": record["peak_memory_mb"]})
        mlrun.set_tags(
            {
                f"mudiff.note.{k}": json.dumps(v) if not isinstance(v, str) else v
                for k, v in done.notes.items()
            }
        )
        for epoch, frame in done.trace.groupby("epoch"):
            mlrun.log_metrics(
                {
                    "forget_acc": 100 * float(np.mean(frame["correct"])),
                    "forget_phi_mean": float(frame["phi"].mean()),
                },
                step=int(epoch),
            )
        print(
            f"{method_name} on {record['forget_set']}: {done.seconds:.2f}s, peak {record['peak_memory_mb']:.0f} MB"
        )
