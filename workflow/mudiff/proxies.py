"""The proxies study (SPEC, analysis 3): how well each cheap score ranks samples like
memorization, and at what fraction of the bank's compute.

For every score other than memorization: Spearman and Pearson correlation with memorization
over all samples and over the `top_share` most memorized, SPEC's direction of the score, the
direction-aligned Spearman (direction x rho: positive = agrees that hard samples are memorized),
its compute seconds and their ratio to the bank's training time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import pearsonr, spearmanr

from mudiff.scores import HARDNESS

# The proxies table's numeric columns (the report shows them, averaged over seeds).
METRICS = ("spearman", "pearson", "spearman_top", "pearson_top", "aligned_spearman", "seconds", "time_ratio_to_bank")


def _corr(fn, a: pd.Series, b: pd.Series) -> float:
    if len(a) < 3 or a.nunique() < 2 or b.nunique() < 2:
        return float("nan")  # undefined on constant or tiny samples
    return float(fn(a, b).statistic)


def proxy_table(scores: pd.DataFrame, seconds: dict[str, float], bank_seconds: float, top_share: float = 0.05) -> pd.DataFrame:
    rows = []
    for name in [c for c in scores.columns if c not in ("id", "label", "memorization")]:
        ok = scores[["memorization", name]].replace([np.inf, -np.inf], np.nan).dropna()
        top = ok[ok["memorization"] >= ok["memorization"].quantile(1 - top_share)]
        rho = _corr(spearmanr, ok[name], ok["memorization"])
        sec = seconds.get(name, np.nan)
        rows.append({
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
            "time_ratio_to_bank": sec / bank_seconds if bank_seconds else np.nan,
        })
    return pd.DataFrame(rows)


def proxies_figure(table: pd.DataFrame, path: Path, top_share: float = 0.05) -> Path:
    """Aligned Spearman with memorization (all samples and the most memorized) against compute
    time relative to the bank (log scale), one labelled point per proxy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    rows = table[np.isfinite(table["time_ratio_to_bank"]) & (table["time_ratio_to_bank"] > 0)]
    x = rows["time_ratio_to_bank"].clip(lower=1e-7)
    ax.scatter(x, rows["aligned_spearman"], s=28, color="#0173b2", label="all samples", zorder=3)
    ax.scatter(x, rows["direction"] * rows["spearman_top"], s=28, marker="x", color="#de8f05",
               label=f"top {top_share:.0%} most memorized", zorder=3)
    # Neighbouring points on the log axis alternate label heights, so that the labels stay legible.
    for k, i in enumerate(np.argsort(x.to_numpy())):
        xi, yi, name = x.iloc[i], rows["aligned_spearman"].iloc[i], rows["score"].iloc[i]
        ax.annotate(name.replace("_", " "), (xi, yi), textcoords="offset points", xytext=(4, [6, -12, 16][k % 3]), fontsize=7,
                    arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5})
    ax.set_xscale("log")
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_xlabel("compute time / bank training time (log)")
    ax.set_ylabel("Spearman ρ with memorization\n(sign-aligned: + = agrees)")
    ax.set_ylim(-1.05, 1.05)
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=200)
    plt.close(fig)
    return path
