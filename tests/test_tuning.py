"""Method settings chosen on the random forget set by ToW (mudiff.tuning)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mudiff.config import load
from mudiff.tuning import draws_of, grid_points, mismatches, select, selected_settings

REPO = Path(__file__).resolve().parents[1]


def _row(method, lr, tow, ta, flips, draw=0):
    return {"method": method, "setting": json.dumps({"lr": lr}), "draw": draw, "FA": 90.0, "RA": 99.0, "TA": ta,
            "ToW": tow, "FA_retrain": 95.0, "RA_retrain": 100.0, "TA_retrain": 97.0, "flip_share": flips}


def test_grid_points_every_combination_in_a_stable_order():
    assert grid_points({"lr": [0.1, 0.2], "alpha": [0.9]}) == [{"alpha": 0.9, "lr": 0.1}, {"alpha": 0.9, "lr": 0.2}]


def test_select_highest_tow_among_points_that_move_f_without_collapsing():
    rows = pd.DataFrame([
        _row("finetune", 0.01, 0.99, 97.0, 0.0),   # best ToW but inert: never selected
        _row("finetune", 0.1, 0.95, 96.0, 0.05),
        _row("finetune", 0.1, 0.93, 96.0, 0.03, draw=1),
        _row("finetune", 0.3, 0.97, 80.0, 0.30),   # collapsed (TA 17 points below retrain)
        _row("finetune", 0.03, 0.90, 97.0, 0.04),
        _row("neggrad", 0.1, 0.5, 50.0, 0.9),      # moves F only by collapsing
        _row("scrub", 0.01, 0.9, 97.0, 0.0),       # inert everywhere
    ])
    table = select(rows, flip_share=0.02, collapse_points=10)
    assert selected_settings(table) == {"finetune": {"lr": 0.1}}
    ft = table[table["method"] == "finetune"].set_index("setting")
    assert ft.loc['{"lr": 0.1}', "ToW"] == pytest.approx(0.94)  # mean over draws
    assert not ft.loc['{"lr": 0.01}', "moves_forget_set"] and ft.loc['{"lr": 0.3}', "collapsed"]
    status = table.groupby("method")["method_status"].first()
    assert status["neggrad"].startswith("no setting moves F without collapsing")
    assert status["scrub"].startswith("inert at every setting")


def test_draws_start_with_the_studys_random_set():
    from mudiff.forget_sets import random_set, replicate_seed

    ids = np.arange(100, 300)
    sets = draws_of(ids, 0.1, 5, 3)
    assert np.array_equal(sets[0], random_set(ids, 20, replicate_seed(5, 0)))
    assert len({tuple(s) for s in sets}) == 3 and all(len(s) == 20 for s in sets)


def test_mismatches_name_the_key():
    table = select(pd.DataFrame([_row("finetune", 0.1, 0.95, 96.0, 0.05)]), 0.02, 10)
    assert mismatches({"unlearn": {"finetune": {"lr": 0.01}}}, table) == [
        "unlearn.finetune.lr is 0.01 but the tuning table selected 0.1"]
    assert mismatches({"unlearn": {"finetune": {"lr": 0.1}}}, table) == []


@pytest.mark.parametrize("study", ["default", "fashion_mnist_cpu"])
def test_shipped_settings_are_the_ones_the_committed_tuning_table_selected(study):
    table_path = REPO / "config" / "tuning" / f"{study}.csv"
    if not table_path.exists():
        pytest.skip(f"no tuning table for {study}")
    cfg = load(REPO / "config" / f"{study}.yaml")
    table = pd.read_csv(table_path)
    assert mismatches(cfg, table) == []
    assert set(selected_settings(table)) <= set(cfg["unlearn"])
