"""The fork server: a job it runs behaves as the job's own interpreter would (output, exit status,
environment), it declines what it cannot stand in for, signals reach the worker, and nothing
outlives the job or the Snakemake that started the server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mudiff import forkserver

REPO = Path(__file__).resolve().parents[1]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _wait(predicate, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server warm in a scratch folder, on a copy of the package (so that a test may edit it)."""
    work = tmp_path_factory.mktemp("forkserver")
    shutil.copytree(
        REPO / "workflow" / "mudiff", work / "src" / "mudiff", ignore=shutil.ignore_patterns("__pycache__")
    )
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MUDIFF_"))},
        "PYTHONPATH": str(work / "src"),
    }
    sock = str(work / "s.sock")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mudiff.forkserver", sock, "--parent", str(os.getpid())],
        cwd=work,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert _wait(lambda: os.path.exists(sock) or proc.poll() is not None, 120), "the server never listened"
    assert proc.poll() is None, proc.stdout.read()
    yield {"work": work, "env": {**environ, forkserver.SOCKET_ENV: sock}, "proc": proc, "sock": sock}
    proc.terminate()
    proc.wait(10)


def job(server, *args: str, cwd: Path | None = None, env: dict | None = None, **kw) -> subprocess.Popen:
    """`python -m mudiff ARGS`, as Snakemake runs a job: stdout and stderr into its log."""
    log = open(server["work"] / f"job-{time.monotonic_ns()}.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mudiff", *args],
        cwd=cwd or server["work"],
        env={**server["env"], **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        **kw,
    )
    proc.log = log  # type: ignore[attr-defined]
    return proc


def finished(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    code = proc.wait(timeout)
    proc.log.seek(0)  # type: ignore[attr-defined]
    return code, proc.log.read()  # type: ignore[attr-defined]


INIT = ["init", "--job", json.dumps({"rule": "init", "study": "forkserver-test"})]


def test_a_job_runs_in_a_worker_with_its_own_output_environment_and_status(server):
    code, log = finished(job(server, *INIT))
    assert code == 0, log
    assert "experiment 'forkserver-test'" in log and "declined" not in log
    # the same job in its own interpreter prints the same
    code_own, log_own = finished(job(server, *INIT, env={forkserver.SOCKET_ENV: "off"}))
    assert code_own == 0 and log_own == log
    # the job's environment is the worker's: the experiment id comes from the store it names
    code, log = finished(job(server, *INIT, env={"MLFLOW_TRACKING_URI": "sqlite:///other.db"}))
    assert code == 0 and (server["work"] / "other.db").exists(), log


def test_a_failing_job_fails_with_its_traceback_in_its_log(server):
    code, log = finished(job(server, "evaluate", "--job", "{}"))
    assert code == 1
    assert "KeyError" in log and "forkserver.py" in log  # raised in a worker of the server
    code, log = finished(job(server, "no_such_stage", "--job", "{}"))
    assert code == 2 and "invalid choice" in log  # argparse's exit status, as in a fresh interpreter


def test_no_server_or_off_means_the_job_runs_itself(tmp_path, monkeypatch):
    monkeypatch.delenv(forkserver.SOCKET_ENV, raising=False)
    assert forkserver.submit(["init"]) is None
    monkeypatch.setenv(forkserver.SOCKET_ENV, "off")
    assert forkserver.submit(["init"]) is None
    monkeypatch.setenv(forkserver.SOCKET_ENV, str(tmp_path / "absent.sock"))
    assert forkserver.submit(["init"]) is None


def _blocking_job(server, fifo: Path) -> list[str]:
    """A job whose worker blocks reading `fifo` (its data record) until the test writes to it."""
    os.mkfifo(fifo)
    spec = {"rule": "evaluate", "study": "forkserver-test", "params": {"evaluate": {}}, "wildcards": {}}
    return ["evaluate", "--job", json.dumps(spec),
            "--io", json.dumps({"input": {"data_version": str(fifo)}, "output": {}})]  # fmt: skip


def test_sigterm_to_the_job_reaches_its_worker(server, tmp_path):
    proc = job(server, *_blocking_job(server, tmp_path / "record"))
    assert _wait(lambda: len(_children(server["proc"].pid)) == 1), "no worker started"
    proc.send_signal(signal.SIGTERM)
    code, _ = finished(proc)
    assert code == 128 + signal.SIGTERM
    assert _wait(lambda: not _children(server["proc"].pid)), "the worker outlived its job"


def test_a_job_killed_outright_takes_its_worker_with_it(server, tmp_path):
    proc = job(server, *_blocking_job(server, tmp_path / "record"))
    assert _wait(lambda: len(_children(server["proc"].pid)) == 1), "no worker started"
    proc.kill()
    proc.wait(10)
    assert _wait(lambda: not _children(server["proc"].pid)), "the worker outlived its job"


def test_it_declines_another_working_directory_and_code_changed_since_it_started(server, tmp_path):
    """(Last of the tests on the module's server: once its code changed, it declines every job.)"""
    code, log = finished(job(server, *INIT, cwd=tmp_path))
    assert code == 0 and "declined (another working directory)" in log
    module = server["work"] / "src" / "mudiff" / "stages" / "evaluate.py"
    module.write_text(module.read_text() + "\n# edited during the run\n")
    try:
        code, log = finished(job(server, *INIT))
        assert (
            code == 0 and "declined (src/mudiff/stages/evaluate.py changed since the server started)" in log
        )
    finally:
        module.write_text(module.read_text().removesuffix("\n# edited during the run\n"))
    # the same size and contents, but a new mtime: still declined (the server cannot know)
    code, log = finished(job(server, *INIT))
    assert "declined" in log


def test_the_server_leaves_with_its_parent(tmp_path):
    """Started by a process that then dies (a Snakemake killed outright), it stops and removes its socket."""
    sock = tmp_path / "p.sock"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MUDIFF_"))}
    environ["PYTHONPATH"] = str(REPO / "workflow")
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys, time\n"
            f"p = subprocess.Popen([sys.executable, '-m', 'mudiff.forkserver', {str(sock)!r}, '--parent', str(os.getpid())])\n"
            "print(p.pid, flush=True)\n"
            "time.sleep(600)",
        ],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        text=True,
    )
    server = int(starter.stdout.readline())
    assert _wait(lambda: sock.exists(), 120), "the server never listened"
    starter.kill()
    starter.wait()
    assert _wait(lambda: not sock.exists(), 20), "the server outlived its parent"
    assert _wait(
        lambda: (
            not Path(f"/proc/{server}").exists() or "Z" in Path(f"/proc/{server}/stat").read_text().split()[2]
        )
    )


