"""The report's figure of the hardest and easiest forget samples: pooling, selection, drawing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tinydata import separable

from mudiff.report.samples import class_names, draw, extremes, inert_runs, pooled_difficulty


def _runs() -> pd.DataFrame:
    """Two seeds; finetune and neggrad_plus agree that id 3 is hardest and id 0 easiest. Retrain, a
    variant and an inert run say the opposite and must not count."""
    rows = []

    def run(seed, method, forget_set, ids, difficulty, **extra):
        rows.append(
            pd.DataFrame(
                {
                    "seed": seed,
                    "method": method,
                    "forget_set": forget_set,
                    "id": ids,
                    "difficulty": difficulty,
                    "memorization": np.linspace(0, 1, len(ids)),
                    **extra,
                }
            )
        )

    for seed in (0, 1):
        run(seed, "finetune", "random", [0, 1, 2, 3], [0.25, 0.5, 0.75, 1.0])
        run(seed, "neggrad_plus", "random", [0, 1, 2, 3], [0.1, 0.6, 0.8, 0.9])  # same order, another scale
        run(seed, "retrain", "random", [0, 1, 2, 3], [1.0, 0.75, 0.5, 0.25])
        run(seed, "finetune@big", "random", [0, 1, 2, 3], [1.0, 0.75, 0.5, 0.25])
    run(0, "salun", "random", [0, 1, 2, 3], [1.0, 0.75, 0.5, 0.25])  # inert: marked below
    run(0, "finetune", "memorization_high", [3, 4, 5], [1.0, np.nan, 0.5])  # id 4 unmeasured
    return pd.concat(rows, ignore_index=True)


def test_pooling_rank_normalises_each_run_and_leaves_out_retrain_variants_and_inert_runs():
    pooled = pooled_difficulty(_runs(), inert={(0, "salun", "random")}).set_index("id")
    assert set(pooled.index) == {0, 1, 2, 3, 5}  # id 4 was never measured
    # neggrad_plus's 0.1 / 0.6 / 0.8 / 0.9 become ranks 0.25 / 0.5 / 0.75 / 1: the same as finetune's
    assert pooled.loc[0, "difficulty"] == pytest.approx(0.25) and pooled.loc[0, "runs"] == 4
    # id 3: 1.0 in the four random runs, and the top of 2 measured samples (1.0) in memorization_high
    assert pooled.loc[3, "difficulty"] == pytest.approx(1.0) and pooled.loc[3, "runs"] == 5
    assert pooled.loc[5, "difficulty"] == pytest.approx(0.5)
    assert pooled.loc[3, "memorization"] == pytest.approx((4 * 1.0 + 0.0) / 5)
    # an `inert` column on the table works the same
    marked = _runs().assign(inert=lambda t: t["method"] == "salun")
    assert pooled_difficulty(marked).equals(pooled_difficulty(_runs(), inert={(0, "salun", "random")}))
    # without the inert mark, salun's opposite order pulls id 0 up
    assert pooled_difficulty(_runs()).set_index("id").loc[0, "difficulty"] > 0.25


def test_pooling_per_method():
    per = pooled_difficulty(_runs(), by_method=True).set_index(["method", "id"])
    assert set(per.index.get_level_values("method")) == {"finetune", "neggrad_plus", "salun"}
    assert per.loc[("finetune", 3), "runs"] == 3 and per.loc[("salun", 0), "difficulty"] == pytest.approx(1.0)


def test_extremes_known_answer():
    pooled = pd.DataFrame(
        {"id": [10, 11, 12, 13, 14, 15, 16], "difficulty": [0.9, 0.1, 0.5, 0.9, np.nan, 0.2, 0.7]}
    )
    hardest, easiest = extremes(pooled, k=3)
    assert hardest["id"].tolist() == [10, 13, 16]  # ties: smaller id first
    assert easiest["id"].tolist() == [11, 15, 12]
    # fewer than 2k samples: no sample is both
    hardest, easiest = extremes(pooled, k=4)
    assert hardest["id"].tolist() == [10, 13, 16, 12] and easiest["id"].tolist() == [11, 15]


def test_inert_runs_from_the_evaluation():
    evaluation = pd.DataFrame(
        {
            "seed": [0, 0, 1],
            "method": ["a", "b", "a"],
            "forget_set": ["random"] * 3,
            "inert": [True, False, None],
        }
    )
    assert inert_runs(evaluation) == {(0, "a", "random")}
    assert inert_runs(evaluation.drop(columns="inert")) == set()


def test_class_names():
    assert (
        class_names("fashion_mnist", 10)[9] == "Ankle boot"
        and class_names("fashion_mnist", 10)[0] == "T-shirt/top"
    )
    assert class_names("digits", 10) == [str(k) for k in range(10)]


def test_figures_are_written(tmp_path):
    prepared = separable(n_train=40)
    rng = np.random.default_rng(0)
    rows = []
    for method in ("retrain", "finetune", "neggrad_plus"):
        for forget_set in ("random", "memorization_high"):
            ids = rng.choice(40, 20, replace=False)
            rows.append(
                pd.DataFrame(
                    {
                        "seed": 0,
                        "method": method,
                        "forget_set": forget_set,
                        "id": ids,
                        "difficulty": rng.random(20),
                        "memorization": rng.random(20),
                    }
                )
            )
    difficulty = pd.concat(rows, ignore_index=True)
    figs = draw(difficulty, prepared, "digits", tmp_path, k=8, k_method=4)
    assert set(figs) == {"forget_samples", "forget_samples_by_method"}
    for path in figs.values():
        assert path.stat().st_size > 10_000
    assert draw(difficulty[difficulty["method"] == "retrain"], prepared, "digits", tmp_path) == {}
