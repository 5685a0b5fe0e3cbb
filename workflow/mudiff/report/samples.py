"""Which forget samples were hardest and easiest to unlearn: per-sample difficulty pooled over
runs, and the pick of the extremes that the report shows as images.

A run is one method on one forget set in one seed. Its `difficulty` (analysis stage) ranks its own
forget samples; runs differ in size and in how many samples they leave censored, so each run is
rank-normalised to (0, 1] on its own before the runs are averaged per sample id.
"""

from __future__ import annotations

import pandas as pd

from mudiff.methods.name import MethodName

RUN = ["seed", "method", "forget_set"]

# Class names of the datasets that have them (index = label); the others show the label itself.
CLASS_NAMES = {
    "fashion_mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}


def class_names(dataset: str, num_classes: int) -> list[str]:
    """A name per label: the dataset's class names where it has them, else the label as text (digits, mnist)."""
    names = CLASS_NAMES.get(dataset)
    return list(names) if names and len(names) == num_classes else [str(k) for k in range(num_classes)]


def pooled_difficulty(
    difficulty: pd.DataFrame,
    exclude: list[str] | tuple[str, ...] = ("retrain",),
    inert: set[tuple] | None = None,
    by_method: bool = False,
) -> pd.DataFrame:
    """Per sample id (and per method if `by_method`): the mean over runs of the run-normalised
    difficulty (`difficulty`, in (0, 1], higher = harder), the runs behind it (`runs`), and the mean
    of `memorization` and the first `label` where the table has them.

    `difficulty` is the analysis stage's table stacked over seeds (a `seed` column; one seed if
    absent). Left out: the methods in `exclude`, method variants `<method>@<label>` (each algorithm
    counts once, as in the analysis), inert runs (`inert`: (seed, method, forget_set) tuples, or an
    `inert` column) and samples whose difficulty was not measured.
    """
    table = difficulty.copy()
    if "seed" not in table:
        table["seed"] = 0
    plain = table["method"].map(lambda m: not MethodName.read(m).is_variant).astype(bool)
    keep = ~table["method"].isin(list(exclude)) & plain
    if "inert" in table:
        keep &= ~table["inert"].fillna(False).astype(bool)
    if inert:
        keep &= ~pd.Series(list(zip(*(table[c] for c in RUN))), index=table.index).isin(inert)
    table = table[keep & table["difficulty"].notna()].copy()
    table["difficulty"] = table.groupby(RUN)["difficulty"].rank(method="average", pct=True)
    keys = ["method", "id"] if by_method else ["id"]
    agg = {"difficulty": ("difficulty", "mean"), "runs": ("difficulty", "size")}
    if "memorization" in table:
        agg["memorization"] = ("memorization", "mean")
    if "label" in table:
        agg["label"] = ("label", "first")
    return table.groupby(keys, as_index=False).agg(**agg)


def extremes(pooled: pd.DataFrame, k: int = 8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `k` hardest samples (highest pooled difficulty first) and the `k` easiest (lowest first)
    of `pooled` (one row per id); ties go to the smaller id. With fewer than 2k samples the easiest
    are taken from those not already among the hardest, so no sample is shown twice."""
    ranked = pooled.dropna(subset=["difficulty"]).sort_values(["difficulty", "id"], ascending=[False, True])
    hardest = ranked.head(k)
    rest = ranked.drop(hardest.index).sort_values(["difficulty", "id"], ascending=[True, True])
    return hardest.reset_index(drop=True), rest.head(k).reset_index(drop=True)


def inert_runs(evaluation: pd.DataFrame) -> set[tuple]:
    """(seed, method, forget_set) of the runs the evaluation marks inert (none if it has no `inert` column)."""
    if "inert" not in evaluation:
        return set()
    rows = evaluation[evaluation["inert"].fillna(False).astype(bool)]
    seeds = rows["seed"] if "seed" in rows else pd.Series(0, index=rows.index)
    return set(zip(seeds.astype(int), rows["method"], rows["forget_set"]))


def draw(
    difficulty: pd.DataFrame,
    prepared,
    dataset: str,
    fig_dir,
    exclude=("retrain",),
    inert: set[tuple] | None = None,
    k: int = 8,
    k_method: int = 4,
) -> dict:
    """The report's sample figures: `forget_samples` (k hardest and k easiest, pooled over methods) and
    `forget_samples_by_method` (k_method of each per method); {} when no run measured a difficulty."""
    from pathlib import Path

    from mudiff.report import figures

    names = class_names(dataset, prepared.num_classes)
    arrays = (prepared.x_train, prepared.id_train, prepared.y_train, prepared.scale, names)
    pooled = pooled_difficulty(difficulty, exclude, inert)
    if pooled.empty:
        return {}
    hardest, easiest = extremes(pooled, k)
    out = {
        "forget_samples": figures.forget_samples(
            [("hardest", hardest), ("easiest", easiest)], *arrays, Path(fig_dir) / "forget_samples.png"
        )
    }
    per = pooled_difficulty(difficulty, exclude, inert, by_method=True)
    rows = []
    for method in dict.fromkeys(difficulty["method"]):
        if (
            per["method"] == method
        ).sum() >= 2 * k_method:  # a full row: k_method hardest, then k_method easiest
            h, e = extremes(per[per["method"] == method], k_method)
            rows.append((method, pd.concat([h, e], ignore_index=True)))
    if len(rows) > 1:
        out["forget_samples_by_method"] = figures.forget_samples(
            rows,
            *arrays,
            Path(fig_dir) / "forget_samples_by_method.png",
            gap_after=k_method,
            headers=("hardest", "easiest"),
        )
    return out
