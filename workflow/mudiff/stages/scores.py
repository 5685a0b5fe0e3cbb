"""Stage `scores`: one table of per-sample scores keyed by id, with each score's compute time."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from mudiff.io import read_arrays, read_json, read_table, write_arrays, write_json, write_table
from mudiff.scores import dynamics as dyn_scores
from mudiff.scores.centroid_distance import centroid_distance
from mudiff.scores.memorization import memorization
from mudiff.stages import device_of, device_tags, load_data, load_model
from mudiff.tracking import job_run
from mudiff.training import embed

DYNAMICS_INPUT = {"confidence": "p_y", "max_conf": "max_p", "entropy": "neg_entropy", "bi_acc": "correct", "forgetting_events": "correct"}


def dynamics_arrays(table: pd.DataFrame, ids: np.ndarray) -> dict[str, np.ndarray]:
    """(epochs, N) arrays from the long dynamics table, columns in the order of `ids`."""
    table = table.sort_values(["epoch", "id"])
    epochs = table["epoch"].nunique()
    table_ids = table["id"].to_numpy()[: len(table) // epochs]
    order = np.searchsorted(table_ids, ids)
    return {c: table[c].to_numpy().reshape(epochs, -1)[:, order] for c in ("p_y", "max_p", "neg_entropy", "correct")}


def compute_scores(names: list[str], ids: np.ndarray, dynamics: dict | None, bank: dict | None, embeddings: np.ndarray | None, bank_seconds: float = 0.0):
    """The scores table (id + one column per score) and each score's compute time in seconds."""
    table, seconds = pd.DataFrame({"id": ids}), {}
    for name in names:
        start = time.perf_counter()
        if name == "memorization":
            values = memorization(bank["mask"], bank["correct_train"])
        elif name in DYNAMICS_INPUT:
            values = getattr(dyn_scores, name)(dynamics[DYNAMICS_INPUT[name]])
        elif name == "centroid_distance":
            values = centroid_distance(embeddings)
        else:
            raise ValueError(f"score {name!r} has no implementation in this stage")
        seconds[name] = time.perf_counter() - start + (bank_seconds if name == "memorization" else 0.0)
        table[name] = values
    return table, seconds


def run(job: dict) -> None:
    p, inp, out = job["params"], job["input"], job["output"]
    device = device_of(job)
    with job_run(job) as mlrun:
        mlrun.set_tags(device_tags(device))
        prepared, data = load_data(inp["arrays"], device)
        model = load_model(p["model"], prepared, inp["model"], device)
        start = time.perf_counter()
        emb = embed(model, data, "train").cpu().numpy()
        embed_seconds = time.perf_counter() - start
        bank = read_arrays(inp["bank"])
        if not np.array_equal(bank["id_train"], prepared.id_train):
            raise ValueError(f"{inp['bank']}: bank ids do not match the prepared training ids")
        dynamics = dynamics_arrays(read_table(inp["dynamics"]), prepared.id_train)
        bank_seconds = read_json(inp["bank_summary"])["seconds"]
        table, seconds = compute_scores(p["scores"], prepared.id_train, dynamics, bank, emb, bank_seconds)
        if "centroid_distance" in seconds:
            seconds["centroid_distance"] += embed_seconds
        table.insert(1, "label", prepared.y_train)
        write_table(table, out["scores"])
        write_arrays(out["embeddings"], id_train=prepared.id_train, train=emb)
        write_json({"seconds": seconds, "bank_seconds": bank_seconds}, out["timings"])
        mlrun.log_metrics({f"seconds.{k}": v for k, v in seconds.items()})
        mlrun.log_metrics({f"nan.{k}": int(table[k].isna().sum()) for k in seconds})
        print(table.describe().T.to_string())
