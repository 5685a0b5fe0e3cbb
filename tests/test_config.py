"""Config validation: defaults, errors that name the key and the allowed values, shipped files, schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mudiff.config import ConfigError, load, validate
from mudiff.scores import NAMES

REPO = Path(__file__).resolve().parents[1]


def validate_named(raw):
    """`validate` of a config that names its study (a config file must), as these tests' configs do."""
    return validate({"name": "test", **raw})


def test_empty_config_gives_defaults():
    cfg = validate({"name": "default"})
    assert cfg["name"] == "default" and cfg["seeds"] == [0] and cfg["model"] == "mlp"
    assert cfg["data"]["dataset"] == "digits" and cfg["data"]["test_fraction"] == 0.2
    assert cfg["bank"] == {
        "models": 256,
        "fraction": 0.7,
        "epochs": 20,
        "batch_size": 128,
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 0.0005,
        "group_size": 0,
        "shards": 1,
        "model": None,
    }
    assert cfg["forget_sets"]["by_score"] == {"memorization": ["low", "mid", "high", "mix"]}
    assert set(cfg["unlearn"]) == {
        "retrain",
        "finetune",
        "neggrad",
        "neggrad_plus",
        "l1_sparse",
        "random_label",
        "salun",
        "scrub",
        "rum_f:neggrad_plus",
        "rum",
        "shuffle:neggrad_plus",
        "rsu:finetune",
        "rsu:finetune@hard_to_easy",
        "rsu:finetune@random",
    }
    # a variant takes its base method's defaults under its own hyperparameters
    assert (
        cfg["unlearn"]["rsu:finetune@random"]["order"] == "random"
        and cfg["unlearn"]["rsu:finetune@random"]["chunks"] == 3
    )
    # method defaults come from each method's Params
    assert cfg["unlearn"]["finetune"]["epochs"] == 10 and cfg["unlearn"]["neggrad"]["epochs"] == 5
    # the default study's tuned settings (config/tuning/default.csv) override SPEC's
    assert cfg["unlearn"]["finetune"]["lr"] == 0.1 and cfg["unlearn"]["neggrad_plus"]["alpha"] == 0.95
    assert cfg["unlearn"]["neggrad_plus"]["epochs"] == 5


def test_partial_section_keeps_other_defaults():
    cfg = validate_named({"bank": {"models": 8}, "unlearn": {"retrain": {}, "finetune": {"lr": 0.1}}})
    assert cfg["bank"]["models"] == 8 and cfg["bank"]["epochs"] == 20
    assert cfg["unlearn"]["retrain"] == {}
    assert cfg["unlearn"]["finetune"] == {
        "lr": 0.1,
        "epochs": 10,
        "batch_size": 64,
        "momentum": 0.9,
        "weight_decay": 0.0005,
    }


def test_unlearn_runs_only_the_methods_asked_for():
    cfg = validate_named({"unlearn": {"retrain": {}, "finetune": {}}})
    assert sorted(cfg["unlearn"]) == ["finetune", "retrain"]


def test_retrain_is_required():
    assert "'retrain' is required" in _error({"unlearn": {"finetune": {}}})


def _error(raw) -> str:
    with pytest.raises(ConfigError) as err:
        validate_named(raw)
    return str(err.value)


def test_unknown_top_level_key():
    msg = _error({"foo": 1})
    assert "'<top level>'" in msg and "['foo']" in msg
    assert (
        "allowed: ['analysis', 'bank', 'data', 'device', 'evaluate', 'forget_sets', 'model', 'name', 'scores', 'seeds', 'tracking', 'train', 'tune', 'unlearn']"
        in msg
    )


def test_unknown_nested_key():
    msg = _error({"bank": {"foo": 1}})
    assert "'bank'" in msg and "['foo']" in msg
    assert (
        "allowed: ['batch_size', 'epochs', 'fraction', 'group_size', 'lr', 'model', 'models', 'momentum', "
        "'shards', 'weight_decay']" in msg
    )


