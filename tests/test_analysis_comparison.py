"""The one selection of the RUM comparison (mudiff.analysis.comparison), read by the table, figure and finding."""

from __future__ import annotations

import pandas as pd

from mudiff.analysis import comparison


def _evaluation() -> pd.DataFrame:
    methods = [
        "retrain",
        "finetune",
        "rum_f:finetune",
        "shuffle:finetune",
        "neggrad_plus@x",
        "rum_f:neggrad_plus@x",
        "shuffle:salun",
        "salun",
        "rum",
        "rum@other",
        "rsu:finetune",
    ]
    return pd.DataFrame(
        [
            {"seed": s, "method": m, "forget_set": fs, "ToW": 0.5 + 0.1 * s + (0.2 if fs == "random" else 0)}
            for s in (0, 1)
            for m in methods
            for fs in ("memorization_mix", "confidence_mix", "random")
        ]
    )


def test_comparison_pairs_each_wrapped_method_with_its_vanilla_and_rum():
    runs = comparison.rum_comparison(comparison.seed_means(comparison.mix_sets(_evaluation())))
    arms = dict(zip(runs["method"], zip(runs["arm"], runs["inner"])))
    assert arms == {
        "finetune": ("vanilla", "finetune"),
        "neggrad_plus@x": ("vanilla", "neggrad_plus@x"),
        "rum": ("rum", "rum"),
        "rum_f:finetune": ("rum_f", "finetune"),
        "rum_f:neggrad_plus@x": ("rum_f", "neggrad_plus@x"),
        "salun": ("vanilla", "salun"),
        "shuffle:finetune": ("shuffle", "finetune"),
        "shuffle:salun": ("shuffle", "salun"),
    }
    assert runs["ToW"].tolist() == [0.5, 0.6] * 8  # seed means over the two mix sets, two seeds per method
    assert comparison.inners(runs) == ["finetune", "neggrad_plus@x", "salun"]
    assert comparison.method_order(runs) == [
        "finetune",
        "rum_f:finetune",
        "shuffle:finetune",
        "neggrad_plus@x",
        "rum_f:neggrad_plus@x",
        "salun",
        "shuffle:salun",
        "rum",
    ]


def test_finding_anchors_on_rum_f_and_rum_rivals():
    runs = comparison.rum_comparison(comparison.mix_sets(_evaluation()), anchors=("rum_f",))
    assert comparison.inners(runs) == ["finetune", "neggrad_plus@x"]  # salun ran as shuffle only
    assert comparison.arms("neggrad_plus@x") == {
        "rum_f": "rum_f:neggrad_plus@x",
        "vanilla": "neggrad_plus@x",
        "shuffle": "shuffle:neggrad_plus@x",
    }
    rivals = [m for m in _evaluation()["method"].unique() if comparison.is_rum_rival(m)]
    assert rivals == ["finetune", "shuffle:finetune", "neggrad_plus@x", "shuffle:salun", "salun"]


def test_nothing_to_compare_off_the_mix_sets():
    ev = _evaluation()
    assert comparison.rum_comparison(comparison.mix_sets(ev[ev["forget_set"] == "random"])).empty
