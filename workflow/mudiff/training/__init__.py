"""Training and prediction primitives shared by the target, retrain and every unlearning method.

Data stays on the device as uint8; a batch is gathered by position, augmented as a tensor and
normalised there. The per-sample training dynamics (SPEC: p_y, max_k p_k, negative entropy,
correctness, loss at every epoch) are read off the training forward pass, at no extra cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from mudiff.data import DeviceData
from mudiff.device import autocast, memory_format
from mudiff.options import SGD as SGDOptions


@dataclass
class Recipe:
    """What one SGD run needs."""

    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "constant"  # constant | cosine | onecycle
    augment: bool = False

    @classmethod
    def of(cls, sgd: SGDOptions, epochs: int, schedule: str = "constant", augment: bool = False) -> Recipe:
        """The recipe of a typed config section's SGD hyperparameters (`mudiff.options.SGD`) and its length."""
        return cls(epochs=epochs, schedule=schedule, augment=augment, **sgd.sgd())


class SGD:
    """torch.optim.SGD's update (momentum, weight decay; no dampening, no Nesterov) as foreach ops,
    over any list of tensors, with the learning rate given per step:
    g += wd * p; b = m * b + g (the first b is a copy of g); p -= lr * b.

    Ours because a process's first `torch.optim` optimizer imports `torch._dynamo`: ~2 s of the
    ~7 s an unlearning job takes on 2 CPU cores, paid again by every job. Like torch, a parameter
    without a gradient at a step is left alone, momentum included.
    """

    def __init__(self, params, momentum: float, weight_decay: float):
        self.params = list(params)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lr: float, grads: list[torch.Tensor | None] | None = None) -> None:
        """One update; `grads` defaults to the parameters' `.grad`."""
        grads = [p.grad for p in self.params] if grads is None else list(grads)
        live = [i for i, g in enumerate(grads) if g is not None]
        params, grads = [self.params[i] for i in live], [grads[i] for i in live]
        if not params:
            return
        if self.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
        if self.momentum:
            if all(self.buffers[i] is not None for i in live):
                bufs = [self.buffers[i] for i in live]
                torch._foreach_mul_(bufs, self.momentum)
                torch._foreach_add_(bufs, grads)
            else:
                bufs = []
                for i, g in zip(live, grads):
                    if self.buffers[i] is None:
                        self.buffers[i] = g.clone()
                    else:
                        self.buffers[i].mul_(self.momentum).add_(g)
                    bufs.append(self.buffers[i])
            grads = bufs
        torch._foreach_add_(params, grads, alpha=-lr)


def sgd(params, recipe: Recipe) -> SGD:
    return SGD(params, momentum=recipe.momentum, weight_decay=recipe.weight_decay)


