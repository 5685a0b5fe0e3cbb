"""One GPU per job, tested on a CPU: the lock-file pool (mudiff.device.GpuPool) with real processes
that claim devices named by fake keys, and the device choice of `pick` on a machine without CUDA.

Nothing here needs or touches a GPU: the pool only ever sees device ids, and `pick`'s CUDA branch
runs against a patched torch.cuda."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from mudiff import device as dev
from mudiff.device import DeviceError, GpuPool, cuda_settings, pick, slots_per_device

FORK = multiprocessing.get_context("fork")  # the children inherit the test's imports: no torch import each
WAIT_S = 10.0  # a child that does not answer within this is a failure, not a hang


def _hold(keys, lock_dir, slots, holder, answers, release):
    """A job: claim a device, say which, hold it until the file `release` exists (or until killed).

    (A file, not a multiprocessing.Event: setting an Event that a SIGKILLed process waited on blocks.)"""
    pool = GpuPool(keys, lock_dir, slots, host="testhost")
    try:
        claim = pool.claim(timeout=WAIT_S, poll=0.05, holder=holder)
    except DeviceError as err:
        answers.put((holder, "error", str(err)))
        return
    answers.put((holder, claim.key, claim.slot))
    deadline = time.monotonic() + WAIT_S
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)


class Jobs:
    """Processes that each claim a device of one pool and hold it until `finish`."""

    def __init__(self, keys, lock_dir, slots):
        self.release = Path(lock_dir).parent / f"release-{id(self)}"
        self.args = (list(keys), str(lock_dir), slots)
        self.answers = FORK.Queue()
        self.procs: list = []

    def launch(self, n: int, name: str = "job") -> None:
        """Start `n` jobs at once, named `<name><i>`, i counting every job of this group."""
        new = [
            FORK.Process(
                target=_hold, args=(*self.args, f"{name}{len(self.procs) + i}", self.answers, self.release)
            )
            for i in range(n)
        ]
        for p in new:
            p.start()
        self.procs += new

    def answer(self, n: int) -> list[tuple]:
        """(holder, key, slot) of the next `n` jobs to hold a device."""
        return [self.answers.get(timeout=WAIT_S) for _ in range(n)]

    def start(self, n: int, name: str = "job") -> list[tuple]:
        self.launch(n, name)
        return self.answer(n)

    def finish(self) -> None:
        self.release.touch()
        for p in self.procs:
            p.join(WAIT_S)
            if p.is_alive():
                p.kill()


@pytest.fixture
def jobs(tmp_path):
    made: list[Jobs] = []

    def make(keys, slots=1):
        made.append(Jobs(keys, tmp_path / "locks", slots))
        return made[-1]

    yield make
    for j in made:
        j.finish()


def test_n_processes_on_n_devices_get_distinct_devices(jobs):
    keys = ["GPU-a", "GPU-b", "GPU-c", "GPU-d"]
    answers = jobs(keys).start(4)
    assert sorted(key for _, key, _ in answers) == keys
    assert {slot for _, _, slot in answers} == {0}


def test_two_slots_per_device_spread_four_processes_evenly(jobs):
    answers = jobs(["GPU-a", "GPU-b"], slots=2).start(4)
    assert Counter(key for _, key, _ in answers) == {"GPU-a": 2, "GPU-b": 2}
    assert sorted((key, slot) for _, key, slot in answers) == [
        ("GPU-a", 0),
        ("GPU-a", 1),
        ("GPU-b", 0),
        ("GPU-b", 1),
    ]


def test_unbounded_slots_spread_evenly_and_never_wait(jobs):
    answers = jobs(["GPU-a", "GPU-b"], slots=None).start(5)
    assert Counter(key for _, key, _ in answers) == {"GPU-a": 3, "GPU-b": 2}


def test_fewer_jobs_than_devices_take_the_first_devices_one_each(jobs):
    answers = jobs(["GPU-a", "GPU-b", "GPU-c"], slots=2).start(2)
    assert sorted((key, slot) for _, key, slot in answers) == [("GPU-a", 0), ("GPU-b", 0)]


def test_a_killed_holder_frees_its_device_for_the_next(jobs, tmp_path):
    pool = GpuPool(["GPU-a", "GPU-b"], tmp_path / "locks", 1, host="testhost")
    group = jobs(pool.keys)
    answers = group.start(2)
    assert pool.try_claim("test") is None  # both held
    # the process that holds GPU-a, killed with no chance to clean up
    (holder_of_a,) = [holder for holder, key, _ in answers if key == "GPU-a"]
    victim = group.procs[int(holder_of_a.removeprefix("job"))]
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(WAIT_S)
    assert victim.exitcode == -signal.SIGKILL
    assert group.start(1, name="late") == [("late2", "GPU-a", 0)]  # the kernel dropped the dead one's lock
    assert pool.try_claim("test") is None


def test_an_exiting_holder_frees_its_device(jobs, tmp_path):
    pool = GpuPool(["GPU-a"], tmp_path / "locks", 1, host="testhost")
    group = jobs(pool.keys)
    group.start(1)
    assert pool.try_claim("test") is None
    group.finish()  # the holder returns and exits normally
    claim = pool.try_claim("test")
    assert claim is not None and claim.key == "GPU-a"
    claim.release()


def test_a_full_pool_waits_then_names_the_holders(jobs, tmp_path):
    pool = GpuPool(["GPU-a", "GPU-b"], tmp_path / "locks", 1, host="testhost")
    holders = jobs(pool.keys).start(2, name="study-x-job")
    heard: list[str] = []
    start = time.monotonic()
    with pytest.raises(DeviceError) as err:
        pool.claim(timeout=1.0, poll=0.05, holder="late", on_wait=heard.append)
    waited = time.monotonic() - start
    assert 1.0 <= waited < 1.9  # its timeout, not a multiple
    message = str(err.value)
    for holder, key, _ in holders:
        assert f"{key}: {holder}" in message
    assert "MUDIFF_GPU_WAIT" in message and str(tmp_path / "locks") in message
    assert len(heard) == 1 and "waiting up to 1 s" in heard[0]  # said once, not at every poll


def test_a_claim_waits_for_a_device_that_frees_in_time(jobs):
    keys = ["GPU-a"]
    first, waiter = jobs(keys), jobs(keys)
    first.start(1)
    waiter.launch(1, name="waiter")
    time.sleep(0.3)
    assert waiter.answers.empty()  # it waits ...
    first.finish()
    assert waiter.answer(1) == [("waiter0", "GPU-a", 0)]  # ... and gets the device once it is free


def test_lock_files_are_per_host_and_device_and_hold_the_holder(tmp_path):
    a = GpuPool(["GPU-1/MIG 0"], tmp_path, 2, host="node1")
    b = GpuPool(["GPU-1/MIG 0"], tmp_path, 2, host="node2")
    ca, cb = a.try_claim("job on node1"), b.try_claim("job on node2")
    assert ca.path != cb.path and ca.slot == cb.slot == 0  # same device id, other host: no contention
    assert ca.path.name == "gpu-node1-GPU-1_MIG_0.lock"
    assert ca.path.read_text() == "job on node1\n"
    assert a.try_claim().path.name == "gpu-node1-GPU-1_MIG_0-slot1.lock"


@pytest.mark.parametrize(
    "value, count, slots",
    [
        ("", 4, None),  # no --resources gpu: no bound
        ("junk", 4, None),
        ("0", 4, None),
        ("4", 4, 1),  # gpu=4 on 4 GPUs: one job each
        ("1", 4, 1),
        ("2", 1, 2),  # two jobs share one GPU
        ("3", 2, 2),  # rounded up: 2 + 1
        ("8", 2, 4),
        ("2", 0, 2),  # no device counted: no division by zero
    ],
)
def test_slots_per_device(value, count, slots):
    assert slots_per_device(count, {dev.SLOTS_ENV: value}) == slots


def test_slots_per_device_reads_the_environment(monkeypatch):
    monkeypatch.setenv(dev.SLOTS_ENV, "6")
    assert slots_per_device(4) == 2
    monkeypatch.delenv(dev.SLOTS_ENV)
    assert slots_per_device(4) is None


# ------------------------------------------------------------------------- pick, on a CPU machine


@pytest.fixture
def fresh_job(tmp_path, monkeypatch):
    """This process as a fresh job: no claim yet, its own lock folder."""
    monkeypatch.setitem(dev._JOB, "claim", None)
    monkeypatch.setitem(dev._JOB, "settings", {})
    monkeypatch.setenv(dev.LOCK_DIR_ENV, str(tmp_path / "locks"))
    return tmp_path / "locks"


@pytest.mark.parametrize("requested", ["cpu", "auto"])
def test_pick_on_a_cpu_machine_claims_nothing(requested, fresh_job, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    device = pick(requested)
    assert device.type == "cpu"
    assert dev._JOB["claim"] is None and dev._JOB["settings"] == {}
    assert not fresh_job.exists()  # not even the lock folder
    assert dev.job_tags(device) == {}


def test_pick_cuda_on_a_cpu_machine_is_refused_and_claims_nothing(fresh_job, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="no CUDA device is visible"):
        pick("cuda")
    assert dev._JOB["claim"] is None and not fresh_job.exists()


def _pick_in_child(answers):
    device = pick("cuda")
    claim = dev._JOB["claim"]
    answers.put((str(device), claim.key, dev.job_tags(device)))
    time.sleep(WAIT_S)  # hold it until the test kills us


def test_pick_cuda_jobs_claim_their_own_visible_gpu(fresh_job, monkeypatch):
    """Two jobs on a (patched) machine with CUDA_VISIBLE_DEVICES=2,3: cuda:0 and cuda:1, keyed by
    their CUDA_VISIBLE_DEVICES entries where torch gives no UUID; each sets the current device."""
    current: list = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: (_ for _ in ()).throw(RuntimeError))
    monkeypatch.setattr(dev, "cuda_settings", lambda device: {"cudnn_benchmark": True})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    monkeypatch.setenv(dev.SLOTS_ENV, "2")
    answers = FORK.Queue()
    procs = [FORK.Process(target=_pick_in_child, args=(answers,)) for _ in range(2)]
    try:
        for p in procs:
            p.start()
        got = sorted(answers.get(timeout=WAIT_S) for _ in procs)
    finally:
        for p in procs:
            p.kill()
            p.join(WAIT_S)
    assert [(d, k) for d, k, _ in got] == [("cuda:0", "2"), ("cuda:1", "3")]
    tags = got[1][2]
    assert tags["mudiff.gpu_id"] == "3" and tags["mudiff.gpu_index"] == "1"
    assert tags["mudiff.cuda.cudnn_benchmark"] == "True"
    # in this process too: a third job takes the first GPU freed by the killed ones
    assert pick("cuda") == torch.device("cuda", 0) and current == [torch.device("cuda", 0)]
    assert dev._JOB["claim"].note().startswith("GPU 2 claimed, lock ")


def test_device_keys_prefer_the_uuid_over_the_visible_entry(monkeypatch):
    class Props:
        def __init__(self, i):
            self.uuid = f"GPU-uuid-{i}" if i == 0 else ""

    monkeypatch.setattr(torch.cuda, "get_device_properties", Props)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    assert dev.device_keys(2) == ["GPU-uuid-0", "7"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert dev.device_keys(2) == ["GPU-uuid-0", "1"]


# ------------------------------------------------------------------------------ CUDA settings


def _flags() -> tuple:
    return (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
    )


@pytest.fixture
def restore_flags():
    before = _flags()
    yield before
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = (
        before
    )


def test_cuda_settings_on_the_cpu_set_nothing(restore_flags):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    before = _flags()
    assert cuda_settings(torch.device("cpu")) == {}
    assert _flags() == before


def test_cuda_settings_on_a_cuda_device_turn_on_tf32_and_the_autotuner(restore_flags):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    settings = cuda_settings(torch.device("cuda", 1))  # flags only: no CUDA needed
    assert settings == {"matmul_allow_tf32": True, "cudnn_allow_tf32": True, "cudnn_benchmark": True}
    assert _flags() == (True, True, True)


def test_full_fp32_turns_tf32_off_inside_and_restores_the_flags():
    import torch

    from mudiff.device import full_fp32

    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        with full_fp32():
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        with pytest.raises(ValueError), full_fp32():
            raise ValueError
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
