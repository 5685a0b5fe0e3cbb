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

import numpy as np
import pandas as pd
import torch

from mudiff import methods
from mudiff.device import peak_memory_mb, reset_peak_memory
from mudiff.forget_sets import validate_ids
from mudiff.io import read_table, save_model, write_json, write_table
from mudiff.methods.base import UnlearnTask
from mudiff.stages import device_of, device_tags, load_data, load_model, sample_positions, target_recipe
from mudiff.tracking import job_run
from mudiff.training import per_sample, predict, prediction_table


def run(job: dict) -> None:
    p, inp, out = job["params"], job["input"], job["output"]
    method_name = job["wildcards"]["method"]
    method = methods.get(method_name)
    params = method.Params(**p["hyper"])
    with job_run(job) as mlrun:  # a device refusal is then the run's recorded error
        device = device_of(job)
        mlrun.set_tags(device_tags(device))
        prepared, data = load_data(inp["arrays"], device)
        forget_ids = validate_ids(read_table(inp["forget_set"])["id"].to_numpy(), prepared.id_train, inp["forget_set"])
        forget = sample_positions(prepared, forget_ids, device)
        keep = torch.ones(len(prepared.y_train), dtype=torch.bool, device=device)
        keep[forget] = False
        retain = keep.nonzero().squeeze(1)
        model = load_model(p["model"], prepared, inp["model"], device)

        trace, overhead = [], [0.0]

        def on_epoch_end(net, epoch):
            t = time.perf_counter()
            stats = per_sample(predict(net, data, "train", forget), data.y_train[forget])
            trace.append(pd.DataFrame({"epoch": epoch, "id": forget_ids, "phi": stats["phi"].cpu().numpy(), "correct": stats["correct"].cpu().numpy()}))
            overhead[0] += time.perf_counter() - t

        on_epoch_end(model, 0)
        overhead[0] = 0.0
        forget_scores = None
        if "scores" in inp:
            forget_scores = read_table(inp["scores"]).set_index("id").reindex(forget_ids).reset_index()
        task = UnlearnTask(data, forget, retain, p["model"], target_recipe(p["train"]), job["seed"], on_epoch_end, forget_scores)
        reset_peak_memory(device)
        torch.manual_seed(job["seed"])
        start = time.perf_counter()
        model = method.unlearn(model, task, params)
        seconds = time.perf_counter() - start - overhead[0]
        record = {
            "method": method_name, "forget_set": job["wildcards"]["forget_set"], "seconds": seconds,
            "peak_memory_mb": peak_memory_mb(device), "device": str(device), "forget_size": len(forget_ids),
            "retain_size": int(len(retain)), "params": dataclasses.asdict(params), "notes": task.notes,
        }
        save_model(model, out["model"])
        write_table(prediction_table(model, data, prepared.id_train, prepared.id_test), out["predictions"])
        write_table(pd.concat(trace, ignore_index=True), out["trace"])
        write_json(record, out["record"])
        mlrun.log_metrics({"seconds": seconds, "peak_memory_mb": record["peak_memory_mb"]})
        mlrun.set_tags({f"mudiff.note.{k}": json.dumps(v) if not isinstance(v, str) else v for k, v in task.notes.items()})
        for frame in trace:
            mlrun.log_metrics({"forget_acc": 100 * float(np.mean(frame["correct"])), "forget_phi_mean": float(frame["phi"].mean())}, step=int(frame["epoch"].iloc[0]))
        print(f"{method_name} on {record['forget_set']}: {seconds:.2f}s, peak {record['peak_memory_mb']:.0f} MB")