def test_wrong_type():
    msg = _error({"bank": {"models": "x"}})
    assert "'bank.models'" in msg and "'x' is not of type 'integer'" in msg


@pytest.mark.parametrize(
    "raw, key, text",
    [
        ({"bank": {"models": -1}}, "bank.models", "minimum of 2"),
        ({"bank": {"fraction": 1.5}}, "bank.fraction", "maximum of 1"),
        ({"bank": {"fraction": 0}}, "bank.fraction", "minimum of 0"),
        ({"bank": {"shards": 0}}, "bank.shards", "minimum of 1"),
        ({"train": {"lr": 0}}, "train.lr", "minimum of 0"),
    ],
)
def test_out_of_range(raw, key, text):
    msg = _error(raw)
    assert f"'{key}'" in msg and text in msg


def test_unknown_dataset_lists_datasets():
    msg = _error({"data": {"dataset": "imagenet"}})
    assert "'data.dataset'" in msg and "'imagenet'" in msg
    assert "['digits', 'fashion_mnist', 'mnist', 'cifar10', 'cifar100']" in msg


def test_unknown_method_lists_methods():
    msg = _error({"unlearn": {"retrain": {}, "nope": {}}})
    assert (
        "'unlearn'" in msg
        and "['nope']" in msg
        and "allowed: ['finetune', 'l1_sparse', 'neggrad', 'neggrad_plus', 'random_label', " in msg
    )


def test_unknown_meta_combination_lists_the_valid_ones():
    for bad in ("rum_f:retrain", "rum:finetune", "rsu:nope", "shuffle"):
        msg = _error({"unlearn": {"retrain": {}, bad: {}}})
        assert f"unknown key(s) [{bad!r}]" in msg
        assert "'rum_f:neggrad_plus'" in msg and "'rsu:scrub'" in msg and "'rum'" in msg


def test_meta_inner_hyperparameters_are_the_wrapped_methods():
    cfg = validate_named({"unlearn": {"retrain": {}, "rum_f:neggrad_plus": {"inner": {"lr": 0.1}}}})
    assert (
        cfg["unlearn"]["rum_f:neggrad_plus"]["inner"]["alpha"] == 0.99
        and cfg["unlearn"]["rum_f:neggrad_plus"]["inner"]["lr"] == 0.1
    )
    assert "'unlearn.rsu:finetune.inner'" in _error(
        {"unlearn": {"retrain": {}, "rsu:finetune": {"inner": {"alpha": 0.5}}}}
    )
    assert "'unlearn.rsu:finetune.order'" in _error(
        {"unlearn": {"retrain": {}, "rsu:finetune": {"order": "sideways"}}}
    )
    assert "'unlearn.rum.steps'" in _error({"unlearn": {"retrain": {}, "rum": {"steps": {"top": "salun"}}}})
    assert "'unlearn.rum.steps.mid'" in _error(
        {"unlearn": {"retrain": {}, "rum": {"steps": {"mid": "retrain"}}}}
    )


def test_unknown_method_parameter():
    msg = _error({"unlearn": {"retrain": {}, "finetune": {"alpha": 0.5}}})
    assert "'unlearn.finetune'" in msg and "['alpha']" in msg


def test_unknown_score_lists_scores():
    msg = _error({"forget_sets": {"by_score": {"nope": ["low"]}}})
    assert "'forget_sets.by_score'" in msg and "'nope'" in msg
    assert str(list(NAMES)) in msg and "'privacy_risk'" in msg and "'knn_disagreement'" in msg


def test_unknown_level():
    msg = _error({"forget_sets": {"by_score": {"memorization": ["top"]}}})
    assert "'forget_sets.by_score.memorization.0'" in msg and "['low', 'mid', 'high', 'mix']" in msg


