"""Figures of the instance-level analysis, drawn by the analysis stage from its tables: agreement
heatmaps, factor-by-method heatmap, ROC curves of the hard-sample predictor, per-sample difficulty
distributions. Method colours come from `report.figures.method_palette`, so they match every other
figure of the report."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from mudiff.report.figures import method_palette  # noqa: E402


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=200)
    plt.close(fig)
    return path


def agreement_heatmaps(agreement: pd.DataFrame, path: Path) -> Path:
    """Per forget set, pairwise Spearman between methods' per-sample difficulty; W in the title."""
    sns.set_theme(style="white", context="paper")
    sets = list(dict.fromkeys(agreement["forget_set"]))
    cols = min(3, max(1, len(sets)))
    rows = int(np.ceil(max(1, len(sets)) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.0 * rows), squeeze=False)
    for ax, fs in zip(axes.flat, sets):
        a = agreement[agreement["forget_set"] == fs]
        pairs = a[a["stat"] == "spearman"]
        methods = list(dict.fromkeys([*pairs["method_a"], *pairs["method_b"]]))
        mat = pd.DataFrame(np.eye(len(methods)), index=methods, columns=methods)
        for r in pairs.itertuples():
            mat.loc[r.method_a, r.method_b] = mat.loc[r.method_b, r.method_a] = r.value
        sns.heatmap(
            mat,
            vmin=-1,
            vmax=1,
            center=0,
            cmap="vlag",
            annot=True,
            fmt=".2f",
            square=True,
            ax=ax,
            cbar_kws={"label": "Spearman ρ", "shrink": 0.8},
        )
        w = a[a["stat"] == "kendall_w"].iloc[0]
        ax.set_title(
            f"{fs}: Kendall's W = {w.value:.2f} [{w.ci_low:.2f}, {w.ci_high:.2f}]\n(n = {int(w.n_samples)} samples)",
            fontsize=8,
        )
        ax.tick_params(axis="x", rotation=45, labelsize=7)
        ax.tick_params(axis="y", rotation=0, labelsize=7)
    for ax in list(axes.flat)[len(sets) :]:
        ax.axis("off")
    if not sets:
        axes.flat[0].text(0.5, 0.5, "fewer than two methods per forget set", ha="center", va="center")
    return _save(fig, path)


def factor_heatmap(correlations: pd.DataFrame, verdicts: pd.DataFrame, path: Path) -> Path:
    """Spearman of each factor with difficulty, per method; * = 95% interval excludes 0;
    factors marked † are algorithm-independent."""
    sns.set_theme(style="white", context="paper")
    order = verdicts["factor"].tolist()
    rho = correlations.pivot(index="factor", columns="method", values="rho").reindex(order)
    sig = (
        correlations.pivot(index="factor", columns="method", values="significant")
        .reindex(order)
        .fillna(False)
        .astype(bool)
    )
    labels = rho.map(lambda v: "" if not np.isfinite(v) else f"{v:+.2f}") + sig.map(
        lambda s: "*" if s else ""
    )
    independent = set(verdicts.loc[verdicts["algorithm_independent"], "factor"])
    rho.index = [f"{f.replace('_', ' ')}{' †' if f in independent else ''}" for f in rho.index]
    fig, ax = plt.subplots(figsize=(2.6 + 1.1 * rho.shape[1], max(3.0, 1.6 + 0.36 * rho.shape[0])))
    sns.heatmap(
        rho,
        vmin=-1,
        vmax=1,
        center=0,
        cmap="vlag",
        annot=labels.to_numpy(),
        fmt="",
        ax=ax,
        cbar_kws={"label": "Spearman ρ\nwith difficulty"},
    )
    ax.set_xlabel("method")
    ax.set_ylabel("score before unlearning")
    ax.set_title("* 95% interval excludes 0;  † algorithm-independent", fontsize=8)
    ax.tick_params(axis="x", rotation=30)
    return _save(fig, path)


def roc_curves(predictor: dict, path: Path) -> Path:
    """Out-of-fold ROC of each model (columns) on each feature set (rows: all features, and without
    the bank features), one curve per method, AUC [95% interval] in the legend."""
    sns.set_theme(style="whitegrid", context="paper")
    methods = [m for m, r in predictor.items() if "skipped" not in r]
    kinds = ["logistic_regression", "gradient_boosting"]
    sets = {"all_features": "all features", "without_bank_features": "without bank features"}
    palette = method_palette(methods)
    fig, axes = plt.subplots(
        len(sets), len(kinds), figsize=(3.6 * len(kinds), 3.4 * len(sets)), squeeze=False
    )
    for row, (fs, fs_label) in zip(axes, sets.items()):
        for ax, kind in zip(row, kinds):
            for m in methods:
                if "skipped" in predictor[m][fs]:
                    continue
                r = predictor[m][fs][kind]
                ax.plot(
                    r["roc_fpr"],
                    r["roc_tpr"],
                    color=palette[m],
                    label=f"{m} (AUC {r['auc']:.2f} [{r['auc_ci_low']:.2f}, {r['auc_ci_high']:.2f}])",
                )
            ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
            ax.set_xlabel("false positive rate")
            ax.set_ylabel("true positive rate")
            dropped = next((predictor[m][fs]["dropped"] for m in methods), [])
            title = f"{kind.replace('_', ' ')}, {fs_label} (out-of-fold)"
            ax.set_title(title + (f"\ndropped: {', '.join(dropped)}" if dropped else ""), fontsize=8)
            ax.set_aspect("equal")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=6, frameon=False, loc="lower right")
    return _save(fig, path)


def difficulty_distributions(
    difficulty: pd.DataFrame, path: Path, exclude: tuple[str, ...] = ("retrain",)
) -> Path:
    """Left: share of forget samples forgotten by each epoch (curves end below 1 by the censored
    share). Right: U-LiRA residual of the unlearned model per method (0 = as IN- as OUT-like)."""
    sns.set_theme(style="whitegrid", context="paper")
    rows = difficulty[~difficulty["method"].isin(exclude)]
    methods = list(method_palette(list(rows["method"].unique())))
    palette = method_palette(methods)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.0, 3.6))
    for m in methods:
        g = rows[rows["method"] == m]
        steps = g["steps_to_forget"].to_numpy()
        last = int(np.nanmax(g["max_epoch"])) if len(g) else 0
        epochs = np.arange(0, last + 1)
        share = (steps[None, :] <= epochs[:, None]).mean(axis=1)  # NaN (censored or unmeasured) never counts
        left.step(
            epochs,
            100 * share,
            where="post",
            color=palette[m],
            label=f"{m} ({100 * g['censored'].mean():.0f}% never)",
        )
    left.set_xlabel("unlearning epoch")
    left.set_ylabel("forget samples forgotten (%)")
    left.set_ylim(0, 100)
    left.legend(fontsize=6, frameon=False, title="method (censored)", title_fontsize=7)
    sns.boxplot(
        rows,
        x="method",
        y="residual",
        hue="method",
        order=methods,
        palette=palette,
        ax=right,
        fliersize=1,
        legend=False,
    )
    right.axhline(0, color="grey", lw=0.8, ls="--")
    right.set_yscale("symlog", linthresh=1.0)  # far-OUT samples reach ratios of -1e3; the decision is near 0
    right.set_xlabel("method")
    right.set_ylabel("U-LiRA residual\n(log-ratio IN/OUT, symlog)")
    right.tick_params(axis="x", rotation=30)
    return _save(fig, path)
