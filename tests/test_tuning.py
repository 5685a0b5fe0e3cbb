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
    return {
        "method": method,
        "setting": json.dumps({"lr": lr}),
        "draw": draw,
        "FA": 90.0,
        "RA": 99.0,
        "TA": ta,
        "ToW": tow,
        "FA_retrain": 95.0,
        "RA_retrain": 100.0,
        "TA_retrain": 97.0,
        "flip_share": flips,
    }


def test_grid_points_every_combination_in_a_stable_order():
    assert grid_points({"lr": [0.1, 0.2], "alpha": [0.9]}) == [
        {"alpha": 0.9, "lr": 0.1},
        {"alpha": 0.9, "lr": 0.2},
    ]


def test_select_highest_tow_among_points_that_move_f_without_collapsing():
    rows = pd.DataFrame(
        [
            _row("finetune", 0.01, 0.99, 97.0, 0.0),  # best ToW but inert: never selected
            _row("finetune", 0.1, 0.95, 96.0, 0.05),
            _row("finetune", 0.1, 0.93, 96.0, 0.03, draw=1),
            _row("finetune", 0.3, 0.97, 80.0, 0.30),  # collapsed (TA 17 points below retrain)
            _row("finetune", 0.03, 0.90, 97.0, 0.04),
            _row("neggrad", 0.1, 0.5, 50.0, 0.9),  # moves F only by collapsing
            _row("scrub", 0.01, 0.9, 97.0, 0.0),  # inert everywhere
        ]
    )
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
        "unlearn.finetune.lr is 0.01 but the tuning table selected 0.1"
    ]
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


def test_a_diverged_point_is_never_selected_and_the_table_says_so():
    rows = pd.DataFrame(
        [
            {**_row("finetune", 10.0, 0.999, 97.0, 0.5), "diverged": True},  # the best numbers, but diverged
            {**_row("finetune", 0.1, 0.95, 96.0, 0.05), "diverged": False},
            {**_row("finetune", 3.0, 0.98, 96.0, 0.05), "diverged": False},
            {
                **_row("finetune", 3.0, np.nan, np.nan, np.nan, draw=1),
                "diverged": True,
            },  # diverged on one draw only
            {**_row("neggrad", 10.0, np.nan, np.nan, np.nan), "diverged": True},
        ]
    )
    table = select(rows, flip_share=0.02, collapse_points=10)
    assert selected_settings(table) == {"finetune": {"lr": 0.1}}
    ft = table[table["method"] == "finetune"].set_index("setting")
    for lr in ("10.0", "3.0"):
        point = ft.loc[f'{{"lr": {lr}}}']
        assert (
            point["diverged"]
            and not point["selected"]
            and not point["moves_forget_set"]
            and not point["collapsed"]
        )
        assert np.isnan(point["ToW"]) and np.isnan(point["TA"]) and point["TA_retrain"] == 97.0
    assert not ft.loc['{"lr": 0.1}', "diverged"]
    status = table.groupby("method")["method_status"].first()
    assert status["finetune"] == (
        "selected: highest ToW among the settings that move F without collapsing; "
        'diverged (never eligible): {"lr": 10.0}, {"lr": 3.0}'
    )
    assert status["neggrad"] == "diverged at every setting: keeps the study's setting"
    assert (
        "diverged"
        not in select(pd.DataFrame([_row("finetune", 0.1, 0.95, 96.0, 0.05)]), 0.02, 10)[
            "method_status"
        ].iloc[0]
    )


def test_tuning_goes_on_past_a_diverging_grid_point(tmp_path, monkeypatch):
    """A real divergence: lr 1e30 (config refuses lr above 10, but lr 10 does not diverge on this tiny
    problem; tune() takes the grid as given). The point is recorded as diverged, run once, not selected."""
    import torch
    from tinydata import cpu, separable

    from mudiff import models, stages, tuning
    from mudiff.models import build
    from mudiff.stages import unlearn as unlearn_stage
    from mudiff.training import Recipe, fit

    prepared = separable(n_train=40, n_test=16, seed=0, flip=4)
    data = prepared.to(cpu())
    target = fit(
        build("mlp", data.shape, 2, seed=0),
        data,
        torch.arange(40),
        Recipe(epochs=5, batch_size=16, lr=0.05),
        seed=0,
    )
    monkeypatch.chdir(tmp_path)
    for need in ("results/t/seed_0/target/model.pt", "data/tiny/arrays.npz"):
        (tmp_path / need).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / need).write_bytes(b"")
    monkeypatch.setattr(tuning, "dataset_dir", lambda data_cfg: "tiny")
    monkeypatch.setattr(stages, "load_data", lambda path, device: (prepared, data))
    monkeypatch.setattr(models, "load", lambda name, p, path, device: target)
    calls = []
    real = unlearn_stage.unlearn_one

    def counted(method, params, *a, **k):
        calls.append((method, getattr(params, "lr", None)))
        return real(method, params, *a, **k)

    monkeypatch.setattr(unlearn_stage, "unlearn_one", counted)
    cfg = {
        "name": "t",
        "data": {"root": "data"},
        "device": "cpu",
        "model": "mlp",
        "train": {
            "epochs": 2,
            "batch_size": 16,
            "lr": 0.05,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "schedule": "constant",
            "augment": False,
        },
        "forget_sets": {"size": 4, "seed": 0},
        "evaluate": {"mia_seed": 0, "inert_flip_share": 0.0},
        "unlearn": {"finetune": {"epochs": 1, "batch_size": 16}},
        "tune": {"draws": 2, "collapse_points": 100, "grid": {"finetune": {"lr": [0.01, 1e30]}}},
    }
    table = tuning.tune(cfg, tmp_path / "table.csv")
    assert (
        calls.count(("finetune", 1e30)) == 1 and calls.count(("finetune", 0.01)) == 2
    )  # not rerun on draw 1
    by = table.set_index("setting")
    assert by.loc['{"lr": 1e+30}', "diverged"] and not by.loc['{"lr": 1e+30}', "selected"]
    assert by.loc['{"lr": 0.01}', "selected"] and not by.loc['{"lr": 0.01}', "diverged"]
    assert 'diverged (never eligible): {"lr": 1e+30}' in by.loc['{"lr": 0.01}', "method_status"]
    written = pd.read_csv(tmp_path / "table.csv")
    assert written["diverged"].tolist() == table["diverged"].tolist()
