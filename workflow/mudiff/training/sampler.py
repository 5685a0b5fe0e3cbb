"""Endless shuffled mini-batches, for methods that interleave batches of two sets."""

from __future__ import annotations

import torch

from mudiff.data import DeviceData
from mudiff.device import memory_format


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
