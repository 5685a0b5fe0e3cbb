"""Stage `scores_bank`: the scores that need the model bank (memorization, privacy_risk).

Their compute time includes the bank's training time: that is what they cost.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from mudiff.io import read_arrays, read_json, write_json, write_table
from mudiff.scores import FROM_BANK
from mudiff.scores.memorization import memorization
from mudiff.scores.privacy_risk import privacy_risk
from mudiff.stages import device_of, device_tags, load_data, load_model
from mudiff.tracking import job_run
from mudiff.training import per_sample, predict


def run(job: dict) -> None:
    p, inp, out = job["params"], job["input"], job["output"]
    names = [n for n in p["scores"]["names"] if n in FROM_BANK]
    with job_run(job) as mlrun:  # a device refusal is then the run's recorded error
        device = device_of(job)
        mlrun.set_tags(device_tags(device))
        prepared, data = load_data(inp["arrays"], device)
        bank = read_arrays(inp["bank"])
        if not np.array_equal(bank["id_train"], prepared.id_train):
            raise ValueError(f"{inp['bank']}: bank ids do not match the prepared training ids")
        bank_seconds = read_json(inp["bank_summary"])["seconds"]
        table, seconds = pd.DataFrame({"id": prepared.id_train}), {}
        for name in names:
            start = time.perf_counter()
            if name == "memorization":
                values = memorization(bank["mask"], bank["correct_train"])
            elif name == "privacy_risk":
                model = load_model(p["model"], prepared, inp["model"], device)
                phi_target = per_sample(predict(model, data, "train"), data.y_train)["phi"].cpu().numpy()
                values = privacy_risk(phi_target, bank["phi_train"], bank["mask"])
            else:
                raise ValueError(f"score {name!r} has no implementation in this stage")
            seconds[name] = time.perf_counter() - start + bank_seconds
            table[name] = values
        write_table(table, out["scores"])
        write_json({"seconds": seconds, "bank_seconds": bank_seconds}, out["timings"])
        mlrun.log_metrics({f"seconds.{k}": v for k, v in seconds.items()})
        mlrun.log_metrics({f"nan.{k}": int(table[k].isna().sum()) for k in seconds})
        print(table.describe().T.to_string())
