"""Stage `evaluate`: FA, RA, TA, MIA, ToW, ToW-MIA and cost of one unlearned model against retrain,
and whether the run moved its forget set at all (`mudiff.metrics.movement`: the inert rule).

Reads the prediction tables that the unlearn jobs wrote (no model, no torch), so an evaluation
job costs little more than its start-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from mudiff.io import read_ids, read_json, read_table, write_json
from mudiff.metrics.evaluation import compare, model_metrics
from mudiff.metrics.movement import forget_movement
from mudiff.options import build
from mudiff.sections import EvaluateConfig
from mudiff.tracking import job_run


@dataclass
class Params:
    evaluate: EvaluateConfig


def run(job: dict) -> None:
    p, inp, out, wc = build(Params, job["params"]), job["input"], job["output"], job["wildcards"]
    with job_run(job) as mlrun:
        forget_ids = read_ids(inp["forget_set"])
        seed = p.evaluate.mia_seed
        u = model_metrics(read_table(inp["predictions"]), forget_ids, seed)
        r = model_metrics(read_table(inp["retrain_predictions"]), forget_ids, seed)
        rec_u, rec_r = read_json(inp["record"]), read_json(inp["retrain_record"])
        result = {
            "seed": job["seed"],
            "method": wc["method"],
            "forget_set": wc["forget_set"],
            **u,
            **{f"{k}_retrain": v for k, v in r.items()},
            **compare(u, r),
            "seconds": rec_u["seconds"],
            "seconds_retrain": rec_r["seconds"],
            "cost_ratio": rec_u["seconds"] / rec_r["seconds"],
            "peak_memory_mb": rec_u["peak_memory_mb"],
            **forget_movement(read_table(inp["trace"]), p.evaluate.inert_flip_share),
        }
        mlrun.set_tags({"mudiff.inert": str(result["inert"]).lower()})
        write_json(result, out["metrics"])
        mlrun.log_metrics({k: v for k, v in result.items() if isinstance(v, (int, float))})
        print(result)
