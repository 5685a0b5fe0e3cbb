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

from mudiff.analysis import comparison  # noqa: E402
from mudiff.analysis.seeds import t_errorbar  # noqa: E402
from mudiff.methods.name import MethodName  # noqa: E402

LEVEL_ORDER = ["low", "mid", "high", "mix", "random"]


def method_palette(methods: list[str]) -> dict[str, tuple]:
    """One colour per method, the same in every figure (order of the method registry)."""
    from mudiff.methods import METHODS

    order = [m for m in METHODS if m in methods] + sorted(set(methods) - set(METHODS))
    return dict(zip(order, sns.color_palette("colorblind", len(order))))


def tow_by_level(evaluation: pd.DataFrame, score: str, path: Path) -> Path:
    """ToW and ToW-MIA per method for the low / mid / high / mix forget sets of a score (random for
    reference): bars are means over the seeds, whiskers their 95% t-interval."""
    rows = evaluation[
        ((evaluation["score"] == score) | (evaluation["forget_set"] == "random"))
        & (evaluation["method"] != "retrain")
    ].copy()
    rows["level"] = rows["level"].fillna("random")
    levels = [lv for lv in LEVEL_ORDER if lv in set(rows["level"])]
    methods = [m for m in method_palette(list(rows["method"].unique()))]
    panels = [("ToW", "ToW (1 = same as retrain)"), ("ToW_MIA", "ToW-MIA (1 = same as retrain)")]
    panels = [(col, label) for col, label in panels if col in rows and rows[col].notna().any()]
    sns.set_theme(style="whitegrid", context="paper")
    width = 1.2 + 1.1 * len(levels)
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), 3.2), squeeze=False)
    for ax, (col, label) in zip(axes.flat, panels):
        sns.barplot(
            rows,
            x="level",
            y=col,
            hue="method",
            order=levels,
            hue_order=methods,
            palette=method_palette(methods),
            ax=ax,
            errorbar=t_errorbar,
            capsize=0.1,
            err_kws={"linewidth": 1},
        )
        ax.set_xlabel(f"forget set ({score.replace('_', ' ')} level)")
        ax.set_ylabel(label)
        ax.set_ylim(max(0.0, float(rows[col].min()) - 0.05) if len(rows) else 0.0, 1.0)
        if ax.legend_ is not None:
            ax.legend_.remove()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        title="method",
        frameon=False,
        fontsize=8,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
    )
    n = int(evaluation["seed"].nunique()) if "seed" in evaluation else 1
    fig.suptitle(
        f"mean over {n} seed{'s' if n > 1 else ''}" + (", 95% t-interval" if n > 1 else ""), fontsize=8
    )
    fig.tight_layout()
    fig.savefig(path, dpi=200, bbox_inches="tight")
    plt.close(fig)
    return path


RUM_VARIANT = "rum (a method per subset)"


def rum_comparison(evaluation: pd.DataFrame, path: Path) -> Path | None:
    """ToW on the mix forget sets of each wrapped method run vanilla, as rum_f (refined and sequenced)
    and as shuffle (sequenced on random thirds), and of `rum`: means over the seeds, 95% t-interval."""
    # one bar value per seed: the mean over the mix sets
    table = comparison.rum_comparison(comparison.seed_means(comparison.mix_sets(evaluation)))
    if table.empty:
        return None
    table["variant"] = table["arm"].replace({"rum": RUM_VARIANT})
    variants = [v for v in ("vanilla", "rum_f", "shuffle", RUM_VARIANT) if v in set(table["variant"])]
    sns.set_theme(style="whitegrid", context="paper")
    fig, ax = plt.subplots(figsize=(1.5 + 1.4 * table["inner"].nunique(), 3.2))
    sns.barplot(
        table,
        x="inner",
        y="ToW",
        hue="variant",
        hue_order=variants,
        ax=ax,
        palette="colorblind",
        errorbar=t_errorbar,
        capsize=0.1,
        err_kws={"linewidth": 1},
    )
    ax.set_xlabel("method (on the mix forget sets, same total budget)")
    ax.set_ylabel("ToW (1 = same as retrain)")
    ax.set_ylim(max(0.0, float(table["ToW"].min()) - 0.1), None)
    ax.legend(title="", frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=200)
    plt.close(fig)
    return path