def test_model_must_fit_dataset():
    msg = _error({"model": "resnet18"})
    assert (
        "'model'" in msg and "'resnet18' does not fit dataset 'digits'" in msg and "allowed: ['mlp']" in msg
    )
    msg = _error({"data": {"dataset": "cifar10"}})  # default model mlp on CIFAR
    assert "'mlp' does not fit dataset 'cifar10'" in msg and "['resnet18', 'resnet50']" in msg
    assert validate_named({"data": {"dataset": "mnist"}, "model": "smallcnn"})["model"] == "smallcnn"


def test_bank_model_is_a_registered_model_that_fits_the_dataset():
    msg = _error({"bank": {"model": "vgg"}})
    assert (
        "config key 'bank.model': 'vgg' is not one of ['mlp', 'smallcnn', 'resnet18', 'resnet50'] (or null)"
        in msg
    )
    msg = _error({"bank": {"model": "smallcnn"}})
    assert "config key 'bank.model': 'smallcnn' does not fit dataset 'digits'; allowed: ['mlp']" in msg
    # another architecture than the target's, where the dataset fits both
    cfg = validate_named(
        {"data": {"dataset": "fashion_mnist"}, "model": "smallcnn", "bank": {"model": "mlp"}}
    )
    assert cfg["model"] == "smallcnn" and cfg["bank"]["model"] == "mlp"


def test_the_bank_jobs_get_their_architecture_named():
    from mudiff.config import bank_section

    cfg = validate_named({})
    assert cfg["bank"]["model"] is None and bank_section(cfg)["model"] == "mlp"  # null: the study's model
    named = validate_named({"bank": {"model": "mlp"}})
    assert bank_section(named) == bank_section(cfg)  # naming the study's architecture changes no job
    mixed = validate_named(
        {"data": {"dataset": "fashion_mnist"}, "model": "smallcnn", "bank": {"model": "mlp"}}
    )
    assert bank_section(mixed)["model"] == "mlp"


def test_bank_shards_at_most_the_models():
    assert validate_named({"bank": {"models": 8, "shards": 8}})["bank"]["shards"] == 8
    msg = _error({"bank": {"models": 8, "shards": 9}})
    assert "config key 'bank.shards': 9 shards for a bank of 8 models; at most bank.models" in msg


def test_semantic_checks():
    assert "forget_sets.size" in _error({"forget_sets": {"size": 2.5}})
    assert "'rum' applies to memorization only" in _error(
        {"forget_sets": {"mid_rule": "rum", "by_score": {"confidence": ["mid"]}}}
    )


def test_forget_set_larger_than_train_is_refused_before_any_job():
    msg = _error({"forget_sets": {"size": 1500}})  # digits keeps 1437 of 1797 for training
    assert "'forget_sets.size'" in msg and "1500" in msg and "1437 training samples" in msg
    msg = _error({"model": "smallcnn", "data": {"dataset": "fashion_mnist"}, "forget_sets": {"size": 60001}})
    assert "60000 training samples" in msg
    # the whole train set is refused (nothing left to retain): test_forget_set_size_must_leave_a_retain_set
    assert (
        validate_named({"forget_sets": {"size": 1436, "entanglement": False}})["forget_sets"]["size"] == 1436
    )


def test_train_size_matches_the_digits_split():
    from mudiff.config import train_size
    from mudiff.data.digits import load

    for fraction in (0.2, 0.25, 0.5):
        assert train_size({"dataset": "digits", "test_fraction": fraction}) == len(
            load("digits", test_fraction=fraction).y_train
        )


