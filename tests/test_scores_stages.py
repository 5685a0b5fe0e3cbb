"""The score stages end to end on a tiny synthetic study (a random target, its checkpoints and
dynamics, a bank): each registered score's column equals its science function called directly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tinydata import cpu, separable

from mudiff.data import Prepared
from mudiff.io import (
    read_json,
    read_table,
    save_checkpoints,
    save_model,
    write_arrays,
    write_json,
    write_table,
)
from mudiff.models import build

N_TRAIN, EPOCHS, K = 40, 4, 8


def save_prepared(prepared: Prepared, path) -> None:
    write_arrays(
        path,
        x_train=prepared.x_train,
        y_train=prepared.y_train,
        id_train=prepared.id_train,
        x_test=prepared.x_test,
        y_test=prepared.y_test,
        id_test=prepared.id_test,
        num_classes=np.array(prepared.num_classes),
        scale=np.array(prepared.scale),
        mean=prepared.mean,
        std=prepared.std,
    )


def make_study(root) -> dict:
    """The inputs the score stages read, written as the pipeline writes them."""
    from mudiff.stages.train_target import dynamics_table

    cpu()
    prepared = separable(n_train=N_TRAIN, n_test=16, flip=3)
    prepared.id_train = np.arange(100, 100 + N_TRAIN)[::-1].copy()  # ids not in row order
    paths = {
        k: str(root / name)
        for k, name in [
            ("arrays", "arrays.npz"),
            ("model", "model.pt"),
            ("checkpoints", "checkpoints.pt"),
            ("dynamics", "dynamics.parquet"),
            ("bank", "bank.npz"),
            ("bank_summary", "bank_summary.json"),
        ]
    }
    save_prepared(prepared, paths["arrays"])
    save_model(build("mlp", prepared.shape, prepared.num_classes, seed=1), paths["model"])
    states = {e: build("mlp", prepared.shape, prepared.num_classes, seed=10 + e).state_dict() for e in (2, 4)}
    save_checkpoints(states, paths["checkpoints"])
    rng = np.random.default_rng(0)
    p_y = rng.random((EPOCHS, N_TRAIN))
    records = {
        "p_y": p_y,
        "max_p": np.maximum(p_y, 0.5),
        "neg_entropy": -rng.random((EPOCHS, N_TRAIN)),
        "correct": rng.random((EPOCHS, N_TRAIN)) < 0.6,
    }
    table = dynamics_table(prepared.id_train, records).sample(frac=1.0, random_state=0)  # rows in any order
    write_table(table, paths["dynamics"])
    mask = rng.random((K, N_TRAIN)) < 0.5
    write_arrays(
        paths["bank"],
        id_train=prepared.id_train,
        mask=mask,
        phi_train=rng.normal(size=(K, N_TRAIN)),
        correct_train=rng.random((K, N_TRAIN)) < 0.7,
    )
    write_json({"seconds": 12.5}, paths["bank_summary"])
    return paths


def run_stage(
    module, root, paths: dict, names: list[str], scores_cfg: dict | None = None, name: str = ""
) -> dict:
    """Runs a score stage on the study; its output paths."""
    rule = module.__name__.rpartition(".")[2]
    tag = name or rule
    out = {"scores": str(root / f"{tag}.parquet"), "timings": str(root / f"{tag}_timings.json")}
    if rule == "scores_target":
        out["embeddings"] = str(root / f"{tag}_embeddings.npz")
    job = {
        "rule": rule,
        "study": "s",
        "seed": 3,
        "wildcards": {},
        "input": paths,
        "output": out,
        "params": {"model": "mlp", "device": "cpu", "scores": {"names": names, **(scores_cfg or {})}},
    }
    module.run(job)
    return out


# ------------------------------------------------------------------------------------- the registry


def test_every_registered_score_has_compute_and_reads_only_inputs_members():
    from functools import cached_property

    from mudiff.scores import NAMES, NEEDS, REGISTRY, get
    from mudiff.scores.inputs import Inputs

    for need in NEEDS:
        assert isinstance(getattr(Inputs, need), cached_property), need
    for name in NAMES:
        assert callable(get(name).compute), name
        assert REGISTRY[name].needs and set(REGISTRY[name].needs) <= set(NEEDS), name


def test_stage_split_and_dynamics_scores_from_the_registry():
    from mudiff.scores import FROM_BANK, FROM_DYNAMICS, FROM_TARGET, NAMES, get
    from mudiff.scores.dynamics import FromDynamics
    from mudiff.scores.inputs import DYNAMICS_COLUMNS

    assert FROM_BANK == ("memorization", "privacy_risk")
    assert FROM_DYNAMICS == ("confidence", "max_conf", "entropy", "bi_acc", "forgetting_events")
    assert FROM_TARGET == (
        "holdout_kl",
        "curvature",
        "centroid_distance",
        "margin",
        "grad_norm",
        "knn_disagreement",
    )
    assert sorted(FROM_BANK + FROM_DYNAMICS + FROM_TARGET) == sorted(NAMES)
    columns = {n: get(n).column for n in FROM_DYNAMICS}
    assert all(isinstance(get(n), FromDynamics) for n in FROM_DYNAMICS)
    assert columns == {
        "confidence": "p_y",
        "max_conf": "max_p",
        "entropy": "neg_entropy",
        "bi_acc": "correct",
        "forgetting_events": "correct",
    }
    assert set(columns.values()) <= set(DYNAMICS_COLUMNS)


def test_score_params_and_their_defaults():
    import dataclasses

    from mudiff.options import SGDSettings as SGD
    from mudiff.scores import params, params_of

    classes = params()
    assert sorted(classes) == ["curvature", "grad_norm", "holdout_kl", "knn_disagreement"]
    assert all(dataclasses.is_dataclass(c) for c in classes.values())
    assert issubclass(classes["holdout_kl"], SGD)
    defaults = {name: dataclasses.asdict(cls()) for name, cls in classes.items()}
    assert defaults == {
        "holdout_kl": {
            "lr": 0.1,
            "max_epochs": 30,
            "patience": 4,
            "batch_size": 64,
            "momentum": 0.9,
            "weight_decay": 5e-4,
        },
        "curvature": {"h": 0.01, "batch_size": 1024},
        "grad_norm": {"batch_size": 1024},
        "knn_disagreement": {"k": 10},
    }
    # a job's block is built by the score's Params; an absent block gives its defaults
    assert params_of("knn_disagreement", {"names": [], "knn_disagreement": {"k": 3}}).k == 3
    assert params_of("curvature", {"names": []}) == classes["curvature"]()
    assert params_of("margin", {"margin": {}}) is None
    with pytest.raises(TypeError, match="unknown key"):
        params_of("grad_norm", {"grad_norm": {"batch": 3}})
    with pytest.raises(ValueError, match="unknown score"):
        params_of("nope", {})


def test_the_score_registry_imports_no_torch():
    import os
    import subprocess
    import sys
    from pathlib import Path

    import mudiff

    code = "import sys, mudiff.scores; assert 'torch' not in sys.modules, 'torch imported'"
    env = {**os.environ, "PYTHONPATH": str(Path(mudiff.__file__).parents[1])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_registry_entries_name_the_modules_a_job_runs():
    from mudiff.scores import NAMES, modules
    from mudiff.sources import module_files, module_of

    entries = modules(NAMES)
    assert entries["confidence"] == "mudiff.scores.dynamics:CONFIDENCE"
    for name, entry in entries.items():
        files = module_files(module_of(entry))
        assert any(f.endswith(f"scores/{module_of(entry).rpartition('.')[2]}.py") for f in files), name


# ---------------------------------------------------------------------------------- the dispatch


def test_dynamics_arrays_follow_the_training_positions():
    from mudiff.scores.inputs import dynamics_arrays

    ids = np.array([12, 10, 11])
    table = pd.DataFrame(
        {
            "epoch": [2, 1, 1, 2, 1, 2],
            "id": [10, 11, 12, 12, 10, 11],
            "p_y": [0.6, 0.2, 0.3, 0.4, 0.1, 0.5],
            "max_p": 0.9,
            "neg_entropy": -0.1,
            "correct": [True, False, True, False, True, False],
        }
    )
    arrays = dynamics_arrays(table, ids)
    np.testing.assert_array_equal(arrays["p_y"], [[0.3, 0.1, 0.2], [0.4, 0.6, 0.5]])
    np.testing.assert_array_equal(arrays["correct"], [[True, True, False], [False, True, False]])


def test_compute_through_the_registry_equals_the_science_functions():
    from mudiff.scores import dynamics
    from mudiff.scores.centroid_distance import centroid_distance
    from mudiff.scores.curvature import curvature
    from mudiff.scores.grad_norm import cross_entropy_loss, grad_norm
    from mudiff.scores.inputs import Inputs, compute_scores
    from mudiff.scores.knn_disagreement import knn_disagreement
    from mudiff.scores.margin import margin
    from mudiff.scores.memorization import memorization
    from mudiff.training import predict

    device = cpu()
    prepared = separable(n_train=24, n_test=8)
    data = prepared.to(device)
    target = build("mlp", prepared.shape, prepared.num_classes, seed=0).eval()
    ckpt = build("mlp", prepared.shape, prepared.num_classes, seed=1).eval()
    rng = np.random.default_rng(1)
    dyn = {"p_y": rng.random((3, 24)), "correct": rng.random((3, 24)) < 0.5}
    z = rng.normal(size=(24, 5))
    bank = {"mask": rng.random((6, 24)) < 0.5, "correct_train": rng.random((6, 24)) < 0.5}
    inputs = Inputs(
        {},
        "mlp",
        device,
        prepared=prepared,
        data=data,
        target=target,
        dynamics=dyn,
        embeddings=z,
        checkpoints=[cross_entropy_loss(ckpt)],
        bank=bank,
    )
    inputs.paid.update(embeddings=100.0, bank=1000.0)
    names = [
        "forgetting_events",
        "confidence",
        "centroid_distance",
        "knn_disagreement",
        "margin",
        "grad_norm",
        "curvature",
        "memorization",
    ]
    values, seconds = compute_scores(
        names,
        inputs,
        {"names": names, "knn_disagreement": {"k": 3}, "curvature": {"h": 0.05, "batch_size": 5}},
    )
    assert list(values) == list(seconds) == names
    x = data.normalize(data.x_train)
    expected = {
        "forgetting_events": dynamics.forgetting_events(dyn["correct"]),
        "confidence": dynamics.confidence(dyn["p_y"]),
        "centroid_distance": centroid_distance(z),
        "knn_disagreement": knn_disagreement(z, prepared.y_train, 3),
        "margin": margin(predict(target, data, "train"), data.y_train).numpy(),
        "grad_norm": grad_norm(cross_entropy_loss(target), x, data.y_train).numpy(),
        "curvature": curvature([cross_entropy_loss(ckpt)], x, data.y_train, 0.05, 5).numpy(),
        "memorization": memorization(bank["mask"], bank["correct_train"]),
    }
    for name in names:
        assert isinstance(values[name], np.ndarray) and values[name].shape == (24,), name
        np.testing.assert_array_equal(values[name], expected[name], err_msg=name)
    # each score pays for the shared passes it reads, and only those
    assert 100 <= seconds["centroid_distance"] < 101 and 100 <= seconds["knn_disagreement"] < 101
    assert 1000 <= seconds["memorization"] < 1001
    own = ("forgetting_events", "confidence", "margin", "grad_norm", "curvature")
    assert all(seconds[n] < 100 for n in own)


def test_inputs_refuse_unknown_members():
    from mudiff.scores.inputs import Inputs

    with pytest.raises(TypeError, match="embedding"):
        Inputs({}, "mlp", embedding=np.zeros((2, 2)))


# ------------------------------------------------------------------------------------- the stages


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    import os

    from mudiff.stages import scores_bank, scores_target

    root = tmp_path_factory.mktemp("scores")
    old = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI",)}
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    cwd = os.getcwd()
    os.chdir(root)
    try:
        paths = make_study(root)
        names = [
            "knn_disagreement",
            "privacy_risk",
            "confidence",
            "holdout_kl",
            "curvature",
            "margin",
            "memorization",
            "grad_norm",
            "centroid_distance",
            "forgetting_events",
        ]
        cfg = {"holdout_kl": {"max_epochs": 2, "batch_size": 8}, "knn_disagreement": {"k": 4}}
        target = run_stage(scores_target, root, paths, names, cfg)
        bank = run_stage(scores_bank, root, paths, names, cfg)
    finally:
        os.chdir(cwd)
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return {"root": root, "paths": paths, "names": names, "target": target, "bank": bank}


def test_the_stages_write_each_score_as_its_function_computes_it(stages):
    from mudiff.data import load_prepared
    from mudiff.models import load as load_model
    from mudiff.scores.dynamics import confidence, forgetting_events
    from mudiff.scores.holdout_kl import finetune_on_holdout, symmetric_kl
    from mudiff.scores.inputs import dynamics_arrays
    from mudiff.scores.knn_disagreement import knn_disagreement
    from mudiff.scores.memorization import memorization
    from mudiff.training import embed, predict

    paths, device = stages["paths"], cpu()
    target, bank = read_table(stages["target"]["scores"]), read_table(stages["bank"]["scores"])
    assert list(target.columns) == [
        "id",
        "label",
        "knn_disagreement",
        "confidence",
        "holdout_kl",
        "curvature",
        "margin",
        "grad_norm",
        "centroid_distance",
        "forgetting_events",
    ]
    assert list(bank.columns) == ["id", "privacy_risk", "memorization"]
    prepared = load_prepared(paths["arrays"])
    np.testing.assert_array_equal(target["id"], prepared.id_train)
    np.testing.assert_array_equal(bank["id"], prepared.id_train)
    data = prepared.to(device)
    model = load_model("mlp", prepared, paths["model"], device).eval()
    z = embed(model, data, "train").numpy()
    emb = np.load(stages["target"]["embeddings"])
    np.testing.assert_array_equal(emb["train"], z)
    np.testing.assert_array_equal(emb["id_train"], prepared.id_train)
    np.testing.assert_array_equal(target["knn_disagreement"], knn_disagreement(z, prepared.y_train, 4))
    dyn = dynamics_arrays(read_table(paths["dynamics"]), prepared.id_train)
    np.testing.assert_array_equal(target["confidence"], confidence(dyn["p_y"]))
    np.testing.assert_array_equal(target["forgetting_events"], forgetting_events(dyn["correct"]))
    tuned, _ = finetune_on_holdout(model, data.normalize(data.x_test), data.y_test, 0.1, 2, 4, 8, seed=3)
    kl = symmetric_kl(predict(model, data, "train"), predict(tuned, data, "train")).numpy()
    np.testing.assert_array_equal(target["holdout_kl"], kl)
    arrays = dict(np.load(paths["bank"]))
    np.testing.assert_array_equal(bank["memorization"], memorization(arrays["mask"], arrays["correct_train"]))
    assert target.drop(columns=["id", "label"]).notna().all().all() and bank["privacy_risk"].notna().any()


def test_the_stages_timings_and_metrics(stages):
    from mlflow.tracking import MlflowClient

    t_target, t_bank = read_json(stages["target"]["timings"]), read_json(stages["bank"]["timings"])
    names = stages["names"]
    bank_names = ("privacy_risk", "memorization")
    assert sorted(t_target["seconds"]) == sorted(n for n in names if n not in bank_names)
    assert sorted(t_bank["seconds"]) == ["memorization", "privacy_risk"]
    assert t_bank["bank_seconds"] == 12.5 and all(s >= 12.5 for s in t_bank["seconds"].values())
    embed_seconds = t_target["embed_seconds"]
    assert embed_seconds > 0
    assert all(t_target["seconds"][n] >= embed_seconds for n in ("centroid_distance", "knn_disagreement"))
    client = MlflowClient(tracking_uri=f"sqlite:///{stages['root'] / 'mlflow.db'}")
    runs = {
        r.data.tags["mudiff.rule"]: r
        for r in client.search_runs([e.experiment_id for e in client.search_experiments()])
    }
    target_metrics = set(runs["scores_target"].data.metrics)
    assert runs["scores_target"].data.metrics["holdout_kl.epochs"] == 2

    def per_score(seconds):  # and the job's own timing (no start-up: the stage ran in this process)
        return {f"{k}.{n}" for k in ("seconds", "nan") for n in seconds} | {"job.work_s", "job.record_s"}

    assert target_metrics == {"holdout_kl.epochs", *per_score(t_target["seconds"])}
    assert set(runs["scores_bank"].data.metrics) == per_score(t_bank["seconds"])


def test_the_stage_refuses_a_bank_of_other_ids(tmp_path, monkeypatch):
    from mudiff.stages import scores_bank

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    paths = make_study(tmp_path)
    arrays = dict(np.load(paths["bank"]))
    write_arrays(paths["bank"], **{**arrays, "id_train": arrays["id_train"][::-1].copy()})
    with pytest.raises(ValueError, match="bank ids do not match"):
        run_stage(scores_bank, tmp_path, paths, ["memorization"])
    with pytest.raises(TypeError, match="unknown key"):
        scores_bank.run({"rule": "scores_bank", "params": {"model": "mlp", "scores": {}, "knn": 1}})
