"""What a model says of samples, in eval mode: logits, a per-sample table, embeddings, accuracy."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mudiff.data import DeviceData
from mudiff.device import autocast, memory_format
from mudiff.training.quantities import per_sample


@torch.inference_mode()
def predict(
    model: nn.Module,
    data: DeviceData,
    split: str,
    positions: torch.Tensor | None = None,
    batch_size: int = 4096,
) -> torch.Tensor:
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
        frames.append(
            pd.DataFrame(
                {
                    "split": split,
                    "id": np.asarray(ids),
                    "label": y.cpu().numpy(),
                    "p_y": stats["p_y"].cpu().numpy(),
                    "phi": stats["phi"].cpu().numpy(),
                    "correct": stats["correct"].cpu().numpy(),
                }
            )
        )
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
