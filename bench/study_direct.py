"""Run a study's science stage by stage in one process, without Snakemake or MLflow.

Calls the same functions the pipeline's stages call, on whatever device exists, and prints
each stage's wall time and the headline results. Used to verify and time the GPU path on
machines that have torch but not the pipeline's tooling.

    python bench/study_direct.py --config config/fashion_mnist.yaml --source /usr/share/datasets/fashion-mnist
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from mudiff import forget_sets, methods  # noqa: E402
from mudiff.bank import train_bank  # noqa: E402
from mudiff.config import BankConfig, with_defaults  # noqa: E402
from mudiff.data import load_prepared, load_source, save_prepared  # noqa: E402
from mudiff.device import describe, pick  # noqa: E402
from mudiff.methods.base import UnlearnTask  # noqa: E402
from mudiff.models import build  # noqa: E402
from mudiff.stages import target_recipe  # noqa: E402
from mudiff.metrics.evaluation import compare, model_metrics  # noqa: E402
from mudiff.stages.scores import compute_scores  # noqa: E402
from mudiff.training import Dynamics, accuracy, embed, fit, prediction_table  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/default.yaml")
    parser.add_argument("--source", help="override data.source")
    parser.add_argument("--bank-models", type=int, help="override bank.models")
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    args = parser.parse_args()
    cfg = with_defaults(yaml.safe_load(Path(args.config).read_text()))
    if args.source:
        cfg["data"]["source"] = args.source
    if args.bank_models:
        cfg["bank"]["models"] = args.bank_models
    device = pick(cfg["device"])
    args.out.mkdir(parents=True, exist_ok=True)
    times, results = {}, {"device": describe(device), "config": args.config}

    def timed(name, fn):
        sync(device)
        t = time.perf_counter()
        value = fn()
        sync(device)
        times[name] = time.perf_counter() - t
        print(f"[{name}] {times[name]:.1f}s", flush=True)
        return value

    d = cfg["data"]
    ds = timed("prepare", lambda: load_source(d["dataset"], d["source"], d["download_dir"], test_fraction=d["test_fraction"], split_seed=d["split_seed"]))
    save_prepared(ds, args.out / "arrays.npz")
    prepared = load_prepared(args.out / "arrays.npz")
    data = prepared.to(device)
    n = len(prepared.y_train)

    recipe = target_recipe(cfg["train"])
    target = build(cfg["model"], prepared.shape, prepared.num_classes, seed=cfg["seed"])
    dyn = Dynamics(recipe.epochs, n, device)
    timed("train_target", lambda: fit(target, data, torch.arange(n, device=device), recipe, cfg["seed"], dynamics=dyn))
    results["target"] = {"train_acc": accuracy(target, data, "train"), "test_acc": accuracy(target, data, "test")}
    print(results["target"], flush=True)

    bank = timed("train_bank", lambda: train_bank(data, cfg["model"], BankConfig(**cfg["bank"]), seed=cfg["seed"]))
    images = cfg["bank"]["models"] * int(round(cfg["bank"]["fraction"] * n)) * cfg["bank"]["epochs"]
    results["bank"] = {"models": cfg["bank"]["models"], "seconds": bank.seconds, "images_per_second": images / bank.seconds,
                       "group_size": bank.group_size, "in_acc": float(bank.correct_train[bank.mask].mean()),
                       "out_acc": float(bank.correct_train[~bank.mask].mean()), "test_acc": float(bank.correct_test.mean())}
    print(results["bank"], flush=True)

    dynamics = {k: v.cpu().numpy() for k, v in dyn.values.items()}
    emb = timed("embed", lambda: embed(target, data).cpu().numpy())
    bank_arrays = {"mask": bank.mask, "correct_train": bank.correct_train}
    scores, seconds = timed("scores", lambda: compute_scores(cfg["scores"], prepared.id_train, dynamics, bank_arrays, emb, bank.seconds))
    from scipy.stats import spearmanr

    results["spearman_vs_memorization"] = {c: float(spearmanr(scores[c], scores["memorization"], nan_policy="omit").statistic) for c in cfg["scores"] if c != "memorization"}
    print(results["spearman_vs_memorization"], flush=True)

    evaluation = []
    retrained = {}
    for fs in forget_sets.names(cfg["forget_sets"]):
        ids, _ = forget_sets.build(fs, scores, **forget_sets.params_of(fs, cfg["forget_sets"]))
        forget = torch.from_numpy(prepared.positions(ids)).to(device)
        keep = torch.ones(n, dtype=torch.bool, device=device)
        keep[forget] = False
        retain = keep.nonzero().squeeze(1)
        for name in ["retrain"] + [m for m in cfg["unlearn"] if m != "retrain"]:
            method = methods.get(name)
            model = build(cfg["model"], prepared.shape, prepared.num_classes)
            model.load_state_dict(target.state_dict())
            task = UnlearnTask(data, forget, retain, cfg["model"], recipe, cfg["seed"], lambda net, epoch: None)
            model = timed(f"unlearn/{name}/{fs}", lambda: method.unlearn(model, task, method.Params(**cfg["unlearn"][name])))
            metrics = model_metrics(prediction_table(model, data, prepared.id_train, prepared.id_test), ids, 0)
            if name == "retrain":
                retrained[fs] = metrics
            evaluation.append({"method": name, "forget_set": fs, **metrics, **compare(metrics, retrained[fs]),
                               "seconds": times[f"unlearn/{name}/{fs}"], "cost_ratio": times[f"unlearn/{name}/{fs}"] / times[f"unlearn/retrain/{fs}"]})
            print(evaluation[-1], flush=True)
    results["evaluation"] = evaluation
    results["times"] = times
    (args.out / "study_direct.json").write_text(json.dumps(results, indent=2))
    print(json.dumps({k: round(v, 2) for k, v in times.items()}, indent=1))


if __name__ == "__main__":
    main()
