"""Where tensors live and in which precision: one decision, made here."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import math
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

# One GPU per job. Snakemake counts a local run's GPU jobs (`--resources gpu=N`, each GPU rule asking for
# gpu=1) but gives a job no device id: its local executor sets no CUDA_VISIBLE_DEVICES (Snakemake's issue
# #281, open as of 9.x; only cluster executors hand out devices, through the cluster's scheduler). Every
# job would land on cuda:0. So a CUDA job claims one of the GPUs it can see itself: an exclusive `flock`
# on a lock file per GPU (and per slot, where jobs share GPUs), held until the process exits, which the
# kernel guarantees however it ends (even SIGKILL). The GPUs it can see are CUDA_VISIBLE_DEVICES's
# (a cluster job's own, or the user's): the claim only chooses among them.
LOCK_DIR_ENV = "MUDIFF_GPU_LOCK_DIR"  # the lock files' folder (default: <temp dir>/mudiff-gpu-locks)
WAIT_ENV = "MUDIFF_GPU_WAIT"  # seconds a job waits for a free GPU before it fails (default 600)
SLOTS_ENV = "MUDIFF_GPU_SLOTS"  # the run's `--resources gpu=N`, set by rules/common.smk (unset: no bound)
DEFAULT_WAIT_S = 600.0

# This process's GPU claim and CUDA settings, once it has picked a CUDA device: the claim's open file
# holds the lock until the process exits.
_JOB: dict = {"claim": None, "settings": {}}


class DeviceError(RuntimeError):
    """The config requires a device that this machine does not have, or no GPU came free in time."""


# ------------------------------------------------------------------------------ one GPU per job


@dataclasses.dataclass
class Claim:
    """A GPU held by this process: an exclusive `flock` on its lock file, for as long as `fd` is open.

    A child forked meanwhile (a DataLoader worker) shares the lock until it exits too; an exec'd one
    does not (the descriptor is close-on-exec)."""

    index: int  # among the visible devices (torch's cuda:<index>)
    key: str  # the device's id on the machine (its UUID, else its CUDA_VISIBLE_DEVICES entry)
    slot: int  # which of the device's slots (0 unless jobs share GPUs)
    path: Path
    fd: int
    waited: float = 0.0  # seconds spent waiting for it

    def note(self) -> str:
        share = f", slot {self.slot}" if self.slot else ""
        return f"GPU {self.key} claimed{share}, lock {self.path}, waited {self.waited:.1f} s"

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class GpuPool:
    """The GPUs of one machine, handed out one per process through lock files in `lock_dir`.

    `keys` names each visible device (index i is cuda:i) by an id every process on the machine agrees
    on, whatever its CUDA_VISIBLE_DEVICES; the lock files are named by host and id, so the jobs of
    every study, checkout and user that share the folder (world-writable and sticky, like /tmp) never
    share a GPU, even with the folder on a shared file system. `slots_per_device` jobs may share a GPU
    (None: no bound). A claim takes the first free slot in the order: every device's first slot, then
    every device's second, and so on, so the jobs spread evenly. Nothing here touches CUDA."""

    def __init__(
        self,
        keys: Sequence[str],
        lock_dir: str | os.PathLike,
        slots_per_device: int | None = 1,
        host: str | None = None,
    ):
        if not keys:
            raise ValueError("no devices to hand out")
        self.keys = [str(k) for k in keys]
        self.lock_dir = Path(lock_dir)
        self.slots = slots_per_device
        self.host = host or socket.gethostname()

    def path(self, key: str, slot: int) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{self.host}-{key}")
        return self.lock_dir / (f"gpu-{safe}.lock" if slot == 0 else f"gpu-{safe}-slot{slot}.lock")

    def _make_dir(self) -> None:
        try:
            self.lock_dir.mkdir(parents=True)
        except FileExistsError:
            return
        with contextlib.suppress(OSError):  # made here: any user's jobs may lock in it
            os.chmod(self.lock_dir, 0o1777)

    @staticmethod
    def _open(path: Path) -> int:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:  # another user's lock file (in a sticky folder): a read-only fd locks it too
            return os.open(path, os.O_RDONLY)

    def try_claim(self, holder: str = "") -> Claim | None:
        """Lock a free (device, slot) and return it, or None when every slot of every device is held."""
        self._make_dir()
        slot = 0
        while self.slots is None or slot < self.slots:
            for index, key in enumerate(self.keys):
                path = self.path(key, slot)
                fd = self._open(path)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # held by another process
                    os.close(fd)
                    continue
                except BaseException:
                    os.close(fd)
                    raise
                with contextlib.suppress(OSError):  # who holds it, for whoever waits on it
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"{holder or f'pid {os.getpid()}'}\n".encode(), 0)
                return Claim(index, key, slot, path, fd)
            slot += 1
        return None

    def holders(self) -> list[str]:
        """Who holds each slot, as its holder wrote it into the lock file."""
        out = []
        for key in self.keys:
            for slot in range(self.slots or 1):
                try:
                    text = self.path(key, slot).read_text().strip()
                except OSError:
                    text = ""
                out.append(f"{key}{f' slot {slot}' if slot else ''}: {text or 'unknown'}")
        return out

    def claim(
        self,
        timeout: float = DEFAULT_WAIT_S,
        poll: float = 0.5,
        holder: str = "",
        on_wait: Callable[[str], None] | None = None,
    ) -> Claim:
        """`try_claim` until a slot is free, for up to `timeout` seconds; then a DeviceError naming the
        holders. `on_wait` hears once that the job waits, and for whom."""
        start = time.monotonic()
        said = False
        while True:
            claim = self.try_claim(holder)
            if claim is not None:
                claim.waited = time.monotonic() - start
                return claim
            waited = time.monotonic() - start
            if waited >= timeout:
                raise DeviceError(
                    f"no free GPU on {self.host} after {waited:.0f} s: all {len(self.keys)} visible GPU(s) "
                    f"are held by other jobs ({'; '.join(self.holders())}; lock files in {self.lock_dir}). "
                    f"Lower --resources gpu, wait for the other study, or raise {WAIT_ENV} (seconds)"
                )
            if on_wait is not None and not said:
                on_wait(
                    f"all {len(self.keys)} visible GPU(s) are held ({'; '.join(self.holders())}); "
                    f"waiting up to {timeout:.0f} s for one"
                )
                said = True
            time.sleep(min(poll, max(0.0, timeout - waited)))


def lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "mudiff-gpu-locks")


def slots_per_device(count: int, env: Mapping[str, str] | None = None) -> int | None:
    """Jobs per GPU: Snakemake's `--resources gpu=N` spread over the `count` visible GPUs, rounded up
    (gpu=4 on 4 GPUs: one job each; gpu=2 on one GPU: two share it); None (no bound) without one."""
    value = (os.environ if env is None else env).get(SLOTS_ENV, "")
    try:
        jobs = int(value)
    except ValueError:
        return None
    return max(1, math.ceil(jobs / max(1, count))) if jobs > 0 else None


def device_keys(count: int) -> list[str]:
    """An id per visible CUDA device that every process on the machine agrees on: its UUID where torch
    tells it, else its CUDA_VISIBLE_DEVICES entry, else its index."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    keys = []
    for index in range(count):
        try:
            key = str(torch.cuda.get_device_properties(index).uuid)
        except (AttributeError, RuntimeError, AssertionError):
            key = ""
        keys.append(key or (visible[index] if index < len(visible) else str(index)))
    return keys


def claim_gpu(count: int) -> Claim:
    """This process's GPU among the `count` visible ones, waiting up to MUDIFF_GPU_WAIT seconds."""
    study = os.environ.get("MUDIFF_STUDY", "")
    holder = f"pid {os.getpid()} on {socket.gethostname()}" + (f", study {study}" if study else "")
    pool = GpuPool(device_keys(count), lock_dir(), slots_per_device(count))
    timeout = float(os.environ.get(WAIT_ENV) or DEFAULT_WAIT_S)
    return pool.claim(timeout=timeout, holder=holder, on_wait=lambda line: print(line, flush=True))


