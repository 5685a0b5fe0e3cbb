"""The model bank: K models, each trained from scratch on a random share p of the train set.

Models are trained many at a time by an engine of `mudiff.bank.engines`: their parameters are
stacked, and one step updates every model of the group, each on its own mini-batch of its own
subset. Plain perceptrons take the hand-written batched-matmul path (`StackedMLP`); every other
model, BatchNorm included, a `torch.func.vmap` over `functional_call` (`VmapEngine`: each model's
BatchNorm buffers stacked and batched with its parameters, running statistics updated per model
in train mode and used in eval mode when the bank scores). Summing the models' mean losses gives
each model exactly its own gradient, and SGD (momentum, weight decay) is element-wise, so the
stacked run is the same arithmetic as K separate runs.

The bank stores the K x N inclusion mask and, for every model and every train and test
sample, phi = log p_y - log(1 - p_y) and correctness (SPEC, model bank).

A bank can be trained in shards (`BankConfig.shards`): `train_bank(..., models=range)` trains a
contiguous range of the K models, each with the seeds, subset (its row of the whole K x N mask) and
batch order it has in the whole bank; a model's arithmetic does not depend on the other models of its
group (on the CPU, a model alone in its group trains on one thread for that: `_alone_on_one_thread`),
so the shards' rows, stacked, are the bank of one job, bit for bit (the `merge_bank` stage joins them).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mudiff.bank.engines import ENGINES, choose_engine
from mudiff.data import DeviceData
from mudiff.io import array_digest
from mudiff.models import build
from mudiff.sections import BankConfig
from mudiff.training import SGD, Recipe, lr_lambda, per_sample


@dataclass
class BankResult:
    """The bank's models `first .. first + len(mask)` (all K of them unless trained as a shard)."""

    mask: np.ndarray  # (K, N) bool: model k trained on train position i
    phi_train: np.ndarray  # (K, N) float32
    correct_train: np.ndarray  # (K, N) bool
    phi_test: np.ndarray  # (K, M) float32
    correct_test: np.ndarray  # (K, M) bool
    seconds: float
    group_size: int
    engine: str  # stacked_mlp | vmap
    group_note: str  # how the group size was chosen
    first: int = 0  # the bank's index of the first model (row 0)
    mask_digest: str = ""  # mudiff.io.array_digest of the whole bank's K x N mask, which every shard shares

    @property
    def vectorized(self) -> bool:
        """Always true (every model trains in a stacked group); kept for the bank summary's readers."""
        return True


def inclusion_mask(models: int, n: int, fraction: float, seed: int) -> np.ndarray:
    """Each row holds exactly round(fraction * n) randomly chosen training positions."""
    rng = np.random.default_rng(seed)
    size = int(round(fraction * n))
    order = np.argsort(rng.random((models, n)), axis=1)[:, :size]
    mask = np.zeros((models, n), dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def init_seed(seed: int, model: int) -> int:
    """The seed of bank model `model`'s initialisation."""
    return seed * 100_003 + model


def order_seed(seed: int, model: int) -> int:
    """The seed of bank model `model`'s batch order (its own, whatever group it trains in, or alone)."""
    return seed * 7919 + model


def order_generator(seed: int, model: int) -> torch.Generator:
    """The generator of bank model `model`'s batch order."""
    return torch.Generator().manual_seed(order_seed(seed, model))


def per_model_bytes(model: torch.nn.Module, example: torch.Tensor, batch_size: int, act_bytes: int) -> int:
    """Memory one model of a group holds in a training step: fp32 parameters, gradients and momentum,
    and the batch's activations (every leaf module's output, `act_bytes` each) kept for the
    backward, with their gradients, and the fp32 input batch. `example` is one normalised sample,
    batch dimension first. The sample runs in eval mode (BatchNorm cannot take a batch of one in train
    mode; the outputs' sizes are the same), and `model` is left in its mode."""
    outputs = []
    hooks = [
        m.register_forward_hook(
            lambda _m, _i, out: outputs.append(out.numel() if torch.is_tensor(out) else 0)
        )
        for m in model.modules()
        if not list(m.children())
    ]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(example[:1].cpu())
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    params = sum(p.numel() for p in model.parameters())
    return 3 * 4 * params + batch_size * (2 * act_bytes * sum(outputs) + 4 * example[:1].numel())


def last_level_cache_bytes(default: int = 32 * 2**20) -> int:
    """The largest CPU cache (Linux sysfs), or `default` where it cannot be read."""
    sizes = []
    for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = f.read_text().strip().upper()
        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        try:
            sizes.append(int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text))
        except ValueError:
            continue
    return max(sizes, default=default)


