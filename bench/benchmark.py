"""Throughput of mudiff's fast paths against the plain PyTorch way, measured side by side in one run.

Prints a table of ratios (ours / baseline, higher is better) on whatever device exists, writes
it as JSON and logs it to MLflow (experiment `benchmark`) when MLflow is installed. Contenders
run one after another in each of 3 rounds; each ratio is the median of the rounds' ratios,
printed with the lowest and highest.

1. Bank: the digits MLP bank (K = 256 models trained at once by `mudiff.bank`, groups sized
   automatically) against the same models trained one after another, with a DataLoader (what
   published code does) and with a tight loop over data already on the device (vectorization
   alone); and the hand-written perceptron engine against the generic vmap engine. Every
   contender also scores its models on all train and test samples, as the bank must.
2. Target training: `mudiff.training.fit` (uint8 data on the device, batched normalisation,
   bf16 autocast and channels_last on GPU) against a plain fp32 eager loop fed by a
   `DataLoader`, as published unlearning code does. `smallcnn` on 28x28 and `resnet18` on
   32x32x3, on random data of the right shape (throughput does not depend on the pixels).
3. Stage wall times of a finished study, from its Snakemake `benchmark:` files (replicates pooled),
   and beside them each stage's fixed cost (a job's start until its work began) and its work and
   recording, from the `mudiff.timing` line each job writes into its log.
4. Figures to set beside a reference implementation's, measured on one H100 (`reference` in the
   JSON): a bank of 256 small CNNs on 70% of 60,000 28x28 images (474k images/s there), and
   ResNet-18 on 32x32 in fp32 eager (19.8k images/s there) against bf16 + channels_last (52.7k);
   beside the latter, what TF32 alone gives. Random data, on the device.

    python bench/benchmark.py                      # CPU or GPU, ~1.5 minutes on 2 CPU cores
    python bench/benchmark.py --study default      # also tabulate results of `snakemake --cores all`
    python bench/benchmark.py --study default --stages-only   # only that table (seconds)
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from mudiff.bank import inclusion_mask, train_bank  # noqa: E402
from mudiff.config import BankConfig  # noqa: E402
from mudiff.data import Prepared  # noqa: E402
from mudiff.data.digits import load as load_digits  # noqa: E402
from mudiff.device import describe, pick  # noqa: E402
from mudiff.models import build  # noqa: E402
from mudiff.training import Recipe, fit, per_sample  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(device: torch.device, fn) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def in_rounds(
    device: torch.device, contenders: dict[str, tuple[int, callable]], rounds: int
) -> dict[str, list[float]]:
    """Images per second of each contender (images, work), timed one after another in each round.

    This VM's speed drifts by 20% or more over a minute; ratios of neighbouring runs mostly cancel
    the drift, so callers take a ratio within each round and report the median over rounds."""
    ips: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, (images, fn) in contenders.items():
            ips[name].append(images / timed(device, fn))
    return ips


def ratio_row(what: str, ours: list[float], base: list[float]) -> dict:
    ratios = [a / b for a, b in zip(ours, base)]
    return {
        "what": what + f"; median of {len(ratios)} rounds",
        "ours_images_per_s": float(np.median(ours)),
        "baseline_images_per_s": float(np.median(base)),
        "ratio": float(np.median(ratios)),
        "ratio_low": min(ratios),
        "ratio_high": max(ratios),
        "rounds": len(ratios),
    }


def prepared_from(x: np.ndarray, y: np.ndarray, num_classes: int, scale: float) -> Prepared:
    xf = x.astype(np.float64) / scale
    ids = np.arange(len(y), dtype=np.int64)
    return Prepared(
        x_train=x,
        y_train=y,
        id_train=ids,
        x_test=x[:256],
        y_test=y[:256],
        id_test=ids[:256],
        num_classes=num_classes,
        scale=scale,
        mean=xf.mean(axis=(0, 2, 3)),
        std=xf.std(axis=(0, 2, 3)),
    )


def digits() -> Prepared:
    ds = load_digits("digits")
    return prepared_from(ds.x_train, ds.y_train, 10, 16.0)


def random_images(n: int, shape: tuple[int, int, int], seed: int = 0) -> Prepared:
    rng = np.random.default_rng(seed)
    return prepared_from(
        rng.integers(0, 256, size=(n, *shape), dtype=np.uint8),
        rng.integers(0, 10, size=n).astype(np.int64),
        10,
        255.0,
    )


# ---------------------------------------------------------------------------------------- 1. bank


def _score(model: torch.nn.Module, x_eval: torch.Tensor, y_eval: torch.Tensor) -> np.ndarray:
    """What the bank keeps of a model: phi on every train and test sample (one batch, eval mode)."""
    with torch.inference_mode():
        return per_sample(model.eval()(x_eval), y_eval)["phi"].cpu().numpy()


def bank_one_at_a_time(
    prepared: Prepared, device: torch.device, model_name: str, cfg: BankConfig, seed: int
) -> None:
    """The baseline: each subset model on its own, a plain SGD loop over its subset on the device, then scored."""
    data = prepared.to(device)
    x, y = data.normalize(data.x_train), data.y_train
    x_eval, y_eval = torch.cat([x, data.normalize(data.x_test)]), torch.cat([y, data.y_test])
    mask = inclusion_mask(cfg.models, len(y), cfg.fraction, seed)
    for k in range(cfg.models):
        model = build(model_name, prepared.shape, prepared.num_classes, seed=k).to(device)
        opt = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        subset = torch.from_numpy(np.flatnonzero(mask[k])).to(device)
        for _ in range(cfg.epochs):
            order = subset[torch.randperm(len(subset), device=device)]
            for i in range(0, len(order), cfg.batch_size):
                pos = order[i : i + cfg.batch_size]
                loss = F.cross_entropy(model(x[pos]), y[pos])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        _score(model, x_eval, y_eval)


def bank_dataloader_loop(
    prepared: Prepared, device: torch.device, model_name: str, cfg: BankConfig, seed: int
) -> None:
    """The published-code baseline: per model, a DataLoader over its subset, fp32 eager, a copy per batch."""
    from torch.utils.data import DataLoader, Subset, TensorDataset

    data = prepared.to(torch.device("cpu"))
    x = data.normalize(data.x_train)
    x_eval = torch.cat([x, data.normalize(data.x_test)]).to(device)
    y_eval = torch.cat([data.y_train, data.y_test]).to(device)
    full = TensorDataset(x, data.y_train)
    mask = inclusion_mask(cfg.models, len(prepared.y_train), cfg.fraction, seed)
    for k in range(cfg.models):
        model = build(model_name, prepared.shape, prepared.num_classes, seed=k).to(device)
        opt = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        loader = DataLoader(
            Subset(full, np.flatnonzero(mask[k]).tolist()), batch_size=cfg.batch_size, shuffle=True
        )
        for _ in range(cfg.epochs):
            for xb, yb in loader:
                loss = F.cross_entropy(model(xb.to(device)), yb.to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        _score(model, x_eval, y_eval)


def bench_bank(device: torch.device, models: int, baseline_models: int, epochs: int, rounds: int = 3) -> dict:
    """The digits MLP bank (SPEC: K = 256, p = 0.7, batch 128), ours against models trained one at a time.

    Every contender trains its models and scores them on all train and test samples (`in_rounds`)."""
    prepared = digits()
    data = prepared.to(device)
    cfg = BankConfig(models=models, epochs=epochs, batch_size=128, lr=0.1)
    base_cfg = dataclasses.replace(cfg, models=baseline_models)
    n_in = int(round(cfg.fraction * len(prepared.y_train)))
    info = {}

    def ours(fast: bool):
        info[fast] = train_bank(data, "mlp", cfg, seed=0, fast=fast)

    images = n_in * epochs
    contenders = {
        "ours": (models * images, lambda: ours(True)),
        "vmap": (models * images, lambda: ours(False)),
        "tight": (
            baseline_models * images,
            lambda: bank_one_at_a_time(prepared, device, "mlp", base_cfg, seed=0),
        ),
        "loader": (
            baseline_models * images,
            lambda: bank_dataloader_loop(prepared, device, "mlp", base_cfg, seed=0),
        ),
    }
    bank_one_at_a_time(
        prepared, device, "mlp", dataclasses.replace(cfg, models=2, epochs=1), seed=0
    )  # warm-up
    ips = in_rounds(device, contenders, rounds)
    where = f"{models} digits MLPs at once ({info[True].engine}, {info[True].group_note})"
    return {
        "bank_mlp_digits_vs_dataloader_loop": ratio_row(
            f"bank: {where} vs one after another with a DataLoader loop; {epochs} epochs, baselines on {baseline_models} models",
            ips["ours"],
            ips["loader"],
        ),
        "bank_mlp_digits_vs_tight_loop": ratio_row(
            f"bank: the same vs one after another with data on the device; {epochs} epochs, baselines on {baseline_models} models",
            ips["ours"],
            ips["tight"],
        ),
        "bank_mlp_digits_stacked_vs_vmap": ratio_row(
            f"bank: the hand-written perceptron path vs vmap over functional_call ({info[False].group_note}); {epochs} epochs",
            ips["ours"],
            ips["vmap"],
        ),
    }


# ------------------------------------------------------------------------------ 2. target training


def plain_loop(
    prepared: Prepared, device: torch.device, model_name: str, epochs: int, batch_size: int
) -> None:
    """The baseline: float tensors on the host, a DataLoader, fp32 eager, a copy to the device per batch."""
    from torch.utils.data import DataLoader, TensorDataset

    x = torch.from_numpy(prepared.x_train).float() / prepared.scale
    x = (x - torch.tensor(prepared.mean, dtype=torch.float32).view(1, -1, 1, 1)) / torch.tensor(
        prepared.std, dtype=torch.float32
    ).view(1, -1, 1, 1)
    loader = DataLoader(
        TensorDataset(x, torch.from_numpy(prepared.y_train)),
        batch_size=batch_size,
        shuffle=True,
        drop_last=False,
    )
    model = build(model_name, prepared.shape, prepared.num_classes, seed=0).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    for _ in range(epochs):
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb.to(device)), yb.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def bench_target(
    device: torch.device,
    model_name: str,
    shape: tuple[int, int, int],
    n: int,
    epochs: int,
    batch_size: int,
    rounds: int = 3,
) -> dict:
    prepared = random_images(n, shape)
    data = prepared.to(device)
    recipe = Recipe(epochs, batch_size, 0.05, schedule="cosine")
    warm = Recipe(1, batch_size, 0.05)
    # warm-up both (kernel selection, allocator) on a slice, outside the timing
    fit(
        build(model_name, shape, 10, seed=0),
        data,
        torch.arange(min(n, 2 * batch_size), device=device),
        warm,
        seed=0,
        desc="warm-up",
    )
    plain_loop(random_images(min(n, 2 * batch_size), shape), device, model_name, 1, batch_size)
    everything = torch.arange(n, device=device)
    ips = in_rounds(
        device,
        {
            "ours": (
                n * epochs,
                lambda: fit(
                    build(model_name, shape, 10, seed=0), data, everything, recipe, seed=0, desc=model_name
                ),
            ),
            "plain": (n * epochs, lambda: plain_loop(prepared, device, model_name, epochs, batch_size)),
        },
        rounds,
    )
    what = f"target training: {model_name} on {'x'.join(map(str, shape))}, {n} images x {epochs} epochs, batch {batch_size}"
    return ratio_row(what, ips["ours"], ips["plain"])


# ----------------------------------------------------------------------------------- 3. stages


TIMING_PREFIX = "mudiff.timing "  # the line `mudiff.tracking.JobRun.log_timing` writes into a job's log
TIMING_PARTS = ("startup_s", "work_s", "record_s")


def job_timing(log: Path) -> dict | None:
    """A job's own account of its time (fixed cost until its work began, work, recording), from the
    last `mudiff.timing` line of its log; None when the log or the line is missing."""
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.startswith(TIMING_PREFIX)]
    except OSError:
        return None
    return json.loads(lines[-1][len(TIMING_PREFIX) :]) if lines else None


def stage_times(study: str, root: Path = Path(".")) -> dict[str, dict]:
    """Per rule: number of jobs and summed wall seconds, from `benchmarks/<study>/**.tsv`
    (replicates pooled), and beside the wall time each job's own split of it from its log
    (`logs/<study>/<same path>.log`): `startup_s` (process start until its work began: interpreter,
    imports, MLflow set-up), `work_s`, `record_s` (logging outputs), summed over the jobs that
    wrote one (`timed` of them), and how many started in a fork-server worker (`warm`)."""
    folder = root / "benchmarks" / study
    totals: dict[str, dict] = defaultdict(
        lambda: {"jobs": 0, "seconds": 0.0, "timed": 0, "warm": 0, **dict.fromkeys(TIMING_PARTS, 0.0)}
    )
    for tsv in sorted(folder.rglob("*.tsv")):
        rel = tsv.relative_to(folder)
        parts = [p for p in rel.parts if not re.fullmatch(r"seed_\d+", p)]  # replicates pooled
        rule = parts[0].removesuffix(".tsv")
        with open(tsv) as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        row = totals[rule]
        row["jobs"] += 1
        row["seconds"] += sum(float(r["s"]) for r in rows) / max(1, len(rows))
        timing = job_timing(root / "logs" / study / rel.with_suffix(".log"))
        if timing is not None and timing.get("startup_s") is not None:
            row["timed"] += 1
            row["warm"] += timing.get("launch") == "fork server"
            for part in TIMING_PARTS:
                row[part] += float(timing[part])
    return {
        rule: {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
        for rule, row in totals.items()
    }


def stage_table(stages: dict[str, dict]) -> str:
    """The per-rule table `stage_times` returns, as printed lines: wall time and, where the jobs logged
    it, their fixed start-up cost beside their work."""
    total = sum(s["seconds"] for s in stages.values())
    startup = sum(s["startup_s"] for s in stages.values())
    lines = [
        f"per-rule wall time, summed over jobs ({total:.0f} s of job time; {startup:.1f} s of it start-up)",
        f"  {'rule':<16} {'jobs':>5} {'wall s':>9} {'per job':>8} {'startup s':>10} {'work s':>8} "
        f"{'record s':>9}  warm",
    ]
    for rule, s in sorted(stages.items(), key=lambda kv: -kv[1]["seconds"]):
        timed = s["timed"] > 0
        split = "".join(
            f" {s[p]:>{w}.1f}" if timed else f" {'-':>{w}}" for p, w in zip(TIMING_PARTS, (10, 8, 9))
        )
        lines.append(
            f"  {rule:<16} {s['jobs']:>5} {s['seconds']:>9.1f} {s['seconds'] / s['jobs']:>8.2f}{split}"
            f"  {s['warm']}/{s['jobs']}"
        )
    return "\n".join(lines)


# --------------------------------------------------------- 4. figures to set beside the reference ones


def bench_bank_cnn(
    device: torch.device, n: int, models: int, baseline_models: int, epochs: int, rounds: int = 1
) -> dict:
    """The reference bank's shape: K small CNNs (`smallcnn`), each on 70% of n 28x28 images, batch 128,
    trained and scored by `mudiff.bank`, against the same models one after another with the data on
    the device. Its images/s (K x 0.7n x epochs / seconds) is the figure to set beside the reference
    implementation's 474k images/s for 256 models on Fashion-MNIST (one H100)."""
    prepared = random_images(n, (1, 28, 28))
    data = prepared.to(device)
    cfg = BankConfig(models=models, fraction=0.7, epochs=epochs, batch_size=128, lr=0.05)
    base_cfg = dataclasses.replace(cfg, models=baseline_models)
    images = int(round(cfg.fraction * n)) * epochs
    info = {}

    def ours():
        info["bank"] = train_bank(data, "smallcnn", cfg, seed=0)

    train_bank(data, "smallcnn", dataclasses.replace(cfg, models=min(models, 2), epochs=1), seed=0)  # warm-up
    bank_one_at_a_time(prepared, device, "smallcnn", dataclasses.replace(cfg, models=1, epochs=1), seed=0)
    ips = in_rounds(
        device,
        {
            "ours": (models * images, ours),
            "tight": (
                baseline_models * images,
                lambda: bank_one_at_a_time(prepared, device, "smallcnn", base_cfg, seed=0),
            ),
        },
        rounds,
    )
    return ratio_row(
        f"bank: {models} small CNNs on 70% of {n} 28x28 images at once ({info['bank'].engine}, "
        f"{info['bank'].group_note}), {epochs} epoch(s), batch 128, vs one after another with data on "
        f"the device ({baseline_models} models)",
        ips["ours"],
        ips["tight"],
    )


