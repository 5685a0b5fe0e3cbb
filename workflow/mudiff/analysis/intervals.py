"""Mean and t-based 95% interval over seeds: every headline number is reported this way (SPEC)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def mean_ci(values, level: float = 0.95) -> dict:
    """mean, ci_low, ci_high, n of the finite values; the interval is NaN with fewer than two."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return {"mean": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": 0}
    mean = float(x.mean())
    if n < 2:
        return {"mean": mean, "ci_low": np.nan, "ci_high": np.nan, "n": 1}
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": n}


def over_seeds(df: pd.DataFrame, by: list[str], value: str, level: float = 0.95) -> pd.DataFrame:
    """`mean_ci` of `value` per group (e.g. by method and forget set, over the seed column's rows)."""
    rows = [
        {**dict(zip(by, key if isinstance(key, tuple) else (key,))), **mean_ci(g[value], level)}
        for key, g in df.groupby(by, sort=False)
    ]
    return pd.DataFrame(rows, columns=[*by, "mean", "ci_low", "ci_high", "n"])


def format_ci(summary: dict, fmt: str = ".3f") -> str:
    """'0.912 [0.901, 0.923]', or '0.912' (n = 1) when there is no interval."""
    if not np.isfinite(summary["ci_low"]):
        return f"{summary['mean']:{fmt}}"
    return f"{summary['mean']:{fmt}} [{summary['ci_low']:{fmt}}, {summary['ci_high']:{fmt}}]"
