"""A two-hidden-layer perceptron for small flat inputs (digits)."""

from __future__ import annotations

import math

from torch import nn


class MLP(nn.Module):
    def __init__(
        self, in_shape: tuple[int, int, int], num_classes: int, hidden: tuple[int, ...] = (128, 128)
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(in_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))
