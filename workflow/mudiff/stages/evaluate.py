"""Stage `evaluate`: FA, RA, TA, MIA, ToW, ToW-MIA and cost of one unlearned model against retrain."""

from __future__ import annotations

import torch

from mudiff.io import read_json, read_table, write_json
from mudiff.metrics.mia import population_mia
from mudiff.metrics.tow import tow, tow_mia
from mudiff.stages import device_of, device_tags, load_data, load_model, sample_positions
from mudiff.tracking import job_run
from mudiff.training import per_sample, predict


def model_metrics(model, data, forget: torch.Tensor, retain: torch.Tensor, mia_seed: int) -> dict:
    """Accuracies (%) on F, R and test, and population MIA on F, of one model."""
    train = per_sample(predict(model, data, "train"), data.y_train)
    test = per_sample(predict(model, data, "test"), data.y_test)
    conf, correct = train["p_y"].cpu().numpy(), train["correct"].cpu().numpy()
    f, r = forget.cpu().numpy(), retain.cpu().numpy()
    return {
        "FA": 100 * float(correct[f].mean()),
        "RA": 100 * float(correct[r].mean()),
        "TA": 100 * float(test["correct"].float().mean()),
        "MIA": population_mia(conf[r], test["p_y"].cpu().numpy(), conf[f], seed=mia_seed),
    }


def compare(u: dict, r: dict) -> dict:
    return {
        "ToW": tow(u["FA"], u["RA"], u["TA"], r["FA"], r["RA"], r["TA"]),
        "ToW_MIA": tow_mia(u["MIA"], u["RA"], u["TA"], r["MIA"], r["RA"], r["TA"]),
    }


def run(job: dict) -> None:
    p, inp, out, wc = job["params"], job["input"], job["output"], job["wildcards"]
    device = device_of(job)
    with job_run(job) as mlrun:
        mlrun.set_tags(device_tags(device))
        prepared, data = load_data(inp["arrays"], device)
        forget = sample_positions(prepared, read_table(inp["forget_set"])["id"].to_numpy(), device)
        keep = torch.ones(len(prepared.y_train), dtype=torch.bool, device=device)
        keep[forget] = False
        retain = keep.nonzero().squeeze(1)
        seed = p["evaluate"]["mia_seed"]
        u = model_metrics(load_model(p["model"], prepared, inp["model"], device), data, forget, retain, seed)
        r = model_metrics(load_model(p["model"], prepared, inp["retrain_model"], device), data, forget, retain, seed)
        rec_u, rec_r = read_json(inp["record"]), read_json(inp["retrain_record"])
        result = {
            "method": wc["method"], "forget_set": wc["forget_set"],
            **u, **{f"{k}_retrain": v for k, v in r.items()}, **compare(u, r),
            "seconds": rec_u["seconds"], "seconds_retrain": rec_r["seconds"],
            "cost_ratio": rec_u["seconds"] / rec_r["seconds"], "peak_memory_mb": rec_u["peak_memory_mb"],
        }
        write_json(result, out["metrics"])
        mlrun.log_metrics({k: v for k, v in result.items() if isinstance(v, (int, float))})
        print(result)