def pick(requested: str = "auto") -> torch.device:
    """'auto' gives CUDA when present and the CPU otherwise (a fallback the job's log and MLflow run
    state); 'cuda' requires a GPU and is refused without one, never silently run on the CPU.

    'cuda' and 'auto' on a GPU machine claim a GPU of this process's own among the visible ones
    (`claim_gpu`, see above), make it the current device (so a bare "cuda" means it too) and set
    the CUDA settings (`cuda_settings`); both hold for the process's life. An explicit device
    ('cuda:1') is taken as given, unclaimed."""
    if requested == "cpu":
        return torch.device("cpu")
    if requested not in ("auto", "cuda"):
        return torch.device(requested)
    if not torch.cuda.is_available():
        if requested == "auto":
            return torch.device("cpu")
        raise DeviceError(
            f"config key 'device' is 'cuda' but no CUDA device is visible on {socket.gethostname()}; "
            "run this job on a GPU node, or set device: auto to fall back to the CPU"
        )
    if _JOB["claim"] is None:
        _JOB["claim"] = claim_gpu(torch.cuda.device_count())
    device = torch.device("cuda", _JOB["claim"].index)
    torch.cuda.set_device(device)
    _JOB["settings"] = cuda_settings(device)
    return device


def choice_note(requested: str, device: torch.device) -> str:
    """One line for the job's log: what the config asked for and what the job runs on."""
    if requested == "auto" and device.type == "cpu":
        return "device: auto -> cpu (no CUDA device visible: CPU fallback)"
    note = f"device: {requested} -> {describe(device)}"
    claim = _JOB["claim"]
    if device.type == "cuda" and claim is not None and claim.index == device.index:
        note += f" ({claim.note()})"
    if device.type == "cuda" and _JOB["settings"]:
        note += "; " + ", ".join(f"{k}={v}" for k, v in _JOB["settings"].items())
    return note


def job_tags(device: torch.device) -> dict[str, str]:
    """The MLflow tags of the device choice beyond its name: the GPU claimed and the CUDA settings."""
    tags: dict[str, str] = {}
    claim = _JOB["claim"]
    if device.type == "cuda" and claim is not None and claim.index == device.index:
        tags.update(
            {
                "mudiff.gpu_index": str(claim.index),
                "mudiff.gpu_id": claim.key,
                "mudiff.gpu_lock": str(claim.path),
                "mudiff.gpu_wait_s": f"{claim.waited:.1f}",
            }
        )
    if device.type == "cuda":
        tags.update({f"mudiff.cuda.{k}": str(v) for k, v in _JOB["settings"].items()})
    return tags


def cuda_settings(device: torch.device) -> dict[str, bool]:
    """The CUDA settings a job runs with, set once when it picks a CUDA device; they only set flags,
    so CUDA itself is not initialised here. TF32 for fp32 matmuls and convolutions (Ampere and later;
    fp32 inputs, a 10-bit mantissa inside the products), and cuDNN's autotuner, which pays off for
    the fixed shapes every stage trains on. Returns them as set, for the job's log and MLflow tags."""
    if device.type != "cuda":
        return {}
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    return {
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }


@contextlib.contextmanager
def full_fp32():
    """TF32 off inside the block (both flags restored after): for per-sample scores computed in fp32
    without autocast, where TF32's 10-bit products would be noise beside the signal (curvature's
    finite difference of gradients, gradient norms). A no-op on the CPU."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on GPU; full fp32 on CPU (bf16 matmuls are slow there)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def memory_format(device: torch.device) -> torch.memory_format:
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        return f"cuda:{index} {torch.cuda.get_device_name(index)}"
    return f"cpu:{torch.get_num_threads()} threads"


# The process's resident set (kB) when `reset_peak_memory` last ran on the CPU; None where Linux's
# peak counter could not be reset there.
_RSS_AT_RESET: dict[str, int | None] = {"kb": None}


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_peak_memory(device: torch.device) -> None:
    """Start measuring a computation's peak memory. On the CPU, Linux's peak resident set (VmHWM) is
    reset to the current one (`/proc/self/clear_refs`), so that the peak is the computation's, not the
    start-up's: a job in a fork-server worker inherits the server's whole heap, one in its own
    interpreter only what it imported."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    _RSS_AT_RESET["kb"] = None
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return
    _RSS_AT_RESET["kb"] = _status_kb("VmRSS")


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated since `reset_peak_memory`; on the CPU, the peak resident set since
    then above the resident set at that moment (Linux), else the process's peak resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak, base = _status_kb("VmHWM"), _RSS_AT_RESET["kb"]
    if peak is not None and base is not None:
        return max(0, peak - base) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