def bench_precision(device: torch.device, n: int, batch_size: int, rounds: int = 3) -> dict[str, dict]:
    """ResNet-18 on 32x32x3 with the data on the device, one plain SGD loop run three ways: fp32 with
    TF32 off, fp32 with TF32 on (a job's CUDA settings, `mudiff.device.cuda_settings`), and bf16
    autocast with channels_last (what `fit` runs on a GPU). The reference implementation measured
    19.8k images/s fp32 eager and 52.7k in bf16 + channels_last (one H100). On a CPU the TF32 flags
    change nothing and bf16 is slow: the rows only show that the code runs."""
    data = random_images(n, (3, 32, 32)).to(device)
    x, y = data.normalize(data.x_train).contiguous(), data.y_train
    x_cl = x.contiguous(memory_format=torch.channels_last)
    ways = {"fp32": (False, False), "tf32": (True, False), "bf16_cl": (False, True)}
    nets = {}
    for way, (_, bf16) in ways.items():
        net = build("resnet18", (3, 32, 32), 10, seed=0).to(device)
        nets[way] = net.to(memory_format=torch.channels_last) if bf16 else net
    opts = {
        way: torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        for way, net in nets.items()
    }

    def epoch(way: str, count: int) -> None:
        tf32, bf16 = ways[way]
        flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
        try:
            net, opt, xs = nets[way].train(), opts[way], x_cl if bf16 else x
            for i in range(0, count, batch_size):
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    loss = F.cross_entropy(net(xs[i : i + batch_size]), y[i : i + batch_size])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags

    for way in ways:  # warm-up, a batch each: kernel selection (cudnn.benchmark), allocator
        epoch(way, batch_size)
    ips = in_rounds(device, {way: (n, lambda way=way: epoch(way, n)) for way in ways}, rounds)
    what = f"ResNet-18 on 32x32x3, {n} images on the device, batch {batch_size}, a plain SGD loop"
    return {
        "resnet18_32_bf16_cl_vs_fp32": ratio_row(
            f"{what}: bf16 autocast + channels_last vs fp32 (TF32 off)", ips["bf16_cl"], ips["fp32"]
        ),
        "resnet18_32_tf32_vs_fp32": ratio_row(
            f"{what}: fp32 with TF32 vs TF32 off", ips["tf32"], ips["fp32"]
        ),
    }


