"""Replicates: a study runs once per seed (`seeds` in config); the report gives every headline
number as the mean over the seeds with a t-based 95% interval (`intervals.mean_ci`).

Inputs are the per-seed tables stacked with a `seed` column; outputs are one row per cell with
`<metric>`, `<metric>_ci_low`, `<metric>_ci_high` and the number of seeds behind it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from mudiff.analysis.intervals import format_ci, mean_ci

EVALUATION_METRICS = ("FA", "RA", "TA", "MIA", "ToW", "ToW_MIA", "seconds", "cost_ratio")
MOVEMENT = (
    "forget_flip_share",
    "inert",
)  # did the run move F (mudiff.metrics.movement); `inert` averages to a share of seeds


def seed_of(path: str | Path) -> int:
    """The replicate seed of a path under `results/<study>/seed_<s>/`."""
    found = re.findall(
        r"(?:^|/)seed_(\d+)(?=/)", str(path)
    )  # the innermost: a study may itself be named seed_<n>
    if not found:
        raise ValueError(f"{path}: not inside a replicate's folder (results/<study>/seed_<s>/...)")
    return int(found[-1])


def by_seed(paths: list[str]) -> dict[int, list[str]]:
    """Paths grouped by their replicate seed, in the order given."""
    grouped: dict[int, list[str]] = {}
    for path in paths:
        grouped.setdefault(seed_of(path), []).append(path)
    return grouped


def summarise(df: pd.DataFrame, by: list[str], metrics: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """Per group of `by`: `seeds` (how many) and mean with 95% interval of every metric over the rows."""
    rows = []
    for key, group in df.groupby(by, sort=False, dropna=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        row["seeds"] = int(group["seed"].nunique()) if "seed" in group else len(group)
        for metric in metrics:
            ci = mean_ci(group[metric]) if metric in group else mean_ci([])
            row[metric], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = (
                ci["mean"],
                ci["ci_low"],
                ci["ci_high"],
            )
        rows.append(row)
    columns = [*by, "seeds", *(f"{m}{s}" for m in metrics for s in ("", "_ci_low", "_ci_high"))]
    return pd.DataFrame(rows, columns=columns)


def evaluation_summary(evaluation: pd.DataFrame) -> pd.DataFrame:
    """Per method and forget set: every evaluation metric, mean and interval over the seeds."""
    moved = [m for m in MOVEMENT if m in evaluation]
    ev = evaluation.assign(inert=evaluation["inert"].astype(float)) if "inert" in evaluation else evaluation
    return summarise(ev, ["method", "forget_set"], (*EVALUATION_METRICS, *moved))


def formatted(summary: pd.DataFrame, metrics: list[str] | tuple[str, ...], fmt: str = ".3f") -> pd.DataFrame:
    """The summary with each metric as text: 'mean' for one seed, 'mean [low, high]' for several."""
    out = summary.drop(columns=[c for c in summary.columns if c.endswith(("_ci_low", "_ci_high"))]).copy()
    for metric in metrics:
        out[metric] = [
            format_ci({"mean": m, "ci_low": lo, "ci_high": hi}, fmt) if np.isfinite(m) else ""
            for m, lo, hi in zip(summary[metric], summary[f"{metric}_ci_low"], summary[f"{metric}_ci_high"])
        ]
    return out


def t_errorbar(values) -> tuple[float, float]:
    """A seaborn `errorbar` callable: the 95% t-interval of the mean (no bar for one value)."""
    ci = mean_ci(values)
    if not np.isfinite(ci["ci_low"]):
        return ci["mean"], ci["mean"]
    return ci["ci_low"], ci["ci_high"]