def test_train_size_subset_is_checked_at_config_time():
    from mudiff.config import dataset_dir, train_size

    fm = {"model": "smallcnn", "data": {"dataset": "fashion_mnist", "train_size": 10000}}
    cfg = validate_named(fm)
    assert cfg["data"]["train_size"] == 10000 and cfg["data"]["subset_seed"] == 0
    assert train_size(cfg["data"]) == 10000 and dataset_dir(cfg["data"]) == "fashion_mnist-n10000-seed0"
    assert (
        validate_named({})["data"]["train_size"] is None
        and dataset_dir(validate_named({})["data"]) == "digits"
    )
    assert train_size({"dataset": "digits", "test_fraction": 0.2, "train_size": 0.5}) == round(0.5 * 1437)
    assert train_size({"dataset": "cifar100", "train_size": 0}) == 50_000  # 0 = the whole train set
    # larger than the official train set, fewer than the classes, or not a whole count: refused, naming the key
    msg = _error({**fm, "data": {"dataset": "fashion_mnist", "train_size": 60001}})
    assert "'data.train_size'" in msg and "60001" in msg and "60000 training samples" in msg
    msg = _error({"data": {"train_size": 9}})
    assert "'data.train_size'" in msg and "10 classes" in msg
    assert "'data.train_size'" in _error(
        {"model": "resnet18", "data": {"dataset": "cifar100", "train_size": 99}}
    )
    assert "'data.train_size'" in _error({"data": {"train_size": 0.001}})  # 1 of 1437 digits
    assert "'data.train_size'" in _error({"data": {"train_size": 100.5}})
    assert "'data.train_size'" in _error({"data": {"train_size": -1}})
    assert "'data.subset_seed'" in _error({"data": {"subset_seed": -1}})
    # forget-set sizes are checked against the subset, not the official train set
    msg = _error({**fm, "forget_sets": {"size": 10001}})
    assert "'forget_sets.size'" in msg and "10000 training samples" in msg and "data.train_size" in msg
    assert validate_named({**fm, "forget_sets": {"size": 300}})["forget_sets"]["size"] == 300


def test_forget_sets_need_their_scores():
    assert "'forget_sets.risk_ranked': needs score 'privacy_risk'" in _error(
        {"scores": {"names": ["memorization", "centroid_distance"]}}
    )
    assert "'forget_sets.entanglement': needs score 'centroid_distance'" in _error(
        {"scores": {"names": ["memorization", "privacy_risk"]}}
    )
    assert "'forget_sets.by_score.margin': needs score 'margin'" in _error(
        {
            "forget_sets": {"by_score": {"margin": ["low"]}},
            "scores": {"names": ["memorization", "privacy_risk", "centroid_distance"]},
        }
    )


def test_allowed_scores_come_from_the_registry():
    from mudiff.config import SCORES_AVAILABLE
    from mudiff.scores import REGISTRY

    assert list(SCORES_AVAILABLE) == list(REGISTRY) and validate_named({})["scores"]["names"] == list(
        REGISTRY
    )


def test_non_mapping_refused():
    with pytest.raises(ConfigError, match="mapping"):
        validate(["a"])


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (REPO / "config").glob("*.yaml") if p.name != "schema.yaml")
)
def test_shipped_configs_load(name):
    cfg = load(REPO / "config" / name)
    assert cfg["name"] == name.removesuffix(".yaml")
    assert "retrain" in cfg["unlearn"]


def test_default_yaml_is_the_defaults():
    assert load(REPO / "config" / "default.yaml") == validate({"name": "default"})


def test_schema_file_is_up_to_date(tmp_path):
    out = tmp_path / "schema.yaml"
    # this checkout's package, not whichever one is installed
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow")}
    subprocess.run(
        [sys.executable, "-m", "mudiff.config", "--write-schema", str(out)], check=True, cwd=tmp_path, env=env
    )
    assert out.read_text() == (REPO / "config" / "schema.yaml").read_text()


def test_config_reference_is_up_to_date():
    """docs/config.md is generated from the same dataclasses: regenerate it when they change."""
    from mudiff.config import docs

    assert docs() == (REPO / "docs" / "config.md").read_text()


def test_config_reference_lists_every_key():
    text = (REPO / "docs" / "config.md").read_text()
    for key in ("`bank.models`", "`forget_sets.size`", "`unlearn.finetune.lr`", "`train.schedule`"):
        assert key in text