def test_process_started_is_when_the_process_started():
    from mudiff.jobclock import process_started

    if process_started() is None:
        pytest.skip("no /proc")
    before = time.time()
    proc = subprocess.Popen(["sleep", "3"])
    try:
        time.sleep(1.0)
        started = process_started(proc.pid)
        assert before - 0.1 <= started <= before + 0.6  # to the clock tick, a second before this line
    finally:
        proc.kill()
        proc.wait()


def test_a_worker_takes_its_jobs_thread_count_for_torch_blas_and_openmp():
    """In a worker, torch, BLAS and OpenMP loaded in the server: the job's OMP_NUM_THREADS is applied
    to all of them, as a fresh interpreter would read it."""
    probe = (
        "import numpy, torch, sklearn.ensemble\n"
        "from threadpoolctl import threadpool_info\n"
        "from mudiff.forkserver import _limit_threads\n"
        "before = {i['num_threads'] for i in threadpool_info()}\n"
        "_limit_threads('1')\n"
        "print(sorted(before), torch.get_num_threads(), sorted({i['num_threads'] for i in threadpool_info()}))\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=environ, capture_output=True, text=True, check=True
    )
    before, torch_threads, after = (
        json.loads(out.stdout.split("] ", 1)[0] + "]"),
        *out.stdout.rsplit(" ", 2)[1:],
    )
    assert torch_threads == "1" and after.strip() == "[1]", out.stdout
    if os.cpu_count() and os.cpu_count() > 1:
        assert max(before) > 1  # so the limit changed something


def test_cpu_peak_memory_is_the_computations_not_the_processs():
    """On the CPU the peak counts from `reset_peak_memory`: a worker, which inherits the server's whole
    heap, and a fresh interpreter report the same for the same computation."""
    np = pytest.importorskip("numpy")
    import torch

    from mudiff.device import peak_memory_mb, reset_peak_memory

    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("no /proc/self/clear_refs")
    cpu = torch.device("cpu")
    reset_peak_memory(cpu)
    big = np.ones(200 * 2**20 // 8)  # 200 MiB, touched
    peak = peak_memory_mb(cpu)
    del big
    assert 190 <= peak < 400, peak
    reset_peak_memory(cpu)
    small = np.ones(2**20)  # 8 MiB
    assert peak_memory_mb(cpu) < 100  # this test process alone holds more than that (torch, pytest)
    del small
