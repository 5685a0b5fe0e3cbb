"""The report's method tables: cost ratio, RUM vs vanilla vs shuffle on mix sets, RSU beside vanilla."""

from __future__ import annotations

import pandas as pd

from mudiff.analysis.findings import rum_findings
from mudiff.report.markdown import cost_table, rsu_table, rum_table


def _evaluation(seeds=(0,)) -> pd.DataFrame:
    """ToW per method and forget set; with several seeds, seed s adds 0.01 * s (mean: + 0.01 * mean(s))."""
    rows = []
    tow = {
        "retrain": 1.0,
        "neggrad_plus": 0.90,
        "rum_f:neggrad_plus": 0.95,
        "shuffle:neggrad_plus": 0.92,
        "rum": 0.97,
        "finetune": 0.8,
        "rsu:finetune": 0.85,
        "rsu:finetune@random": 0.83,
    }
    for seed in seeds:
        for fs, shift in (("random", 0.0), ("memorization_mix", -0.1)):
            for method, t in tow.items():
                rows.append(
                    {
                        "seed": seed,
                        "method": method,
                        "forget_set": fs,
                        "ToW": t + (0 if method == "retrain" else shift + 0.01 * seed),
                        "seconds": 2.0 if method == "retrain" else 1.0,
                        "cost_ratio": 1.0 if method == "retrain" else 0.5,
                    }
                )
    return pd.DataFrame(rows)


def test_rum_table_compares_on_mix_sets_only():
    table = rum_table(_evaluation())
    assert list(table["method"]) == ["neggrad_plus", "rum_f:neggrad_plus", "shuffle:neggrad_plus", "rum"]
    assert list(table.columns) == ["method", "memorization_mix"]
    assert (
        table.set_index("method").loc["rum_f:neggrad_plus", "memorization_mix"] == "0.850"
    )  # one seed: no interval
    verdict = next(f for f in rum_findings(_evaluation()) if f["method"] == "neggrad_plus")
    assert verdict["reproduced"] is True


def test_rum_finding_not_reproduced_when_shuffle_wins():
    ev = _evaluation()
    ev.loc[ev["method"] == "shuffle:neggrad_plus", "ToW"] = 0.99
    verdict = next(f for f in rum_findings(ev) if f["method"] == "neggrad_plus")
    assert verdict["reproduced"] is False


def test_no_rum_table_without_mix_sets():
    ev = _evaluation()
    assert rum_table(ev[ev["forget_set"] == "random"]) is None


def test_rum_table_gives_mean_and_t_interval_over_seeds():
    table = rum_table(_evaluation(seeds=(0, 1, 2))).set_index("method")
    # rum_f on mix: 0.85, 0.86, 0.87 -> mean 0.86, sd 0.01, t(0.975, 2) = 4.303 -> half-width 0.0248
    assert table.loc["rum_f:neggrad_plus", "memorization_mix"] == "0.860 [0.835, 0.885]"


def test_rsu_table_by_order_and_cost_ratio():
    ev = _evaluation()
    rsu = rsu_table(ev, {"rsu:finetune": "easy_to_hard", "rsu:finetune@random": "random"})
    assert list(rsu["method"]) == ["finetune", "rsu:finetune", "rsu:finetune@random"]
    assert list(rsu["order"]) == ["(vanilla)", "easy_to_hard", "random"]
    assert set(rsu.columns) == {"method", "order", "random", "memorization_mix"}  # where RSU ran
    cost = cost_table(ev).set_index("method")
    assert cost.loc["retrain", "time / retrain"] == 1.0 and cost.loc["rum", "time / retrain"] == 0.5
    assert rsu_table(ev[~ev["method"].str.startswith("rsu")], {}) is None


def test_readme_lists_exactly_the_reports_deviations():
    """README's 'Deviations from SPEC' is the report's list, word for word (whitespace aside)."""
    import re
    from pathlib import Path

    from mudiff.deviations import DEVIATIONS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Deviations from SPEC", 1)[1].split("\n## ", 1)[0]
    listed = [" ".join(b.split()) for b in re.findall(r"^- (.*?)(?=^- |\Z)", section, re.M | re.S)]
    assert listed == [" ".join(d.split()) for d in DEVIATIONS]


def test_report_html_renders_tables_and_inlines_figures(tmp_path):
    import base64

    import pytest

    from mudiff.report.html import render_html

    png = b"\x89PNG\r\n\x1a\nfake"
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "tow.png").write_bytes(png)
    text = "# Report\n\n| method | ToW |\n|:--|--:|\n| finetune | 0.5 |\n\n![ToW](figures/tow.png)\n"
    page = render_html(text, tmp_path, "t")
    assert "<table>" in page and ">finetune</td>" in page
    assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in page and "figures/tow.png" not in page
    with pytest.raises(FileNotFoundError, match="missing.png"):
        render_html("![x](figures/missing.png)", tmp_path, "t")


def test_rum_and_rsu_figures_are_drawn(tmp_path):
    from mudiff.report import figures

    ev = _evaluation(seeds=(0, 1))
    assert figures.rum_comparison(ev, tmp_path / "rum.png").stat().st_size > 10_000
    assert (
        figures.rum_comparison(ev[ev["forget_set"] == "random"], tmp_path / "none.png") is None
    )  # no mix set
    orders = {"rsu:finetune": "easy_to_hard", "rsu:finetune@random": "random"}
    assert figures.rsu_by_order(ev, orders, tmp_path / "rsu.png").stat().st_size > 10_000


def test_unlearning_table_marks_inert_runs():
    import pandas as pd

    from mudiff.report.markdown import moved_text

    summary = pd.DataFrame(
        {"forget_flip_share": [0.0, 0.25, 0.01], "inert": [1.0, 0.0, 0.5], "seeds": [1, 1, 2]}
    )
    assert [moved_text(summary, i) for i in summary.index] == [
        "INERT 0.0%",
        "25.0%",
        "1.0% (inert in 1 of 2 seeds)",
    ]
