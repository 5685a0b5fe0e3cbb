"""The proxies study's figure: each score's agreement with memorization against what it costs.

Its own module, so that the proxies stage depends on this figure only, not on the report's others.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from mudiff.analysis.proxies import MIN_MEASURABLE_SECONDS  # noqa: E402


def proxies_figure(
    table: pd.DataFrame, path: Path, top_share: float = 0.05, bank_seconds: float | None = None
) -> Path:
    """Aligned Spearman with memorization (all samples and the most memorized) against marginal
    compute seconds (log scale), one labelled point per proxy. Scores under
    `MIN_MEASURABLE_SECONDS` sit in a shaded band at its left (not measurable; training-dynamics
    scores there need no extra training); a line marks the bank's training time."""
    sns.set_theme(style="whitegrid", context="paper")
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    rows = table[np.isfinite(table["seconds"])]
    floor = MIN_MEASURABLE_SECONDS
    x = rows["seconds"].where(rows["seconds"] >= floor, floor / 2)
    ax.axvspan(floor / 4, floor, color="0.92", zorder=0)
    ax.text(floor / 3.6, -1.0, f"< {floor * 1000:.0f} ms:\nno ratio", fontsize=6, va="bottom", color="0.35")
    if bank_seconds:
        ax.axvline(bank_seconds, color="0.4", ls=":", lw=0.8)
        ax.text(bank_seconds, 0.5, "bank training ", fontsize=6, ha="right", rotation=90, color="0.35")
    ax.scatter(x, rows["aligned_spearman"], s=28, color="#0173b2", label="all samples", zorder=3)
    ax.scatter(
        x,
        rows["direction"] * rows["spearman_top"],
        s=28,
        marker="x",
        color="#de8f05",
        label=f"top {top_share:.0%} most memorized",
        zorder=3,
    )
    # Neighbouring points on the log axis alternate label heights, so that the labels stay legible.
    for k, i in enumerate(np.argsort(x.to_numpy(), kind="stable")):
        xi, yi, name = x.iloc[i], rows["aligned_spearman"].iloc[i], rows["score"].iloc[i]
        ax.annotate(
            name.replace("_", " "),
            (xi, yi),
            textcoords="offset points",
            xytext=(4, [6, -12, 16][k % 3]),
            fontsize=7,
            arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5},
        )
    ax.set_xscale("log")
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_xlim(left=floor / 4)
    ax.set_xlabel(
        "marginal compute seconds (log; bank scores include the bank's training;\n"
        "training-dynamics scores: recorded during target training, no extra training)",
        fontsize=7,
    )
    ax.set_ylabel("Spearman ρ with memorization\n(sign-aligned: + = agrees)")
    ax.set_ylim(-1.05, 1.05)
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=200)
    plt.close(fig)
    return path