def auto_group_size(models: int, per_model: int, device: torch.device) -> tuple[int, str]:
    """How many models to train at once, and why.

    GPU: as many as fit in 70% of the free memory (`torch.cuda.mem_get_info`); a group that still
    runs out of memory is halved. CPU: as many as keep a step's working set within half the
    last-level cache. On two cores (32 MiB cache) the digits perceptron bank ran fastest in groups
    of 8 to 16, about 10% slower in groups of 34 and about 40% slower in one group of 256.
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget, where = int(0.7 * free), f"70% of {free / 2**30:.1f} GiB free GPU memory"
    else:
        cache = last_level_cache_bytes()
        budget, where = cache // 2, f"half the {cache / 2**20:.0f} MiB last-level CPU cache"
    group = max(1, min(models, budget // max(per_model, 1)))
    return group, f"auto: {group} models of ~{per_model / 2**20:.2f} MiB each fit {where}"


def _recipe(cfg: BankConfig) -> Recipe:
    return Recipe.of(cfg, cfg.epochs, "cosine")


def _fit_group(
    model_name: str,
    data: DeviceData,
    x_train: torch.Tensor,
    mask: np.ndarray,
    first: int,
    cfg: BankConfig,
    seed: int,
    bar,
    engine: str,
):
    """Train the models `first .. first + len(mask)` at once on the normalised `x_train`; return the
    engine that holds them. `bar` (or None) advances by the group's size every epoch."""
    device = data.device
    g = len(mask)
    models = [
        build(model_name, data.shape, data.num_classes, seed=init_seed(seed, first + k)) for k in range(g)
    ]
    engine = ENGINES[engine](models, device)
    del models
    subsets = torch.from_numpy(np.stack([np.flatnonzero(row) for row in mask])).to(device)  # (g, n_in)
    n_in = subsets.shape[1]
    steps = math.ceil(n_in / cfg.batch_size)
    lr_at = lr_lambda(_recipe(cfg), cfg.epochs * steps)
    opt = SGD(engine.params, cfg.momentum, cfg.weight_decay)
    # One generator per model: a model's batch order does not depend on which group it is in.
    gens = [order_generator(seed, first + k) for k in range(g)]
    step = 0
    for _ in range(cfg.epochs):
        order = subsets.gather(
            1, torch.stack([torch.randperm(n_in, generator=gen) for gen in gens]).to(device)
        )
        for i in range(0, n_in, cfg.batch_size):
            pos = order[:, i : i + cfg.batch_size]
            opt.step(cfg.lr * lr_at(step), engine.gradients(x_train[pos], data.y_train[pos]))
            step += 1
        if bar is not None:
            bar.update(g)
    return engine


def _score_group(engine, data: DeviceData, x_train: torch.Tensor, g: int, batch_size: int) -> tuple:
    """phi and correctness of the engine's `g` models (eval mode) on every train and test sample:
    (phi_train, correct_train, phi_test, correct_test), each (g, n)."""
    # Scoring holds about two layers' outputs at a time, for `chunk` samples of every model: no more
    # than training's saved activations and their gradients, so a group that trains also scores.
    chunk = 2 * batch_size
    outputs = []
    for x_all, y_all in ((x_train, data.y_train), (data.normalize(data.x_test), data.y_test)):
        phi, correct = [], []
        for i in range(0, len(x_all), chunk):
            y = y_all[i : i + chunk]
            stats = per_sample(engine.logits(x_all[i : i + chunk]).flatten(0, 1), y.repeat(g))
            phi.append(stats["phi"].view(g, -1))
            correct.append(stats["correct"].view(g, -1))
        outputs += [torch.cat(phi, 1).cpu().numpy(), torch.cat(correct, 1).cpu().numpy()]
    return tuple(outputs)


