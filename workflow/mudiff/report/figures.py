"""Figures a researcher would put in a paper: labelled axes, consistent method colours."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

LEVEL_ORDER = ["low", "mid", "high", "mix", "random"]


def method_palette(methods: list[str]) -> dict[str, tuple]:
    """One colour per method, the same in every figure (order of the method registry)."""
    from mudiff.methods import METHODS

    order = [m for m in METHODS if m in methods] + sorted(set(methods) - set(METHODS))
    return dict(zip(order, sns.color_palette("colorblind", len(order))))


def tow_by_level(evaluation: pd.DataFrame, score: str, path: Path) -> Path:
    """ToW per method for the low / mid / high / mix forget sets of a score (random for reference)."""
    rows = evaluation[((evaluation["score"] == score) | (evaluation["forget_set"] == "random")) & (evaluation["method"] != "retrain")].copy()
    rows["level"] = rows["level"].fillna("random")
    levels = [lv for lv in LEVEL_ORDER if lv in set(rows["level"])]
    methods = [m for m in method_palette(list(rows["method"].unique()))]
    sns.set_theme(style="whitegrid", context="paper")
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(levels), 3.2))
    sns.barplot(rows, x="level", y="ToW", hue="method", order=levels, hue_order=methods, palette=method_palette(methods), ax=ax, errorbar=("ci", 95))
    ax.set_xlabel(f"forget set ({score.replace('_', ' ')} level)")
    ax.set_ylabel("ToW (1 = same as retrain)")
    lo = max(0.0, float(rows["ToW"].min()) - 0.05) if len(rows) else 0.0
    ax.set_ylim(lo, 1.0)
    ax.legend(title="method", frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=200)
    plt.close(fig)
    return path


def proxies_vs_memorization(scores: pd.DataFrame, proxies: list[str], path: Path) -> Path:
    """Each proxy against memorization, one panel each, Spearman's rho in the title."""
    sns.set_theme(style="whitegrid", context="paper")
    cols = min(3, max(1, len(proxies)))
    rows = int(np.ceil(len(proxies) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.6 * rows), squeeze=False)
    for ax, proxy in zip(axes.flat, proxies):
        ok = scores[["memorization", proxy]].dropna()
        rho = spearmanr(ok[proxy], ok["memorization"]).statistic
        ax.scatter(ok[proxy], ok["memorization"], s=4, alpha=0.35, color="#0173b2", linewidths=0)
        ax.set_title(f"{proxy.replace('_', ' ')}: Spearman ρ = {rho:+.2f}", fontsize=9)
        ax.set_xlabel(proxy.replace("_", " "))
        ax.set_ylabel("memorization")
    for ax in list(axes.flat)[len(proxies):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=200)
    plt.close(fig)
    return path
