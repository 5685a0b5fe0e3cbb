"""Which per-sample factors go with unlearning difficulty, and do they for every method?

Per method, samples are pooled over its forget sets and re-ranked by the same key as a run's
difficulty (steps_to_forget, censored last, then residual): epochs are comparable across forget
sets of one method, within-run percentiles are not. A sample in several forget sets counts once
per set. Each factor (every score column) gets Spearman's rho against that difficulty with a
Fisher-z 95% interval using Bonett & Wright's variance (1 + rho^2/2)/(n - 3), which holds for
Spearman's rho where the Pearson formula is too narrow.

Verdict: a factor is *algorithm-independent* when rho has the same (non-zero) sign for every
method and its interval excludes zero for a strict majority of them. `agrees_with_spec` says
whether that sign is SPEC's direction (a "high = hard" score should rise with difficulty).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from mudiff.analysis.difficulty import difficulty_rank
from mudiff.scores import HARDNESS


def spearman_ci(x: np.ndarray, y: np.ndarray, level: float = 0.95) -> dict:
    """Spearman's rho of the finite pairs with a Bonett-Wright Fisher-z interval."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < 4 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return {"rho": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": n}
    rho = float(stats.spearmanr(x[ok], y[ok]).statistic)
    z = np.arctanh(np.clip(rho, -0.999999, 0.999999))
    half = stats.norm.ppf(0.5 + level / 2) * np.sqrt((1 + rho**2 / 2) / (n - 3))
    return {"rho": rho, "ci_low": float(np.tanh(z - half)), "ci_high": float(np.tanh(z + half)), "n": n}


def factor_names(scores: pd.DataFrame) -> list[str]:
    """Every score column of the scores table (not id, not the class label)."""
    return [
        c for c in scores.columns if c not in ("id", "label") and pd.api.types.is_numeric_dtype(scores[c])
    ]


def pooled_difficulty(difficulty: pd.DataFrame) -> pd.Series:
    """Per method, the difficulty rank over all its forget sets' samples (see module doc)."""
    out = pd.Series(np.nan, index=difficulty.index)
    for _, g in difficulty.groupby("method", sort=False):
        out.loc[g.index] = difficulty_rank(
            g["steps_to_forget"].to_numpy(), g["censored"].to_numpy(), g["residual"].to_numpy()
        )
    return out


def factor_correlations(
    difficulty: pd.DataFrame,
    scores: pd.DataFrame,
    exclude: tuple[str, ...] = ("retrain",),
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per (method, factor): rho, interval, n, significant."""
    keep = ["method", "forget_set", "id", "steps_to_forget", "censored", "residual"]
    rows = difficulty.loc[
        ~difficulty["method"].isin(exclude), keep
    ].copy()  # a table already joined with scores too
    rows["pooled"] = pooled_difficulty(rows)
    factors = factor_names(scores)
    joined = rows.merge(scores[["id", *factors]], on="id", how="left", validate="many_to_one")
    out = []
    for method, g in joined.groupby("method", sort=True):
        y = g["pooled"].to_numpy()
        for f in factors:
            out.append({"method": method, "factor": f, **spearman_ci(g[f].to_numpy(), y, level)})
    table = pd.DataFrame(out, columns=["method", "factor", "rho", "ci_low", "ci_high", "n"])
    table["significant"] = (table["ci_low"] > 0) | (table["ci_high"] < 0)
    return table


def factor_verdicts(correlations: pd.DataFrame) -> pd.DataFrame:
    """Per factor: sign agreement across methods, how many intervals exclude zero, the verdict."""
    out = []
    for factor, g in correlations.groupby("factor", sort=False):
        signs = np.sign(g["rho"].to_numpy())
        m = len(g)
        consistent = bool(
            m > 0 and np.all(np.isfinite(g["rho"])) and (np.all(signs > 0) or np.all(signs < 0))
        )
        n_sig = int(g["significant"].sum())
        sign = int(signs[0]) if consistent else 0
        expected = HARDNESS.get(factor)
        out.append(
            {
                "factor": factor,
                "n_methods": m,
                "sign": sign,
                "sign_consistent": consistent,
                "n_significant": n_sig,
                "algorithm_independent": bool(consistent and n_sig > m / 2),
                "mean_rho": float(g["rho"].mean()),
                "min_abs_rho": float(g["rho"].abs().min()),
                "max_abs_rho": float(g["rho"].abs().max()),
                "spec_direction": expected if expected is not None else np.nan,
                "agrees_with_spec": bool(consistent and expected is not None and sign == expected),
            }
        )
    return pd.DataFrame(out).sort_values(
        ["algorithm_independent", "min_abs_rho"], ascending=False, ignore_index=True
    )
