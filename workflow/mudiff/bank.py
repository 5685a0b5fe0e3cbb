"""The model bank: K models, each trained from scratch on a random share p of the train set.

Models are trained many at a time: their parameters are stacked and one `torch.func.vmap`
over `functional_call` runs a step of every model in the group, each on its own mini-batch
of its own subset. Summing the models' mean losses gives each model exactly its own
gradient, and SGD (momentum, weight decay) is element-wise, so the stacked run is the same
arithmetic as K separate runs. Models with BatchNorm cannot be vmapped with running
statistics; they are trained one after another (slow, but the same estimator).

The bank stores the K x N inclusion mask and, for every model and every train and test
sample, phi = log p_y - log(1 - p_y) and correctness (SPEC, model bank).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state
from tqdm.auto import tqdm

from mudiff.config import BankConfig
from mudiff.data import DeviceData
from mudiff.device import autocast
from mudiff.models import build, has_batchnorm
from mudiff.training import Recipe, fit, lr_lambda, per_sample, predict


@dataclass
class BankResult:
    mask: np.ndarray  # (K, N) bool: model k trained on train position i
    phi_train: np.ndarray  # (K, N) float32
    correct_train: np.ndarray  # (K, N) bool
    phi_test: np.ndarray  # (K, M) float32
    correct_test: np.ndarray  # (K, M) bool
    seconds: float
    group_size: int
    vectorized: bool


def inclusion_mask(models: int, n: int, fraction: float, seed: int) -> np.ndarray:
    """Each row holds exactly round(fraction * n) randomly chosen training positions."""
    rng = np.random.default_rng(seed)
    size = int(round(fraction * n))
    order = np.argsort(rng.random((models, n)), axis=1)[:, :size]
    mask = np.zeros((models, n), dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def order_generator(seed: int, model: int) -> torch.Generator:
    """The generator of bank model `model`'s batch order (its own, whatever group it trains in)."""
    return torch.Generator().manual_seed(seed * 7919 + model)


def _recipe(cfg: BankConfig) -> Recipe:
    return Recipe(cfg.epochs, cfg.batch_size, cfg.lr, cfg.momentum, cfg.weight_decay, "cosine", augment=False)


def _train_group(model_name: str, data: DeviceData, mask: np.ndarray, first: int, cfg: BankConfig, seed: int, bar) -> tuple:
    """Train the models `first .. first + len(mask)` at once; return their phi and correctness."""
    device = data.device
    g = len(mask)
    models = [build(model_name, data.shape, data.num_classes, seed=seed * 100_003 + first + k) for k in range(g)]
    params, buffers = stack_module_state(models)
    params = {k: v.detach().to(device).requires_grad_() for k, v in params.items()}
    buffers = {k: v.to(device) for k, v in buffers.items()}
    base = copy.deepcopy(models[0]).to("meta")
    del models

    def one(p, b, x):
        return functional_call(base, (p, b), (x,))

    many = torch.vmap(one, in_dims=(0, 0, 0))
    subsets = torch.from_numpy(np.stack([np.flatnonzero(row) for row in mask])).to(device)  # (g, n_in)
    n_in = subsets.shape[1]
    recipe = _recipe(cfg)
    steps = math.ceil(n_in / cfg.batch_size)
    opt = torch.optim.SGD(params.values(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(recipe, cfg.epochs * steps))
    # One generator per model: a model's batch order does not depend on which group it is in.
    gens = [order_generator(seed, first + k) for k in range(g)]
    for _ in range(cfg.epochs):
        keys = torch.stack([torch.rand(n_in, generator=gen) for gen in gens])
        order = subsets.gather(1, torch.argsort(keys, dim=1).to(device))
        for i in range(0, n_in, cfg.batch_size):
            pos = order[:, i : i + cfg.batch_size]
            x, y = data.normalize(data.x_train[pos]), data.y_train[pos]
            with autocast(device):
                logits = many(params, buffers, x)
            losses = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="none")
            loss = losses.view(g, -1).mean(1).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        bar.update(g)

    shared = torch.vmap(one, in_dims=(0, 0, None))
    outputs = []
    with torch.inference_mode():
        for split in ("train", "test"):
            x_all, y_all = data.split(split)
            phi, correct = [], []
            for i in range(0, len(x_all), 2048):
                x, y = data.normalize(x_all[i : i + 2048]), y_all[i : i + 2048]
                with autocast(device):
                    logits = shared(params, buffers, x).float()  # (g, b, C)
                stats = per_sample(logits.flatten(0, 1), y.repeat(g))
                phi.append(stats["phi"].view(g, -1))
                correct.append(stats["correct"].view(g, -1))
            outputs += [torch.cat(phi, 1).cpu().numpy(), torch.cat(correct, 1).cpu().numpy()]
    return tuple(outputs)


def _train_one_by_one(model_name: str, data: DeviceData, mask: np.ndarray, cfg: BankConfig, seed: int, bar) -> tuple:
    outs: list[list[np.ndarray]] = [[], [], [], []]
    for k, row in enumerate(mask):
        model = build(model_name, data.shape, data.num_classes, seed=seed * 100_003 + k)
        positions = torch.from_numpy(np.flatnonzero(row)).to(data.device)
        fit(model, data, positions, _recipe(cfg), seed=seed * 7919 + k, desc=f"bank model {k}")
        for j, split in enumerate(("train", "test")):
            stats = per_sample(predict(model, data, split), data.split(split)[1])
            outs[2 * j].append(stats["phi"].cpu().numpy())
            outs[2 * j + 1].append(stats["correct"].cpu().numpy())
        bar.update(cfg.epochs)
    return tuple(np.stack(o) for o in outs)


def train_bank(data: DeviceData, model_name: str, cfg: BankConfig, seed: int) -> BankResult:
    """Train the bank and score every model on every train and test sample."""
    start = time.perf_counter()
    n = len(data.y_train)
    mask = inclusion_mask(cfg.models, n, cfg.fraction, seed)
    vectorized = not has_batchnorm(build(model_name, data.shape, data.num_classes))
    bar = tqdm(total=cfg.models * cfg.epochs, desc="bank", unit="model-epoch", mininterval=2)
    if not vectorized:
        parts, group = [_train_one_by_one(model_name, data, mask, cfg, seed, bar)], 1
    else:
        group = cfg.group_size or cfg.models
        parts, first = [], 0
        while first < cfg.models:
            try:
                parts.append(_train_group(model_name, data, mask[first : first + group], first, cfg, seed, bar))
                first += group
            except torch.OutOfMemoryError:
                if group == 1:
                    raise
                group = max(1, group // 2)  # fill the device: halve until a group fits
                torch.cuda.empty_cache()
    bar.close()
    phi_train, correct_train, phi_test, correct_test = (np.concatenate([p[i] for p in parts]) for i in range(4))
    return BankResult(
        mask=mask,
        phi_train=phi_train.astype(np.float32), correct_train=correct_train.astype(bool),
        phi_test=phi_test.astype(np.float32), correct_test=correct_test.astype(bool),
        seconds=time.perf_counter() - start, group_size=group, vectorized=vectorized,
    )
