"""Config validation: defaults, errors that name the key and the allowed values, shipped files, schema."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mudiff.config import ConfigError, load, validate
from mudiff.scores import NAMES

REPO = Path(__file__).resolve().parents[1]


def test_empty_config_gives_defaults():
    cfg = validate({})
    assert cfg["name"] == "default" and cfg["seeds"] == [0] and cfg["model"] == "mlp"
    assert cfg["data"]["dataset"] == "digits" and cfg["data"]["test_fraction"] == 0.2
    assert cfg["bank"] == {"models": 256, "fraction": 0.7, "epochs": 20, "batch_size": 128, "lr": 0.1,
                           "momentum": 0.9, "weight_decay": 0.0005, "group_size": 0}
    assert cfg["forget_sets"]["by_score"] == {"memorization": ["low", "mid", "high", "mix"]}
    assert set(cfg["unlearn"]) == {"retrain", "finetune", "neggrad", "neggrad_plus", "l1_sparse", "random_label", "salun",
                                    "scrub", "rum_f:neggrad_plus", "rum", "shuffle:neggrad_plus", "rsu:finetune",
                                    "rsu:finetune@hard_to_easy", "rsu:finetune@random"}
    # a variant takes its base method's defaults under its own hyperparameters
    assert cfg["unlearn"]["rsu:finetune@random"]["order"] == "random" and cfg["unlearn"]["rsu:finetune@random"]["chunks"] == 3
    # method defaults come from each method's Params
    assert cfg["unlearn"]["finetune"]["epochs"] == 10 and cfg["unlearn"]["neggrad"]["epochs"] == 5
    # the default study's tuned settings (config/tuning/default.csv) override SPEC's
    assert cfg["unlearn"]["finetune"]["lr"] == 0.1 and cfg["unlearn"]["neggrad_plus"]["alpha"] == 0.95
    assert cfg["unlearn"]["neggrad_plus"]["epochs"] == 5


def test_partial_section_keeps_other_defaults():
    cfg = validate({"bank": {"models": 8}, "unlearn": {"retrain": {}, "finetune": {"lr": 0.1}}})
    assert cfg["bank"]["models"] == 8 and cfg["bank"]["epochs"] == 20
    assert cfg["unlearn"]["retrain"] == {}
    assert cfg["unlearn"]["finetune"] == {"lr": 0.1, "epochs": 10, "batch_size": 64, "momentum": 0.9, "weight_decay": 0.0005}


def test_unlearn_runs_only_the_methods_asked_for():
    cfg = validate({"unlearn": {"retrain": {}, "finetune": {}}})
    assert sorted(cfg["unlearn"]) == ["finetune", "retrain"]


def test_retrain_is_required():
    assert "'retrain' is required" in _error({"unlearn": {"finetune": {}}})


def _error(raw) -> str:
    with pytest.raises(ConfigError) as err:
        validate(raw)
    return str(err.value)


def test_unknown_top_level_key():
    msg = _error({"foo": 1})
    assert "'<top level>'" in msg and "['foo']" in msg
    assert "allowed: ['analysis', 'bank', 'data', 'device', 'evaluate', 'forget_sets', 'model', 'name', 'scores', 'seeds', 'train', 'tune', 'unlearn']" in msg


def test_unknown_nested_key():
    msg = _error({"bank": {"foo": 1}})
    assert "'bank'" in msg and "['foo']" in msg
    assert "allowed: ['batch_size', 'epochs', 'fraction', 'group_size', 'lr', 'models', 'momentum', 'weight_decay']" in msg


def test_wrong_type():
    msg = _error({"bank": {"models": "x"}})
    assert "'bank.models'" in msg and "'x' is not of type 'integer'" in msg


@pytest.mark.parametrize("raw, key, text", [
    ({"bank": {"models": -1}}, "bank.models", "minimum of 2"),
    ({"bank": {"fraction": 1.5}}, "bank.fraction", "maximum of 1"),
    ({"bank": {"fraction": 0}}, "bank.fraction", "minimum of 0"),
    ({"train": {"lr": 0}}, "train.lr", "minimum of 0"),
])
def test_out_of_range(raw, key, text):
    msg = _error(raw)
    assert f"'{key}'" in msg and text in msg


def test_unknown_dataset_lists_datasets():
    msg = _error({"data": {"dataset": "imagenet"}})
    assert "'data.dataset'" in msg and "'imagenet'" in msg
    assert "['digits', 'fashion_mnist', 'mnist', 'cifar10', 'cifar100']" in msg


def test_unknown_method_lists_methods():
    msg = _error({"unlearn": {"retrain": {}, "nope": {}}})
    assert "'unlearn'" in msg and "['nope']" in msg and "allowed: ['finetune', 'l1_sparse', 'neggrad', 'neggrad_plus', 'random_label', " in msg


def test_unknown_meta_combination_lists_the_valid_ones():
    for bad in ("rum_f:retrain", "rum:finetune", "rsu:nope", "shuffle"):
        msg = _error({"unlearn": {"retrain": {}, bad: {}}})
        assert f"unknown key(s) [{bad!r}]" in msg
        assert "'rum_f:neggrad_plus'" in msg and "'rsu:scrub'" in msg and "'rum'" in msg


def test_meta_inner_hyperparameters_are_the_wrapped_methods():
    cfg = validate({"unlearn": {"retrain": {}, "rum_f:neggrad_plus": {"inner": {"lr": 0.1}}}})
    assert cfg["unlearn"]["rum_f:neggrad_plus"]["inner"]["alpha"] == 0.99 and cfg["unlearn"]["rum_f:neggrad_plus"]["inner"]["lr"] == 0.1
    assert "'unlearn.rsu:finetune.inner'" in _error({"unlearn": {"retrain": {}, "rsu:finetune": {"inner": {"alpha": 0.5}}}})
    assert "'unlearn.rsu:finetune.order'" in _error({"unlearn": {"retrain": {}, "rsu:finetune": {"order": "sideways"}}})
    assert "'unlearn.rum.steps'" in _error({"unlearn": {"retrain": {}, "rum": {"steps": {"top": "salun"}}}})
    assert "'unlearn.rum.steps.mid'" in _error({"unlearn": {"retrain": {}, "rum": {"steps": {"mid": "retrain"}}}})


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
    assert "'model'" in msg and "'resnet18' does not fit dataset 'digits'" in msg and "allowed: ['mlp']" in msg
    msg = _error({"data": {"dataset": "cifar10"}})  # default model mlp on CIFAR
    assert "'mlp' does not fit dataset 'cifar10'" in msg and "['resnet18', 'resnet50']" in msg
    assert validate({"data": {"dataset": "mnist"}, "model": "smallcnn"})["model"] == "smallcnn"


def test_semantic_checks():
    assert "forget_sets.size" in _error({"forget_sets": {"size": 2.5}})
    assert "'rum' applies to memorization only" in _error(
        {"forget_sets": {"mid_rule": "rum", "by_score": {"confidence": ["mid"]}}})


def test_forget_set_larger_than_train_is_refused_before_any_job():
    msg = _error({"forget_sets": {"size": 1500}})  # digits keeps 1437 of 1797 for training
    assert "'forget_sets.size'" in msg and "1500" in msg and "1437 training samples" in msg
    msg = _error({"model": "smallcnn", "data": {"dataset": "fashion_mnist"}, "forget_sets": {"size": 60001}})
    assert "60000 training samples" in msg
    assert validate({"forget_sets": {"size": 1437}})["forget_sets"]["size"] == 1437


def test_train_size_matches_the_digits_split():
    from mudiff.config import train_size
    from mudiff.data.digits import load

    for fraction in (0.2, 0.25, 0.5):
        assert train_size({"dataset": "digits", "test_fraction": fraction}) == len(load("digits", test_fraction=fraction).y_train)


def test_train_size_subset_is_checked_at_config_time():
    from mudiff.config import dataset_dir, train_size

    fm = {"model": "smallcnn", "data": {"dataset": "fashion_mnist", "train_size": 10000}}
    cfg = validate(fm)
    assert cfg["data"]["train_size"] == 10000 and cfg["data"]["subset_seed"] == 0
    assert train_size(cfg["data"]) == 10000 and dataset_dir(cfg["data"]) == "fashion_mnist-n10000-seed0"
    assert validate({})["data"]["train_size"] is None and dataset_dir(validate({})["data"]) == "digits"
    assert train_size({"dataset": "digits", "test_fraction": 0.2, "train_size": 0.5}) == round(0.5 * 1437)
    assert train_size({"dataset": "cifar100", "train_size": 0}) == 50_000  # 0 = the whole train set
    # larger than the official train set, fewer than the classes, or not a whole count: refused, naming the key
    msg = _error({**fm, "data": {"dataset": "fashion_mnist", "train_size": 60001}})
    assert "'data.train_size'" in msg and "60001" in msg and "60000 training samples" in msg
    msg = _error({"data": {"train_size": 9}})
    assert "'data.train_size'" in msg and "10 classes" in msg
    assert "'data.train_size'" in _error({"model": "resnet18", "data": {"dataset": "cifar100", "train_size": 99}})
    assert "'data.train_size'" in _error({"data": {"train_size": 0.001}})  # 1 of 1437 digits
    assert "'data.train_size'" in _error({"data": {"train_size": 100.5}})
    assert "'data.train_size'" in _error({"data": {"train_size": -1}})
    assert "'data.subset_seed'" in _error({"data": {"subset_seed": -1}})
    # forget-set sizes are checked against the subset, not the official train set
    msg = _error({**fm, "forget_sets": {"size": 10001}})
    assert "'forget_sets.size'" in msg and "10000 training samples" in msg and "data.train_size" in msg
    assert validate({**fm, "forget_sets": {"size": 300}})["forget_sets"]["size"] == 300


def test_forget_sets_need_their_scores():
    assert "'forget_sets.risk_ranked': needs score 'privacy_risk'" in _error({"scores": {"names": ["memorization", "centroid_distance"]}})
    assert "'forget_sets.entanglement': needs score 'centroid_distance'" in _error(
        {"scores": {"names": ["memorization", "privacy_risk"]}})
    assert "'forget_sets.by_score.margin': needs score 'margin'" in _error({"forget_sets": {"by_score": {"margin": ["low"]}},
                                                                            "scores": {"names": ["memorization", "privacy_risk", "centroid_distance"]}})


def test_allowed_scores_come_from_the_registry():
    from mudiff.config import SCORES_AVAILABLE
    from mudiff.scores import REGISTRY

    assert list(SCORES_AVAILABLE) == list(REGISTRY) and validate({})["scores"]["names"] == list(REGISTRY)


def test_non_mapping_refused():
    with pytest.raises(ConfigError, match="mapping"):
        validate(["a"])


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "config").glob("*.yaml") if p.name != "schema.yaml"))
def test_shipped_configs_load(name):
    cfg = load(REPO / "config" / name)
    assert cfg["name"] == name.removesuffix(".yaml")
    assert "retrain" in cfg["unlearn"]


def test_default_yaml_is_the_defaults():
    assert load(REPO / "config" / "default.yaml") == validate({})


def test_schema_file_is_up_to_date(tmp_path):
    out = tmp_path / "schema.yaml"
    # this checkout's package, not whichever one is installed
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow")}
    subprocess.run([sys.executable, "-m", "mudiff.config", "--write-schema", str(out)], check=True, cwd=tmp_path, env=env)
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
    cfg = validate({"unlearn": {"retrain": {}, "rum": {"forget_sets": ["memorization_mix"]}}})
    assert cfg["unlearn"]["rum"]["forget_sets"] == ["memorization_mix"]
    assert "forget_sets" not in cfg["unlearn"]["retrain"]
    assert "'unlearn.rum.forget_sets'" in _error({"unlearn": {"retrain": {}, "rum": {"forget_sets": []}}})
    assert "'unlearn.retrain.forget_sets'" in _error({"unlearn": {"retrain": {"forget_sets": ["random"]}}})


def test_method_hyper_leaves_out_where_a_method_runs():
    from mudiff.config import method_hyper

    assert method_hyper({"lr": 0.1, "forget_sets": ["random"]}) == {"lr": 0.1}


def test_a_method_on_a_forget_set_the_study_does_not_build_is_refused():
    msg = _error({"unlearn": {"retrain": {}, "finetune": {"forget_sets": ["es_high", "memorization_typo"]}},
                  "forget_sets": {"entanglement": False}})
    assert "'unlearn.finetune.forget_sets'" in msg and "['es_high', 'memorization_typo']" in msg
    assert "this study builds ['random', 'memorization_low'" in msg


def test_method_variants_are_validated_against_their_base_method():
    cfg = validate({"unlearn": {"retrain": {}, "finetune": {}, "finetune@fast": {"lr": 0.1, "forget_sets": ["random"]}}})
    assert cfg["unlearn"]["finetune@fast"] == {"lr": 0.1, "epochs": 10, "batch_size": 64, "momentum": 0.9,
                                               "weight_decay": 0.0005, "forget_sets": ["random"]}
    assert "unknown key(s) ['alpha']" in _error({"unlearn": {"retrain": {}, "finetune@fast": {"alpha": 0.5}}})
    assert "'unlearn.rsu:finetune@r.order': 'sideways'" in _error({"unlearn": {"retrain": {}, "rsu:finetune@r": {"order": "sideways"}}})
    for bad in ("nomethod@x", "retrain@again", "finetune@two words", "finetune@"):
        message = _error({"unlearn": {"retrain": {}, bad: {}}})
        assert repr(bad)[1:-1] in message and "variant" in message, bad


def test_seeds_are_a_nonempty_list_of_distinct_non_negative_ints():
    assert validate({"seeds": [3, 1]})["seeds"] == [3, 1]
    assert "'seeds'" in _error({"seeds": []})
    assert "'seeds'" in _error({"seeds": [1, 1]})
    assert "'seeds'" in _error({"seeds": [-1]})
    assert "'seeds.0'" in _error({"seeds": ["a"]})
    assert "'seeds'" in _error({"seed": 0})  # the old single seed: refused, naming the list that replaced it


def test_meta_steps_inherit_the_studys_settings_unless_inner_overrides():
    # RUM's scripts run each step at the settings of that method on its own; `inner` overrides.
    raw = {"unlearn": {"retrain": {}, "finetune": {"lr": 0.1, "epochs": 7}, "salun": {"lr": 0.2},
                       "rum": {"inner": {"salun": {"epochs": 3}}},
                       "rsu:finetune": {}, "rsu:finetune@random": {"order": "random", "inner": {"lr": 0.5}},
                       "rum_f:neggrad": {}}}
    cfg = validate(raw)
    assert cfg["unlearn"]["rsu:finetune"]["inner"]["lr"] == 0.1
    assert cfg["unlearn"]["rsu:finetune"]["inner"]["epochs"] == 7
    assert cfg["unlearn"]["rsu:finetune@random"]["inner"]["lr"] == 0.5
    assert cfg["unlearn"]["rsu:finetune@random"]["inner"]["epochs"] == 7
    assert cfg["unlearn"]["rum"]["inner"]["finetune"]["lr"] == 0.1
    assert (cfg["unlearn"]["rum"]["inner"]["salun"]["lr"], cfg["unlearn"]["rum"]["inner"]["salun"]["epochs"]) == (0.2, 3)
    assert cfg["unlearn"]["rum_f:neggrad"]["inner"]["lr"] == 1e-4  # not in the study: the method's default
    assert "forget_sets" not in cfg["unlearn"]["rsu:finetune"]["inner"]
    assert validate(cfg) == cfg  # idempotent