def test_a_method_may_run_on_some_forget_sets_only():
    cfg = validate_named({"unlearn": {"retrain": {}, "rum": {"forget_sets": ["memorization_mix"]}}})
    assert cfg["unlearn"]["rum"]["forget_sets"] == ["memorization_mix"]
    assert "forget_sets" not in cfg["unlearn"]["retrain"]
    assert "'unlearn.rum.forget_sets'" in _error({"unlearn": {"retrain": {}, "rum": {"forget_sets": []}}})
    assert "'unlearn.retrain.forget_sets'" in _error({"unlearn": {"retrain": {"forget_sets": ["random"]}}})


def test_method_hyper_leaves_out_where_a_method_runs():
    from mudiff.config import method_hyper

    assert method_hyper({"lr": 0.1, "forget_sets": ["random"]}) == {"lr": 0.1}


def test_a_method_on_a_forget_set_the_study_does_not_build_is_refused():
    msg = _error(
        {
            "unlearn": {"retrain": {}, "finetune": {"forget_sets": ["es_high", "memorization_typo"]}},
            "forget_sets": {"entanglement": False},
        }
    )
    assert "'unlearn.finetune.forget_sets'" in msg and "['es_high', 'memorization_typo']" in msg
    assert "this study builds ['random', 'memorization_low'" in msg


def test_method_variants_are_validated_against_their_base_method():
    cfg = validate_named(
        {"unlearn": {"retrain": {}, "finetune": {}, "finetune@fast": {"lr": 0.1, "forget_sets": ["random"]}}}
    )
    assert cfg["unlearn"]["finetune@fast"] == {
        "lr": 0.1,
        "epochs": 10,
        "batch_size": 64,
        "momentum": 0.9,
        "weight_decay": 0.0005,
        "forget_sets": ["random"],
    }
    assert "unknown key(s) ['alpha']" in _error({"unlearn": {"retrain": {}, "finetune@fast": {"alpha": 0.5}}})
    assert "'unlearn.rsu:finetune@r.order': 'sideways'" in _error(
        {"unlearn": {"retrain": {}, "rsu:finetune@r": {"order": "sideways"}}}
    )
    for bad in ("nomethod@x", "retrain@again", "finetune@two words", "finetune@"):
        message = _error({"unlearn": {"retrain": {}, bad: {}}})
        assert repr(bad)[1:-1] in message and "variant" in message, bad


def test_seeds_are_a_nonempty_list_of_distinct_non_negative_ints():
    assert validate_named({"seeds": [3, 1]})["seeds"] == [3, 1]
    assert "'seeds'" in _error({"seeds": []})
    assert "'seeds'" in _error({"seeds": [1, 1]})
    assert "'seeds'" in _error({"seeds": [-1]})
    assert "'seeds.0'" in _error({"seeds": ["a"]})
    assert "'seeds'" in _error({"seed": 0})  # the old single seed: refused, naming the list that replaced it


def test_meta_steps_inherit_the_studys_settings_unless_inner_overrides():
    # RUM's scripts run each step at the settings of that method on its own; `inner` overrides.
    raw = {
        "unlearn": {
            "retrain": {},
            "finetune": {"lr": 0.1, "epochs": 7},
            "salun": {"lr": 0.2},
            "rum": {"inner": {"salun": {"epochs": 3}}},
            "rsu:finetune": {},
            "rsu:finetune@random": {"order": "random", "inner": {"lr": 0.5}},
            "rum_f:neggrad": {},
        }
    }
    cfg = validate_named(raw)
    assert cfg["unlearn"]["rsu:finetune"]["inner"]["lr"] == 0.1
    assert cfg["unlearn"]["rsu:finetune"]["inner"]["epochs"] == 7
    assert cfg["unlearn"]["rsu:finetune@random"]["inner"]["lr"] == 0.5
    assert cfg["unlearn"]["rsu:finetune@random"]["inner"]["epochs"] == 7
    assert cfg["unlearn"]["rum"]["inner"]["finetune"]["lr"] == 0.1
    assert (
        cfg["unlearn"]["rum"]["inner"]["salun"]["lr"],
        cfg["unlearn"]["rum"]["inner"]["salun"]["epochs"],
    ) == (0.2, 3)
    assert cfg["unlearn"]["rum_f:neggrad"]["inner"]["lr"] == 1e-4  # not in the study: the method's default
    assert "forget_sets" not in cfg["unlearn"]["rsu:finetune"]["inner"]
    assert validate_named(cfg) == cfg  # idempotent


