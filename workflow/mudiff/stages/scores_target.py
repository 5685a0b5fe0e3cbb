"""Stage `scores_target`: every score that needs only the target model (its training dynamics,
its checkpoints, the held-out test set), so none of them waits for the bank. Also writes the
target's train embeddings (centroid_distance, knn_disagreement, entanglement scores of sets).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from mudiff.sections import CurvatureConfig, HoldoutKLConfig
from mudiff.io import load_checkpoints, read_table, write_arrays, write_json, write_table
from mudiff.models import build
from mudiff.scores import FROM_DYNAMICS, FROM_TARGET
from mudiff.scores import dynamics as dyn_scores
from mudiff.scores.centroid_distance import centroid_distance
from mudiff.scores.curvature import curvature
from mudiff.scores.grad_norm import cross_entropy_loss, grad_norm
from mudiff.scores.holdout_kl import finetune_on_holdout, symmetric_kl
from mudiff.scores.knn_disagreement import knn_disagreement
from mudiff.scores.margin import margin
from mudiff.stages import device_of, device_tags, load_data, load_model
from mudiff.tracking import job_run
from mudiff.training import embed, predict

DYNAMICS_INPUT = {"confidence": "p_y", "max_conf": "max_p", "entropy": "neg_entropy", "bi_acc": "correct", "forgetting_events": "correct"}


def dynamics_arrays(table: pd.DataFrame, ids: np.ndarray) -> dict[str, np.ndarray]:
    """(epochs, N) arrays from the long dynamics table, columns in the order of `ids`."""
    table = table.sort_values(["epoch", "id"])
    epochs = table["epoch"].nunique()
    table_ids = table["id"].to_numpy()[: len(table) // epochs]
    order = np.searchsorted(table_ids, ids)
    return {c: table[c].to_numpy().reshape(epochs, -1)[:, order] for c in ("p_y", "max_p", "neg_entropy", "correct")}


def run(job: dict) -> None:
    p, inp, out = job["params"], job["input"], job["output"]
    cfg = p["scores"]
    names = [n for n in cfg["names"] if n in FROM_DYNAMICS + FROM_TARGET]
    with job_run(job) as mlrun:  # a device refusal is then the run's recorded error
        device = device_of(job)
        mlrun.set_tags(device_tags(device))
        prepared, data = load_data(inp["arrays"], device)
        model = load_model(p["model"], prepared, inp["model"], device).eval()
        x_train, y_train = data.normalize(data.x_train), data.y_train
        table, seconds = pd.DataFrame({"id": prepared.id_train, "label": prepared.y_train}), {}

        def timed(name, compute):
            start = time.perf_counter()
            values = compute()
            seconds[name] = time.perf_counter() - start
            table[name] = values.cpu().numpy() if isinstance(values, torch.Tensor) else values

        start = time.perf_counter()
        emb = embed(model, data, "train").cpu().numpy()
        embed_seconds = time.perf_counter() - start
        if set(names) & set(FROM_DYNAMICS):
            dynamics = dynamics_arrays(read_table(inp["dynamics"]), prepared.id_train)
        for name in names:
            if name in FROM_DYNAMICS:
                timed(name, lambda: getattr(dyn_scores, name)(dynamics[DYNAMICS_INPUT[name]]))
            elif name == "centroid_distance":
                timed(name, lambda: centroid_distance(emb))
                seconds[name] += embed_seconds  # each embedding score pays for the embedding pass
            elif name == "knn_disagreement":
                timed(name, lambda: knn_disagreement(emb, prepared.y_train, cfg["knn_k"], device=device))
                seconds[name] += embed_seconds
            elif name == "margin":
                timed(name, lambda: margin(predict(model, data, "train"), y_train))
            elif name == "grad_norm":
                timed(name, lambda: grad_norm(cross_entropy_loss(model), x_train, y_train, cfg["curvature"]["batch_size"]))
            elif name == "curvature":
                cc = CurvatureConfig(**cfg["curvature"])

                def compute_curvature():
                    losses = []
                    for state in load_checkpoints(inp["checkpoints"]).values():
                        m = build(p["model"], prepared.shape, prepared.num_classes)
                        m.load_state_dict(state)
                        losses.append(cross_entropy_loss(m.to(device)))
                    return curvature(losses, x_train, y_train, cc.h, cc.batch_size)

                timed(name, compute_curvature)
            elif name == "holdout_kl":
                hk = HoldoutKLConfig(**cfg["holdout_kl"])

                def compute_holdout_kl():
                    tuned, epochs = finetune_on_holdout(
                        model, data.normalize(data.x_test), data.y_test, hk.lr, hk.max_epochs, hk.patience,
                        hk.batch_size, hk.momentum, hk.weight_decay, seed=job["seed"])
                    mlrun.log_metrics({"holdout_kl.epochs": epochs})
                    return symmetric_kl(predict(model, data, "train"), predict(tuned, data, "train"))

                timed(name, compute_holdout_kl)
        write_table(table, out["scores"])
        write_arrays(out["embeddings"], id_train=prepared.id_train, train=emb)
        write_json({"seconds": seconds, "embed_seconds": embed_seconds}, out["timings"])
        mlrun.log_metrics({f"seconds.{k}": v for k, v in seconds.items()})
        mlrun.log_metrics({f"nan.{k}": int(table[k].isna().sum()) for k in seconds})
        print(table.describe().T.to_string())