def lr_lambda(recipe: Recipe, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the peak learning rate at a step."""
    total = max(total_steps, 1)
    if recipe.schedule == "cosine":
        return lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    if recipe.schedule == "onecycle":
        warm = max(1, int(0.25 * total))
        return lambda s: s / warm if s < warm else max(0.0, (total - s) / (total - warm))
    return lambda s: 1.0


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop (reflect-padded by `pad`) and horizontal flip of a uint8 batch, as tensor ops."""
    b, c, h, w = x.shape
    dev = x.device
    padded = F.pad(x.float(), (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(dev)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(dev)
    flip = (torch.rand(b, generator=generator) < 0.5).to(dev)
    cols = dx[:, None] + torch.arange(w, device=dev)[None]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    rows = dy[:, None] + torch.arange(h, device=dev)[None]
    out = padded[
        torch.arange(b, device=dev)[:, None, None, None],
        torch.arange(c, device=dev)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    return out.to(torch.uint8)


def per_sample(logits: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """SPEC's per-sample quantities from logits: p_y, max_p, neg_entropy, correct, loss and phi.

    phi = log p_y - log(1 - p_y) equals z_y - logsumexp_{k != y} z_k, computed in that stable form.
    """
    logits = logits.float()
    logp = logits.log_softmax(1)
    logp_y = logp.gather(1, y[:, None]).squeeze(1)
    p = logp.exp()
    others = logits.scatter(1, y[:, None], float("-inf"))
    return {
        "p_y": logp_y.exp(),
        "max_p": p.max(1).values,
        "neg_entropy": (p * logp).nan_to_num().sum(1),
        "correct": logits.argmax(1) == y,
        "loss": -logp_y,
        "phi": logits.gather(1, y[:, None]).squeeze(1) - others.logsumexp(1),
    }


@torch.inference_mode()
def predict(model: nn.Module, data: DeviceData, split: str, positions: torch.Tensor | None = None, batch_size: int = 4096) -> torch.Tensor:
    """Logits (float32, on the device) of `split` ('train'/'test') samples, in eval mode."""
    x_all, _ = data.split(split)
    if positions is None:
        positions = torch.arange(len(x_all), device=data.device)
    was_training = model.training
    model.eval()
    out = []
    fmt = memory_format(data.device)
    for i in range(0, len(positions), batch_size):
        x = data.normalize(x_all[positions[i : i + batch_size]]).contiguous(memory_format=fmt)
        with autocast(data.device):
            out.append(model(x).float())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, data.num_classes, device=data.device)


def prediction_table(model: nn.Module, data: DeviceData, id_train: np.ndarray, id_test: np.ndarray):
    """One row per (split, sample id): label, p_y, phi and correctness of `model` (eval mode).

    What evaluation and per-sample analyses read of a model, so that they need neither it nor torch.
    """
    import pandas as pd

    frames = []
    for split, ids in (("train", id_train), ("test", id_test)):
        _, y = data.split(split)
        stats = per_sample(predict(model, data, split), y)
        frames.append(pd.DataFrame({
            "split": split, "id": np.asarray(ids), "label": y.cpu().numpy(),
            "p_y": stats["p_y"].cpu().numpy(), "phi": stats["phi"].cpu().numpy(), "correct": stats["correct"].cpu().numpy(),
        }))
    return pd.concat(frames, ignore_index=True)


@torch.inference_mode()
def embed(model: nn.Module, data: DeviceData, split: str = "train", batch_size: int = 4096) -> torch.Tensor:
    """Penultimate embeddings (eval mode, no augmentation) of every sample of a split."""
    x_all, _ = data.split(split)
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(x_all), batch_size):
        with autocast(data.device):
            out.append(model.features(data.normalize(x_all[i : i + batch_size])).float())
    model.train(was_training)
    return torch.cat(out)


def accuracy(model: nn.Module, data: DeviceData, split: str, positions: torch.Tensor | None = None) -> float:
    """Accuracy in percent (SPEC: FA, RA, TA are percentages)."""
    _, y_all = data.split(split)
    y = y_all if positions is None else y_all[positions]
    if len(y) == 0:
        return float("nan")
    return 100.0 * (predict(model, data, split, positions).argmax(1) == y).float().mean().item()


class Sampler:
    """Endless shuffled mini-batches (normalised, on the device) from fixed training positions."""

    def __init__(self, data: DeviceData, positions: torch.Tensor, batch_size: int, seed: int):
        self.data, self.positions, self.batch_size = data, positions, batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.order, self.cursor = positions[:0], 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cursor >= len(self.order):
            perm = torch.randperm(len(self.positions), generator=self.gen).to(self.positions.device)
            self.order, self.cursor = self.positions[perm], 0
        pos = self.order[self.cursor : self.cursor + self.batch_size]
        self.cursor += self.batch_size
        x, y = self.data.train_batch(pos)
        return x.contiguous(memory_format=memory_format(self.data.device)), y


class Dynamics:
    """Per-epoch, per-sample records of the training forward pass (rows: epochs, columns: positions)."""

    FIELDS = ("p_y", "max_p", "neg_entropy", "correct", "loss")

    def __init__(self, epochs: int, n: int, device: torch.device):
        self.values = {f: torch.full((epochs, n), float("nan"), device=device) for f in self.FIELDS}

    def record(self, epoch: int, positions: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        stats = per_sample(logits.detach(), y)
        for f in self.FIELDS:
            self.values[f][epoch, positions] = stats[f].float()

    def numpy(self) -> dict[str, np.ndarray]:
        return {f: v.cpu().numpy() for f, v in self.values.items()}


Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The default objective: (mean cross-entropy, logits)."""
    logits = model(x)
    return F.cross_entropy(logits.float(), y), logits


def fit(
    model: nn.Module,
    data: DeviceData,
    positions: torch.Tensor,
    recipe: Recipe,
    seed: int,
    objective: Objective = cross_entropy,
    dynamics: Dynamics | None = None,
    on_epoch_end: Callable[[nn.Module, int], None] | None = None,
    desc: str = "train",
) -> nn.Module:
    """SGD over the training samples at `positions` (one epoch = one pass over them).

    `objective(model, x, y)` returns (loss, logits of x); methods that also look at other
    samples (the forget set) close over them. Deterministic for a seed on CPU.
    """
    device = data.device
    model.to(device=device, memory_format=memory_format(device)).train()
    gen = torch.Generator().manual_seed(seed)
    n = len(positions)
    steps_per_epoch = math.ceil(n / recipe.batch_size)
    opt = sgd(model.parameters(), recipe)
    lr_at, step = lr_lambda(recipe, recipe.epochs * steps_per_epoch), 0
    fmt = memory_format(device)
    for epoch in tqdm(range(recipe.epochs), desc=desc, unit="epoch", mininterval=2):
        order = positions[torch.randperm(n, generator=gen).to(positions.device)]
        for i in range(0, n, recipe.batch_size):
            pos = order[i : i + recipe.batch_size]
            x = data.x_train[pos]
            if recipe.augment:
                x = augment(x, gen)
            x = data.normalize(x).contiguous(memory_format=fmt)
            y = data.y_train[pos]
            with autocast(device):
                loss, logits = objective(model, x, y)
            opt.zero_grad()
            loss.backward()
            opt.step(recipe.lr * lr_at(step))
            step += 1
            if dynamics is not None:
                dynamics.record(epoch, pos, logits, y)
        if on_epoch_end is not None:
            on_epoch_end(model, epoch + 1)
    return model
