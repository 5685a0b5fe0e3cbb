"""Training-time augmentation of a uint8 batch on its device, as tensor ops."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
