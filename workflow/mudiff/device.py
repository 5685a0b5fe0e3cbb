"""Where tensors live and in which precision: one decision, made here."""

from __future__ import annotations

import contextlib

import torch


class DeviceError(RuntimeError):
    """The config requires a device that this machine does not have."""


def pick(requested: str = "auto") -> torch.device:
    """'auto' gives CUDA when present and the CPU otherwise (a fallback the job's log and MLflow run
    state); 'cuda' requires a GPU and is refused without one, never silently run on the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        import socket

        raise DeviceError(
            f"config key 'device' is 'cuda' but no CUDA device is visible on {socket.gethostname()}; "
            "run this job on a GPU node, or set device: auto to fall back to the CPU"
        )
    return torch.device(requested)


def choice_note(requested: str, device: torch.device) -> str:
    """One line for the job's log: what the config asked for and what the job runs on."""
    if requested == "auto" and device.type == "cpu":
        return "device: auto -> cpu (no CUDA device visible: CPU fallback)"
    return f"device: {requested} -> {describe(device)}"


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on GPU; full fp32 on CPU (bf16 matmuls are slow there)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(device: torch.device) -> torch.memory_format:
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{torch.get_num_threads()} threads"


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated, or the process's peak resident set size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
