"""Stage `scores`: the one table of per-sample scores keyed by id (the target-only and the bank
scores joined, in the config's order), and each score's compute time with the bank's."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mudiff.io import read_json, read_table, write_json, write_table
from mudiff.options import build
from mudiff.tracking import job_run


def join_scores(target: pd.DataFrame, bank: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """id, label and every score in `names` order; refuses tables whose ids differ."""
    if not np.array_equal(np.sort(target["id"].to_numpy()), np.sort(bank["id"].to_numpy())):
        raise ValueError("target and bank score tables cover different sample ids")
    table = target.merge(bank, on="id", how="left", validate="one_to_one")
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise ValueError(f"scores {missing} are in neither the target's nor the bank's table")
    return table[["id", "label", *names]]


@dataclass
class Params:
    names: list[str]  # every score of the study, in the config's order


def run(job: dict) -> None:
    p, inp, out = build(Params, job["params"]), job["input"], job["output"]
    with job_run(job) as mlrun:
        table = join_scores(read_table(inp["target_scores"]), read_table(inp["bank_scores"]), p.names)
        t_target, t_bank = read_json(inp["target_timings"]), read_json(inp["bank_timings"])
        both = {**t_target["seconds"], **t_bank["seconds"]}
        seconds = {n: both[n] for n in p.names}
        write_table(table, out["scores"])
        write_json({"seconds": seconds, "bank_seconds": t_bank["bank_seconds"]}, out["timings"])
        mlrun.log_metrics({f"seconds.{k}": v for k, v in seconds.items()})
        print(table.describe().T.to_string())
