"""Unlearning a forget set in steps (RUM's subsets, RSU's chunks): the part RUM and RSU share.

Each step unlearns one subset starting from the previous step's model. Its retain set is train
minus everything forgotten up to and including this step: step s retains
train \\ (F_1 ∪ … ∪ F_s), so later subsets are still retained while earlier ones are unlearnt.

Budget: at a step whose method's epoch is a pass over R (most), that method's epochs are split
over the steps that run (as evenly as possible, the remainder to the later steps, at least 1
each): `rum_f:finetune` with 10 epochs runs 3 + 3 + 4, and `rum`'s default none → finetune →
salun runs 5 finetune + 5 salun epochs, the passes over R of one vanilla run. A method whose epoch is a pass over F
(`EPOCH_OVER = "forget"`, e.g. neggrad) keeps its epochs at every step: its steps pass over
subsets of F, so the total again matches. The recorder's epoch counter runs on across steps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch
from torch import nn

from mudiff.methods.base import UnlearnTask


@dataclass
class Step:
    name: str  # e.g. 'low' or 'chunk 2'
    forget: torch.Tensor  # positions
    method: ModuleType | None  # None: skip this subset (RUM's 'none')
    params: object = None


def split_epochs(total: int, steps: int) -> list[int]:
    base, extra = divmod(total, steps)
    return [max(1, base + (1 if i >= steps - extra else 0)) for i in range(steps)]


def budget(steps: list[Step]) -> list[Step]:
    """Steps with epochs set per the rule in the module docstring."""
    running = [i for i, s in enumerate(steps) if s.method is not None]
    out = list(steps)
    for rank, i in enumerate(running):
        s = steps[i]
        if getattr(s.method, "EPOCH_OVER", "retain") == "forget" or not hasattr(s.params, "epochs"):
            continue
        epochs = split_epochs(s.params.epochs, len(running))[rank]
        out[i] = dataclasses.replace(s, params=dataclasses.replace(s.params, epochs=epochs))
    return out


def run(model: nn.Module, task: UnlearnTask, steps: list[Step]) -> nn.Module:
    forgotten = torch.zeros(len(task.data.y_train), dtype=torch.bool, device=task.forget.device)
    keep = torch.zeros_like(forgotten)
    keep[task.retain] = True
    keep[task.forget] = True
    offset = 0
    log = task.notes.setdefault("steps", [])
    for step in budget(steps):
        forgotten[step.forget] = True
        retain = (keep & ~forgotten).nonzero().squeeze(1)
        entry = {"name": step.name, "forget": int(len(step.forget)), "retain": int(len(retain))}
        if step.method is None:
            log.append({**entry, "method": "none", "epochs": 0})
            continue
        seen = []

        def on_epoch_end(net, epoch, base=offset, seen=seen):
            seen.append(epoch)
            task.on_epoch_end(net, base + epoch)

        sub = dataclasses.replace(
            task, forget=step.forget, retain=retain, on_epoch_end=on_epoch_end, forget_scores=None
        )
        model = step.method.unlearn(model, sub, step.params)
        offset += max(seen, default=0)
        log.append(
            {**entry, "method": step.method.__name__.rsplit(".", 1)[-1], "epochs": max(seen, default=0)}
        )
    return model


def thirds(order: np.ndarray, parts: int = 3) -> list[np.ndarray]:
    """Consecutive, near-equal parts of an ordering (sizes differ by at most one)."""
    return np.array_split(order, parts)