# ----------------------------------------------------------------------------- issue 14: refused at config time


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"unlearn": {"retrain": {}, "finetune": {"lr": float("nan")}}}, "unlearn.finetune.lr"),
        ({"bank": {"weight_decay": float("inf")}}, "bank.weight_decay"),
        (
            {"analysis": {"hard_share": float("nan")}},
            "analysis.hard_share",
        ),  # NaN passes every JSON-schema limit
        ({"scores": {"curvature": {"h": float("-inf")}}}, "scores.curvature.h"),
        (
            {"unlearn": {"retrain": {}, "rsu:finetune": {"inner": {"momentum": float("nan")}}}},
            "unlearn.rsu:finetune.inner.momentum",
        ),
        (
            {"unlearn": {"retrain": {}, "rum": {"inner": {"salun": {"share": float("nan")}}}}},
            "unlearn.rum.inner.salun.share",
        ),
        (
            {"unlearn": {"retrain": {}, "finetune@x": {"weight_decay": float("nan")}}},
            "unlearn.finetune@x.weight_decay",
        ),
        (
            {"tune": {"grid": {"neggrad_plus": {"alpha": [0.9, float("nan")]}}}},
            "tune.grid.neggrad_plus.alpha.1",
        ),
    ],
)
def test_non_finite_numbers_are_refused_anywhere(raw, key):
    msg = _error(raw)
    assert f"config key '{key}'" in msg and "not a finite number" in msg


def test_non_finite_yaml_values_are_refused(tmp_path):
    path = tmp_path / "nan.yaml"
    path.write_text("name: nan\nunlearn:\n  retrain: {}\n  finetune: {lr: .nan}\n")
    with pytest.raises(ConfigError, match=r"config key 'unlearn\.finetune\.lr': nan is not a finite number"):
        load(path)


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"unlearn": {"retrain": {}, "finetune": {"lr": 1e30}}}, "unlearn.finetune.lr"),
        ({"train": {"lr": 11.0}}, "train.lr"),
        ({"bank": {"lr": 1e3}}, "bank.lr"),
        ({"scores": {"holdout_kl": {"lr": 100.0}}}, "scores.holdout_kl.lr"),
        (
            {"unlearn": {"retrain": {}, "rum_f:neggrad": {"inner": {"lr": 50.0}}}},
            "unlearn.rum_f:neggrad.inner.lr",
        ),
        (
            {"unlearn": {"retrain": {}, "rum": {"inner": {"salun": {"lr": 20.0}}}}},
            "unlearn.rum.inner.salun.lr",
        ),
        ({"unlearn": {"retrain": {}, "scrub@big": {"lr": 12.0}}}, "unlearn.scrub@big.lr"),
        ({"tune": {"grid": {"finetune": {"lr": [0.1, 1e3]}}}}, "tune.grid.finetune.lr.1"),
        ({"unlearn": {"retrain": {}, "neggrad": {"lr": 0}}}, "unlearn.neggrad.lr"),
    ],
)
def test_learning_rates_must_be_above_0_and_at_most_10(raw, key):
    msg = _error(raw)
    assert f"config key '{key}'" in msg and "a learning rate must be above 0 and at most 10" in msg


def test_learning_rate_bound_is_in_the_schema_of_every_lr():
    from mudiff.config import schema

    methods = schema()["properties"]["unlearn"]["properties"]
    for name, method in methods.items():
        if "lr" in method["properties"]:
            assert (
                method["properties"]["lr"]["exclusiveMinimum"],
                method["properties"]["lr"]["maximum"],
            ) == (0, 10), name
    assert (
        validate_named({"train": {"lr": 10}, "unlearn": {"retrain": {}, "finetune": {"lr": 10.0}}})["train"][
            "lr"
        ]
        == 10
    )


