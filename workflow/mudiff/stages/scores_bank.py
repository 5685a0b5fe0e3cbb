"""Stage `scores_bank`: the scores that need the model bank (memorization, privacy_risk).

Each score runs through the registry (`mudiff.scores`), in the config's order. Their compute time
includes the bank's training time (`bank_seconds`): that is what they cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mudiff.io import write_json, write_table
from mudiff.options import build
from mudiff.scores import FROM_BANK
from mudiff.scores.inputs import Inputs, compute_scores
from mudiff.stages import device_of, device_tags
from mudiff.tracking import job_run


@dataclass
class Params:
    """The job's params: the target's model name, the device, and the scores section (`names`, and
    each score's hyperparameters as its block `<name>`, built by the score's own Params)."""

    model: str
    scores: dict
    device: str = "auto"


def run(job: dict) -> None:
    p, inp, out = build(Params, job["params"]), job["input"], job["output"]
    names = [n for n in p.scores["names"] if n in FROM_BANK]
    with job_run(job) as mlrun:  # a device refusal is then the run's recorded error
        device = device_of(p.device)
        mlrun.set_tags(device_tags(device))
        inputs = Inputs(inp, p.model, device, seed=job.get("seed", 0), log_metrics=mlrun.log_metrics)
        inputs.load("data", "bank")  # the target model is loaded by the first score that reads it
        table = pd.DataFrame({"id": inputs.ids})
        values, seconds = compute_scores(names, inputs, p.scores)
        for name in names:
            table[name] = values[name]
        write_table(table, out["scores"])
        write_json({"seconds": seconds, "bank_seconds": inputs.paid["bank"]}, out["timings"])
        mlrun.log_metrics({f"seconds.{k}": v for k, v in seconds.items()})
        mlrun.log_metrics({f"nan.{k}": int(table[k].isna().sum()) for k in seconds})
        print(table.describe().T.to_string())