def rsu_by_order(evaluation: pd.DataFrame, orders: dict[str, str], path: Path) -> Path:
    """ToW of every RSU run by its chunk order, beside the vanilla method, per forget set (mean over seeds, 95% t-interval)."""
    names = {m: MethodName.read(m) for m in evaluation["method"].unique()}
    rsu = [m for m, n in names.items() if n.meta == "rsu"]
    vanilla = {names[m].inner for m in rsu}
    rows = evaluation[
        evaluation["method"].isin([*rsu, *vanilla])
        & evaluation["forget_set"].isin(evaluation.loc[evaluation["method"].isin(rsu), "forget_set"].unique())
    ].copy()
    shared = {o for o in orders.values() if list(orders.values()).count(o) > 1}
    rows["order"] = [m if orders.get(m) in shared else orders.get(m, "vanilla") for m in rows["method"]]
    rows["wrapped"] = [names[m].inner for m in rows["method"]]
    order_names = [
        o for o in ("vanilla", "easy_to_hard", "hard_to_easy", "random") if o in set(rows["order"])
    ]
    order_names += sorted(set(rows["order"]) - set(order_names))  # variants that share an order, by name
    sns.set_theme(style="whitegrid", context="paper")
    sets = list(rows["forget_set"].unique())
    fig, axes = plt.subplots(
        1, len(sets), figsize=(1.0 + 1.6 * len(order_names) * len(sets), 3.2), squeeze=False
    )
    for ax, fs in zip(axes.flat, sets):
        sns.barplot(
            rows[rows["forget_set"] == fs],
            x="order",
            y="ToW",
            hue="wrapped",
            order=order_names,
            ax=ax,
            palette=method_palette(sorted(vanilla)),
            errorbar=t_errorbar,
            capsize=0.1,
            err_kws={"linewidth": 1},
        )
        ax.set_title(f"forget set {fs}", fontsize=9)
        ax.set_ylim(max(0.0, float(rows["ToW"].min()) - 0.1), None)
        ax.set_xlabel("RSU chunk order (by privacy risk)")
        ax.set_ylabel("ToW (1 = same as retrain)")
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
    for ax in list(axes.flat)[len(proxies) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=200)
    plt.close(fig)
    return path


def _tile(image: np.ndarray, scale: float) -> tuple[np.ndarray, str | None]:
    """A (C, H, W) uint8 image as something imshow draws in [0, 1]: (H, W) with a gray colormap, or (H, W, 3)."""
    x = np.clip(np.asarray(image, dtype=np.float64) / scale, 0.0, 1.0)
    if x.ndim == 3 and x.shape[0] == 1:
        return x[0], "gray"
    if x.ndim == 3 and x.shape[0] == 3:
        return np.transpose(x, (1, 2, 0)), None
    return (x if x.ndim == 2 else x.mean(axis=0)), "gray"


def forget_samples(
    rows: list[tuple[str, pd.DataFrame]],
    x_train: np.ndarray,
    id_train: np.ndarray,
    y_train: np.ndarray,
    scale: float,
    class_names: list[str],
    path: Path,
    gap_after: int | None = None,
    headers: tuple[str, str] | None = None,
    title: str | None = None,
) -> Path:
    """A grid of forget samples, one labelled row per entry of `rows` (each a table with id, difficulty
    and, if known, memorization): the image (nearest-neighbour, so 8x8 digits stay pixels), its class
    and id above, its difficulty and memorization below. `gap_after` leaves a gap after that
    many tiles of every row, with `headers` above the two halves (e.g. hardest | easiest)."""
    from mudiff.analysis.difficulty import bank_columns

    width = max((len(t) for _, t in rows), default=1)
    split = gap_after is not None and 0 < gap_after < width
    ncols = width + (1 if split else 0)
    ratios = [1.0] * ncols
    if split:
        ratios[gap_after] = 0.25
    sns.set_theme(style="white", context="paper")
    fig, axes = plt.subplots(
        len(rows),
        ncols,
        figsize=(0.3 + 1.05 * sum(ratios), 1.45 * len(rows)),
        squeeze=False,
        gridspec_kw={"width_ratios": ratios},
    )
    for r, (label, table) in enumerate(rows):
        cells = [c for c in range(ncols) if not (split and c == gap_after)]
        positions = bank_columns(id_train, table["id"].to_numpy()) if len(table) else []
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        for c, (sample, pos) in zip(cells, zip(table.itertuples(index=False), positions)):
            ax = axes[r, c]
            image, cmap = _tile(x_train[pos], scale)
            ax.imshow(image, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
            for spine in ax.spines.values():
                spine.set_visible(True)
                spine.set_color("0.6")
                spine.set_linewidth(0.5)
            y = int(y_train[pos])
            ax.set_title(
                f"{class_names[y] if y < len(class_names) else y}\nid {int(sample.id)}", fontsize=7, pad=2
            )
            mem = getattr(sample, "memorization", np.nan)
            ax.set_xlabel(
                f"diff {sample.difficulty:.2f}" + ("" if not np.isfinite(mem) else f" · mem {mem:.2f}"),
                fontsize=6.5,
                labelpad=2,
            )
        axes[r, cells[0]].set_ylabel(label.replace(":", ":\n"), fontsize=8, rotation=90, labelpad=4)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout(h_pad=1.0, w_pad=0.3)
    if split and headers:
        top = axes[0]
        y = top[0].get_position().y1 + 0.35 / fig.get_figheight()
        for text, (a, b) in zip(headers, ((0, gap_after - 1), (gap_after + 1, ncols - 1))):
            x = (top[a].get_position().x0 + top[b].get_position().x1) / 2
            fig.text(x, y, text, ha="center", va="bottom", fontsize=8, fontweight="bold")
    fig.savefig(path, dpi=200, bbox_inches="tight")
    plt.close(fig)
    return path