@contextlib.contextmanager
def _alone_on_one_thread(g: int, device: torch.device):
    """A model alone in its group, on the CPU, trains and scores on one thread. torch computes a batch
    of one matrix product as one multi-threaded product, which rounds otherwise than its batched kernel
    rounds each product of a group: measured on the digits perceptron, the head's weight gradient of a
    lone model differed at 2 and 8 threads, while groups of 2 to 17 gave every model the same bits at
    1, 2, 4 and 8 threads. On one thread the lone model gets those bits too, so that a model's numbers
    do not depend on its group (the last, shorter group of a bank; a shard's groups, `models=`)."""
    threads = torch.get_num_threads()
    if g > 1 or device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _train_group(
    model_name: str,
    data: DeviceData,
    x_train: torch.Tensor,
    mask: np.ndarray,
    first: int,
    cfg: BankConfig,
    seed: int,
    bar,
    engine: str,
) -> tuple:
    """Train the models `first .. first + len(mask)` at once on the normalised `x_train`; return their
    phi and correctness."""
    with _alone_on_one_thread(len(mask), data.device):
        fitted = _fit_group(model_name, data, x_train, mask, first, cfg, seed, bar, engine)
        return _score_group(fitted, data, x_train, len(mask), cfg.batch_size)


def train_bank(
    data: DeviceData,
    model_name: str,
    cfg: BankConfig,
    seed: int,
    fast: bool = True,
    models: range | None = None,
) -> BankResult:
    """Train the bank and score every model on every train and test sample.

    `models` (default: all K): train only these of the bank's models (a shard, `cfg.shard_models`),
    each as in the whole bank (its row of the K x N mask, `init_seed` and `order_generator`), in groups
    sized for them; the result holds their rows. `fast=False` trains perceptrons through the generic
    vmap engine too (tests, benchmark)."""
    start = time.perf_counter()
    n = len(data.y_train)
    models = range(cfg.models) if models is None else models
    if models.step != 1 or not 0 <= models.start < models.stop <= cfg.models:
        raise ValueError(f"bank models {models}: not a non-empty contiguous range of 0..{cfg.models - 1}")
    whole = inclusion_mask(cfg.models, n, cfg.fraction, seed)
    mask, count = whole[models.start : models.stop], len(models)
    probe = build(model_name, data.shape, data.num_classes)
    bar = tqdm(total=count * cfg.epochs, desc="bank", unit="model-epoch", mininterval=2)
    x_train = data.normalize(data.x_train)  # once, before sizing groups: the bank does not augment
    example = x_train[:1]
    engine = choose_engine(probe, example, fast)
    if cfg.group_size:
        group, note = min(cfg.group_size, count), f"config: group_size {cfg.group_size}"
    else:  # sized for this call's models: each shard sizes its own groups, on its own device
        act_bytes = 2 if data.device.type == "cuda" and engine == "vmap" else 4  # bf16 autocast on GPU
        group, note = auto_group_size(
            count, per_model_bytes(probe, example, cfg.batch_size, act_bytes), data.device
        )
    parts, first = [], models.start
    while first < models.stop:
        done, out_of_memory = bar.n, False
        try:
            rows = mask[first - models.start : min(first + group, models.stop) - models.start]
            parts.append(_train_group(model_name, data, x_train, rows, first, cfg, seed, bar, engine))
            first += group
        except torch.OutOfMemoryError:
            if group == 1:
                raise
            out_of_memory = True
        if out_of_memory:  # outside `except`, so that the failed group's tensors are freed
            group = max(1, group // 2)  # still too big: halve until a group fits
            note += f"; out of memory, halved to {group}"
            bar.n = done  # its epochs are trained again
            bar.refresh()
            if data.device.type == "cuda":
                torch.cuda.empty_cache()
    bar.close()
    phi_train, correct_train, phi_test, correct_test = (
        np.concatenate([p[i] for p in parts]) for i in range(4)
    )
    return BankResult(
        mask=mask,
        phi_train=phi_train.astype(np.float32),
        correct_train=correct_train.astype(bool),
        phi_test=phi_test.astype(np.float32),
        correct_test=correct_test.astype(bool),
        seconds=time.perf_counter() - start,
        group_size=group,
        engine=engine,
        group_note=note,
        first=models.start,
        mask_digest=array_digest(whole),
    )
