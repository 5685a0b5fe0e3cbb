"""The proxies study (SPEC, analysis 3): how well each cheap score ranks samples like
memorization, and at what compute.

For every score other than memorization: Spearman and Pearson correlation with memorization
over all samples and over the `top_share` most memorized, SPEC's direction of the score, the
direction-aligned Spearman (direction x rho: positive = agrees that hard samples are memorized),
its marginal compute seconds (scores/timings.json: bank scores include the bank's training) and
their ratio to the bank's training time where the score's own time is measurable
(>= `MIN_MEASURABLE_SECONDS`). A training-dynamics score is read off the target's training,
whose cost is paid anyway: its marginal time is a reduction over recorded arrays, a ratio to it
would be noise, so it is reported as seconds and `NO_EXTRA_TRAINING`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import pearsonr, spearmanr

from mudiff.scores import FROM_BANK, FROM_DYNAMICS, HARDNESS

# The proxies table's numeric columns (the report shows them, averaged over seeds).
METRICS = (
    "spearman",
    "pearson",
    "spearman_top",
    "pearson_top",
    "aligned_spearman",
    "seconds",
    "time_ratio_to_bank",
)

# Below this a score's own compute time is timer noise and a ratio to it meaningless.
MIN_MEASURABLE_SECONDS = 0.01
NO_EXTRA_TRAINING = "recorded during target training: no extra training"


def time_ratio(seconds: float | None, bank_seconds: float | None) -> float | None:
    """`seconds / bank_seconds`, or None where either is missing or `seconds` is too small to measure."""
    if seconds is None or not bank_seconds or not np.isfinite(seconds) or seconds < MIN_MEASURABLE_SECONDS:
        return None
    return float(seconds / bank_seconds)


def score_cost(name: str, seconds: float | None, bank_seconds: float | None) -> dict | None:
    """A score's marginal compute against the bank's training: both in seconds, whether it needs no
    training of its own (a training-dynamics score), and how many times less than the bank it costs
    (`speedup_vs_bank`), None where its own time is not measurable (`time_ratio`)."""
    if seconds is None or not bank_seconds or not np.isfinite(seconds):
        return None
    ratio = time_ratio(seconds, bank_seconds)
    return {
        "seconds": float(seconds),
        "bank_seconds": float(bank_seconds),
        "speedup_vs_bank": None if ratio is None else 1 / ratio,
        "no_extra_training": name in FROM_DYNAMICS,
    }


def cost_phrase(name: str, cost: dict | None) -> str:
    """`score_cost` in words, with no ratio where there is none; '' without a cost."""
    if not cost:
        return ""
    spent = f"{name}'s marginal compute {cost['seconds']:.2g} s against the bank's training {cost['bank_seconds']:.0f} s"
    extra = f" ({NO_EXTRA_TRAINING})" if cost["no_extra_training"] else ""
    if cost["speedup_vs_bank"]:
        return f"{cost['speedup_vs_bank']:.0f}x less compute than the bank: {spent}{extra}"
    return f"{spent}{extra}"


def cost_note(name: str) -> str:
    """What a score's compute time covers: no training of its own, the bank's, or passes over the target."""
    if name in FROM_DYNAMICS:
        return NO_EXTRA_TRAINING
    if name in FROM_BANK:
        return "includes the bank's training"
    return "from the trained target"


def _corr(fn, a: pd.Series, b: pd.Series) -> float:
    if len(a) < 3 or a.nunique() < 2 or b.nunique() < 2:
        return float("nan")  # undefined on constant or tiny samples
    return float(fn(a, b).statistic)


def proxy_table(
    scores: pd.DataFrame, seconds: dict[str, float], bank_seconds: float, top_share: float = 0.05
) -> pd.DataFrame:
    rows = []
    for name in [c for c in scores.columns if c not in ("id", "label", "memorization")]:
        ok = scores[["memorization", name]].replace([np.inf, -np.inf], np.nan).dropna()
        top = ok[ok["memorization"] >= ok["memorization"].quantile(1 - top_share)]
        rho = _corr(spearmanr, ok[name], ok["memorization"])
        sec = seconds.get(name, np.nan)
        rows.append(
            {
                "score": name,
                "direction": HARDNESS.get(name, np.nan),
                "spearman": rho,
                "pearson": _corr(pearsonr, ok[name], ok["memorization"]),
                "spearman_top": _corr(spearmanr, top[name], top["memorization"]),
                "pearson_top": _corr(pearsonr, top[name], top["memorization"]),
                "aligned_spearman": HARDNESS.get(name, np.nan) * rho,
                "n": len(ok),
                "n_top": len(top),
                "seconds": sec,
                "time_ratio_to_bank": np.nan if (ratio := time_ratio(sec, bank_seconds)) is None else ratio,
                "cost": cost_note(name),
            }
        )
    return pd.DataFrame(rows)