def test_a_config_must_name_its_study(tmp_path):
    with pytest.raises(ConfigError, match=r"config key 'name': required.*overwrite results/default"):
        validate({"unlearn": {"retrain": {}}})
    path = tmp_path / "unnamed.yaml"
    path.write_text("bank: {models: 8}\n")
    with pytest.raises(ConfigError, match=r"config key 'name': required"):
        load(path)
    # every shipped config names itself (the default study included)
    for shipped in (REPO / "config").glob("*.yaml"):
        if shipped.name != "schema.yaml":
            assert yaml.safe_load(shipped.read_text()).get("name") == shipped.stem, shipped.name


def test_class_id_must_be_a_class_of_the_dataset():
    msg = _error({"forget_sets": {"class_id": 10}})
    assert (
        "config key 'forget_sets.class_id'" in msg
        and "10 is not a class of digits" in msg
        and "0 to 9" in msg
    )
    assert validate_named({"forget_sets": {"class_id": 9}})["forget_sets"]["class_id"] == 9
    cifar100 = {"model": "resnet18", "data": {"dataset": "cifar100"}}
    assert validate_named({**cifar100, "forget_sets": {"class_id": 99}})["forget_sets"]["class_id"] == 99
    assert "0 to 99" in _error({**cifar100, "forget_sets": {"class_id": 100}})


def test_forget_set_size_must_leave_a_retain_set_and_hold_a_sample():
    msg = _error({"forget_sets": {"size": 1437, "entanglement": False}})
    assert (
        "config key 'forget_sets.size'" in msg and "gives 1437 of the 1437 training samples of digits" in msg
    )
    assert "nothing would be left to retain" in msg
    msg = _error(
        {"forget_sets": {"size": 0.9999, "entanglement": False}}
    )  # a share that rounds to the whole set
    assert "gives 1437 of the 1437" in msg
    msg = _error({"forget_sets": {"size": 0.0001}})
    assert (
        "config key 'forget_sets.size'" in msg
        and "0.0001 gives 0 of the 1437 training samples" in msg
        and "empty" in msg
    )
    assert validate_named({"forget_sets": {"size": 0.001}})["forget_sets"]["size"] == 0.001  # 1 sample
    # a study that builds only the class set (whose size is its class's) takes any size
    only_class = {
        "random": False,
        "by_score": {},
        "entanglement": False,
        "risk_ranked": False,
        "class_id": 3,
        "size": 0.0001,
    }
    assert (
        validate_named({"forget_sets": only_class, "unlearn": {"retrain": {}}})["forget_sets"]["class_id"]
        == 3
    )


def test_entanglement_sets_need_a_size_their_slice_holds():
    from mudiff.forget_sets import entanglement_set

    # digits' 1437 training samples in 15 slices: slice 14 (es_high) holds 95
    msg = _error({"forget_sets": {"size": 96}})
    assert "config key 'forget_sets.size'" in msg and "96 samples" in msg and "the smallest of 95" in msg
    assert validate_named({"forget_sets": {"size": 95}})["forget_sets"]["size"] == 95
    table = pd.DataFrame({"id": np.arange(1437), "centroid_distance": np.linspace(0, 1, 1437)})
    assert len(entanglement_set(table, "high", 95)) == 95  # what the forget-set job then builds
    with pytest.raises(ValueError):
        entanglement_set(table, "high", 96)