def bench_reference(device: torch.device, quick: bool) -> dict[str, dict]:
    """Section 4's rows, sized for the device (one round on a GPU for the bank: it takes the longest)."""
    gpu = device.type == "cuda"
    if gpu:
        bank = dict(n=60_000, models=256, baseline_models=4, epochs=1, rounds=1)
        precision = dict(n=50_000 // (4 if quick else 1), batch_size=128, rounds=1 if quick else 3)
    else:
        bank = dict(
            n=256 if quick else 1024, models=4 if quick else 8, baseline_models=1 if quick else 2, epochs=1
        )
        precision = dict(n=16 if quick else 64, batch_size=8 if quick else 32, rounds=1)
    if gpu and quick:
        bank.update(models=64)
    return {
        "bank_smallcnn_28_vs_tight_loop": bench_bank_cnn(device, **bank),
        **bench_precision(device, **precision),
    }


def log_to_mlflow(result: dict, path: Path) -> str | None:
    try:
        from mudiff.tracking import _client, init_store
    except ImportError:
        return None
    try:
        client = _client()
        run = client.create_run(
            init_store("benchmark"),
            run_name=f"benchmark[{result['device']}]",
            tags={"mudiff.rule": "benchmark", "mudiff.device": result["device"]},
        )
    except Exception as err:  # no MLflow installed, or no store reachable: the JSON is the record
        print(f"MLflow: not logged ({type(err).__name__}: {err})")
        return None
    from mudiff.tracking import JobRun

    jr = JobRun(client, run.info.run_id)
    rows = {**result["ratios"], **result.get("reference", {})}
    jr.log_metrics({f"{k}.ratio": r["ratio"] for k, r in rows.items()})
    jr.log_metrics({f"{k}.ours_images_per_s": r["ours_images_per_s"] for k, r in rows.items()})
    jr.log_artifact(path)
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--study", action="append", default=[], help="tabulate benchmarks/<study>/ (repeatable)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench_out/benchmark.json"))
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument(
        "--stages-only", action="store_true", help="only tabulate the --study folders (no throughput runs)"
    )
    args = parser.parse_args(argv)
    device = torch.device("cpu") if args.stages_only else pick(args.device)  # tables only: claim no GPU
    if device.type == "cpu":
        torch.set_num_threads(max(1, torch.get_num_threads()))
    gpu = device.type == "cuda"
    q = 4 if args.quick else 1
    rounds = 1 if args.quick else 3
    ratios = (
        {}
        if args.stages_only
        else {
            **bench_bank(
                device, models=256 // q, baseline_models=32 // q, epochs=max(1, 10 // q), rounds=rounds
            ),
            "target_smallcnn_28": bench_target(
                device,
                "smallcnn",
                (1, 28, 28),
                n=(60_000 if gpu else 4096) // q,
                epochs=2 if gpu else 1,
                batch_size=128,
                rounds=rounds,
            ),
            "target_resnet18_32": bench_target(
                device,
                "resnet18",
                (3, 32, 32),
                n=(50_000 if gpu else 256) // q,
                epochs=2 if gpu else 1,
                batch_size=128 if gpu else 64,
                rounds=rounds,
            ),
        }
    )
    reference = {} if args.stages_only else bench_reference(device, args.quick)
    result = {
        "device": describe(device),
        "torch": torch.__version__,
        "ratios": ratios,
        "reference": reference,
        "stages": {s: stage_times(s) for s in args.study},
    }
    print(f"\ndevice: {result['device']}, torch {torch.__version__}\n")
    print(f"{'benchmark':<36} {'ours img/s':>12} {'baseline img/s':>15} {'ratio':>7}  what")
    for key, r in {**ratios, **reference}.items():
        print(
            f"{key:<36} {r['ours_images_per_s']:>12.0f} {r['baseline_images_per_s']:>15.0f} {r['ratio']:>6.2f}x "
            f"({r['ratio_low']:.2f}-{r['ratio_high']:.2f})  {r['what']}"
        )
    for study, stages in result["stages"].items():
        if not stages:
            print(f"\nstudy {study}: no benchmarks/{study}/ (run `snakemake --cores all` first)")
            continue
        print(f"\nstudy {study}: " + stage_table(stages))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    run_id = log_to_mlflow(result, args.out)
    print(f"\nwrote {args.out}" + (f"; MLflow run {run_id} in experiment 'benchmark'" if run_id else ""))


if __name__ == "__main__":
    main()