@pytest.mark.parametrize(
    "raw, key, text",
    [
        (
            {"unlearn": {"retrain": {}, "rum": {"score": "margin"}}},
            "unlearn.rum.score",
            "RUM refines F by 'margin'",
        ),
        (
            {"unlearn": {"retrain": {}, "rum_f:salun@m": {"score": "grad_norm"}}},
            "unlearn.rum_f:salun@m.score",
            "'grad_norm'",
        ),
        (
            {"unlearn": {"retrain": {}, "rsu:finetune": {}}},
            "unlearn.rsu:finetune.score",
            "RSU ranks F by 'privacy_risk'",
        ),
        (
            {"unlearn": {"retrain": {}, "rum_f:finetune": {"score": "label"}}},
            "unlearn.rum_f:finetune.score",
            "'label' is not a score",
        ),
    ],
)
def test_meta_algorithms_need_the_score_they_order_by(raw, key, text):
    computed = {
        "scores": {"names": ["memorization", "centroid_distance"]},
        "forget_sets": {"risk_ranked": False},
    }
    msg = _error({**computed, **raw})
    assert f"config key '{key}'" in msg and text in msg


def test_meta_algorithms_without_a_score_to_order_by_pass():
    computed = {
        "scores": {"names": ["memorization", "centroid_distance"]},
        "forget_sets": {"risk_ranked": False},
    }
    cfg = validate_named(
        {
            **computed,
            "unlearn": {
                "retrain": {},
                "shuffle:finetune": {},
                "rum": {},
                "rsu:finetune@random": {"order": "random"},
            },
        }
    )
    assert cfg["unlearn"]["rum"]["score"] == "memorization"


@pytest.mark.parametrize(
    "fraction", [0.001, 9 / 1797, 9.5 / 1797, 10 / 1797, 0.5, 1787 / 1797, 1787.5 / 1797, 0.999]
)
def test_digits_test_fraction_is_refused_exactly_where_the_split_fails(fraction):
    from mudiff.data import digits

    try:
        digits.load("digits", test_fraction=fraction)
        splits = True
    except ValueError:
        splits = False
    small = {
        "forget_sets": {"size": 1, "entanglement": False},
        "scores": {"knn_disagreement": {"k": 1}},
    }  # fits a train set of 10
    if splits:
        assert (
            validate_named({**small, "data": {"test_fraction": fraction}})["data"]["test_fraction"]
            == fraction
        )
    else:
        msg = _error({**small, "data": {"test_fraction": fraction}})
        assert "config key 'data.test_fraction'" in msg and "fewer than its 10 classes" in msg
    assert splits == (fraction not in (0.001, 9 / 1797, 1787.5 / 1797, 0.999))


def test_digits_source_must_be_the_default():
    msg = _error({"data": {"source": "/some/folder"}})
    assert "config key 'data.source'" in msg and "use 'default'" in msg


def test_scores_the_whole_study_needs():
    msg = _error(
        {
            "scores": {"names": ["confidence", "centroid_distance", "privacy_risk"]},
            "forget_sets": {"by_score": {}},
        }
    )
    assert "config key 'scores.names'" in msg and "'memorization'" in msg and "proxies" in msg
    msg = _error({"scores": {"knn_disagreement": {"k": 1437}}})
    assert "config key 'scores.knn_disagreement.k'" in msg and "1437 training samples" in msg


def test_tune_grid_values_take_the_methods_limits():
    msg = _error({"tune": {"grid": {"scrub": {"forget_batch_size": [16, 0.5]}}}})
    assert "config key 'tune.grid.scrub.forget_batch_size.1'" in msg and "not of type 'integer'" in msg
    msg = _error({"tune": {"grid": {"neggrad_plus": {"alpha": [0.9, 1.5]}}}})
    assert "config key 'tune.grid.neggrad_plus.alpha.1'" in msg and "maximum of 1" in msg


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "empty"),
        ("\n# only a comment\n", "empty"),
        ("- name: a\n", "is a list, not a mapping"),
        ("just words\n", "is a str, not a mapping"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_check_refuses_an_empty_or_non_mapping_file(tmp_path, text, why):
    from mudiff.config import main

    path = tmp_path / "study.yaml"
    path.write_text(text)
    with pytest.raises(SystemExit) as exit_:
        main(["--check", str(path)])
    assert f"config file {path}" in str(exit_.value.code) and why in str(exit_.value.code)
