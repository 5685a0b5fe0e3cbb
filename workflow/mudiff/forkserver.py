"""A fork server for the jobs of one local Snakemake run: they start in milliseconds, not seconds.

A stage job is a new Python process, and most of a small study's time went on those processes
starting: `import torch` and `import mlflow` took 3-4 s each on a 2-core VM, and opening the
MLflow SQL store another 1-2 s, where most jobs' own work takes well under a second. So the
Snakefile's `onstart` starts one server process (`start`) that imports all of that once and opens
the study's MLflow store, then waits. A job (`python -m mudiff STAGE ...`, see mudiff.__main__)
first asks the server (`submit`): the server forks a worker, already warm, which takes over the
job's stdin, stdout and stderr (its log), environment, working directory and argv and runs the
stage exactly as the job's own interpreter would (`mudiff.__main__.run_stage`); the job waits for
the worker's exit status and exits with it. The DAG, the jobs, their logs, benchmark files and
MLflow runs are the same as without the server; only where the interpreter's start-up is spent
changes.

A job runs in its own fresh interpreter instead (`submit` returns None) wherever the server cannot
stand in for one: no server (a cluster job, a job run by hand, `MUDIFF_FORKSERVER=off`), another
Python or module path (`--sdm conda`), another working directory, or a package file changed since
the server imported it (an edit during the run: the job must run the code on disk).

Signals: a job that receives SIGTERM or SIGINT (Snakemake stopping it) passes it to its worker,
which records its run as KILLED and writes no outputs (mudiff.tracking.job_run), and exits with its
status. A worker whose job process disappears (SIGKILL) terminates itself; so does one whose server
dies. The server leaves with the Snakemake that started it (`stop`, or on noticing it is gone).

Fork safety: the server is single-threaded, never initialises CUDA (a worker does, after the fork)
and holds no open database connection when it forks (the store's engine is disposed after warming);
random state is seeded by every stage itself.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pkgutil
import selectors
import signal
import socket
import struct
import sys
import tempfile
import time
import traceback
from pathlib import Path

from mudiff.jobclock import LAUNCH_ENV

SOCKET_ENV = (
    "MUDIFF_FORKSERVER"  # the server's socket, for the jobs; "off" = every job starts its own interpreter
)
PACKAGE_DIR = Path(__file__).resolve().parent
# What a worker would otherwise import itself: the heavy libraries and every stage's module.
PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "torch",
    "torch.func",
    "tqdm.auto",
    "mlflow.tracking",
    "mlflow.entities",
    "mlflow.tracking.context.registry",
    "matplotlib",
)
_HEADER = struct.Struct("!Q")
_POLL_SECONDS = 0.2


# ----------------------------------------------------------------------------- the job's side


def _send(conn: socket.socket, obj: dict, fds: list[int] | None = None) -> None:
    body = json.dumps(obj).encode()
    if fds:
        socket.send_fds(conn, [_HEADER.pack(len(body))], fds)
    else:
        conn.sendall(_HEADER.pack(len(body)))
    conn.sendall(body)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    chunks = b""
    while len(chunks) < n:
        chunk = conn.recv(n - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed")
        chunks += chunk
    return chunks


def _recv(conn: socket.socket, with_fds: int = 0) -> tuple[dict, list[int]]:
    fds: list[int] = []
    if with_fds:
        head, fds, _flags, _addr = socket.recv_fds(conn, _HEADER.size, with_fds)
        head += _recv_exact(conn, _HEADER.size - len(head)) if len(head) < _HEADER.size else b""
    else:
        head = _recv_exact(conn, _HEADER.size)
    (size,) = _HEADER.unpack(head)
    return json.loads(_recv_exact(conn, size)), fds


def _request(argv: list[str]) -> dict:
    return {
        "argv": argv,
        "program": sys.argv[0],  # .../mudiff/__main__.py: MLflow's mlflow.source.name reads it
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "executable": sys.executable,
        "path": sys.path,
    }


def submit(argv: list[str]) -> int | None:
    """Run the stage job `argv` in a worker of the server named by MUDIFF_FORKSERVER and return its
    exit status; None where no server can run it (the caller then runs it itself), saying why on
    stderr when a server exists but declines."""
    path = os.environ.get(SOCKET_ENV, "")
    if not path or path == "off":
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        _send(conn, _request(argv), [0, 1, 2])
        reply, _ = _recv(conn)
    except OSError:  # no server (gone, or never reachable from here): run in this interpreter
        conn.close()
        return None
    if "declined" in reply:
        print(
            f"mudiff: fork server declined ({reply['declined']}): starting a fresh interpreter",
            file=sys.stderr,
        )
        conn.close()
        return None
    worker = int(reply["pid"])

    def forward(signum, _frame):
        try:
            os.kill(worker, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            reply, _ = _recv(conn)
            return int(reply["status"])
        except InterruptedError:
            continue
        except (OSError, ValueError) as err:
            print(f"mudiff: lost the fork server while its worker ran the job ({err})", file=sys.stderr)
            return 1


# ----------------------------------------------------------------------------- the server


def _package_files() -> dict[str, tuple[int, int]]:
    """(mtime_ns, size) of every module file of the package (the server imports them all)."""
    files = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        st = path.stat()
        files[str(path)] = (st.st_mtime_ns, st.st_size)
    return files


def _changed(files: dict[str, tuple[int, int]]) -> str | None:
    for file, stamp in files.items():
        try:
            st = os.stat(file)
        except OSError:
            return f"{file} is gone"
        if (st.st_mtime_ns, st.st_size) != stamp:
            return f"{os.path.relpath(file)} changed since the server started"
    return None


def warm() -> None:
    """Import what a worker needs, and open (then close) the study's MLflow store, so that a worker
    finds it cached with its schema verified."""
    import matplotlib

    matplotlib.use("Agg")
    for name in PRELOAD:
        importlib.import_module(name)
    for module in pkgutil.walk_packages([str(PACKAGE_DIR)], f"{PACKAGE_DIR.name}."):
        if module.name not in ("mudiff.__main__", __name__):
            importlib.import_module(module.name)
    from mlflow.tracking.context.registry import resolve_tags

    resolve_tags({})  # imports what its context providers need (IPython, GitPython): ~1 s
    from mudiff import tracking

    if tracking.tracking_uri().startswith("sqlite:"):
        from mlflow.tracking._tracking_service.utils import _get_store

        store = _get_store(tracking.tracking_uri())
        store.engine.dispose()  # no connection crosses a fork: each worker opens its own


def _forget_server_caches() -> None:
    """What the server's process cached that belongs to a job, not to the server: the temp folder
    (the job's TMPDIR may differ) and MLflow's run-context caches (the git commit, read when the
    server warmed up, may have moved since: a commit made during a run)."""
    tempfile.tempdir = None
    from mlflow.tracking.context import registry

    for provider in getattr(registry._run_context_provider_registry, "_registry", []):
        cache = getattr(provider, "_cache", None)
        if isinstance(cache, dict):
            cache.clear()


def _worker(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """In the forked child: become the job's process and run its stage; never returns. The
    interpreter's own stdout and stderr now write to the job's (its log), buffered as in a fresh
    interpreter writing to a file."""
    code = 1
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh interpreter
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        os.environ[LAUNCH_ENV] = "fork server"
        sys.argv = [request.get("program") or sys.argv[0], *request["argv"]]
        _forget_server_caches()
        from mudiff.__main__ import death_signal, run_stage

        death_signal(signal.SIGTERM)  # the worker goes with the server
        _watch_job(conn)
        _limit_threads(os.environ.get("OMP_NUM_THREADS", ""))

        try:
            run_stage(request["argv"])
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            if isinstance(exit_.code, str):
                print(exit_.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - the job's traceback, as its own interpreter would print it
        traceback.print_exc()
        code = 130 if isinstance(sys.exc_info()[1], KeyboardInterrupt) else 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _limit_threads(threads: str) -> None:
    """The job's thread count (Snakemake's `threads`, as OMP_NUM_THREADS): a fresh interpreter reads it
    when torch, OpenMP and BLAS load, but in a worker they loaded in the server, so torch's pool and
    every loaded BLAS and OpenMP library are set to it here."""
    if not (threads.isdigit() and int(threads) > 0):
        return
    import torch

    torch.set_num_threads(int(threads))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn's dependency; without it BLAS keeps the server's count
        return
    threadpool_limits(limits=int(threads))


def _watch_job(conn: socket.socket) -> None:
    """Terminate the worker when its job's process closes the connection (it died without a word)."""
    import threading

    conn.settimeout(None)

    def watch():
        try:
            while conn.recv(1024):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True, name="mudiff-watch-job").start()


def _exit_status(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _cuda_loaded() -> bool:
    """Whether this process has loaded the CUDA driver: a process forked after that cannot use CUDA
    (torch's "re-initialize CUDA in forked subprocess" error, or the driver's own), so a server that
    has must serve no GPU job. Warming only imports, which loads no driver; this checks it did not."""
    import torch

    if torch.cuda.is_initialized():
        return True
    try:
        return "libcuda.so" in Path("/proc/self/maps").read_text()
    except OSError:
        return False


def serve(path: str, parent: int | None = None) -> None:
    """Listen on the Unix socket `path` and fork a worker per job; return when `parent` (the
    Snakemake process) is gone or on SIGTERM."""
    began = time.perf_counter()
    files = _package_files()  # before importing: a file saved while the server warms is a change
    warm()
    if _cuda_loaded():
        print("mudiff fork server: CUDA was initialised while warming; not serving", flush=True)
        return
    executable, module_path, cwd = sys.executable, list(sys.path), os.getcwd()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mask = os.umask(0o077)  # the socket is its owner's alone: whoever connects runs jobs as them
    try:
        listener.bind(path + ".tmp")
    finally:
        os.umask(mask)
    listener.listen(64)
    os.replace(path + ".tmp", path)  # jobs see the socket only once the server listens on it
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    workers: dict[int, socket.socket] = {}
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C stops the jobs; Snakemake then stops us
    print(
        f"mudiff fork server: listening on {path} (warm in {time.perf_counter() - began:.1f} s)", flush=True
    )
    try:
        while not stopping and (parent is None or os.getppid() == parent):
            for _key, _events in selector.select(_POLL_SECONDS):
                conn, _ = listener.accept()
                try:
                    _serve_one(conn, (files, executable, module_path, cwd), (selector, listener), workers)
                except Exception as err:  # noqa: BLE001 - a bad request or a failed fork ends no other job
                    print(f"mudiff fork server: a request failed ({type(err).__name__}: {err})", flush=True)
                    with contextlib.suppress(OSError):
                        _reply(conn, {"declined": f"the server failed: {type(err).__name__}: {err}"})
                    conn.close()
            _reap(workers)
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
        for pid in workers:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)


def _serve_one(
    conn: socket.socket, server: tuple, listening: tuple, workers: dict[int, socket.socket]
) -> None:
    """Read one job's request from `conn` and fork its worker, or decline it (the job then starts its
    own interpreter). The job's descriptors are closed here in every case (the worker has its copies)."""
    files, executable, module_path, cwd = server
    conn.settimeout(10)
    try:
        request, fds = _recv(conn, with_fds=3)
    except (OSError, ValueError):
        conn.close()
        return
    try:
        if not isinstance(request, dict):
            why = "a malformed request"
        elif request.get("cwd") != cwd:
            why = "another working directory"
        elif request.get("executable") != executable or request.get("path") != module_path:
            why = "another Python or module path"
        else:
            why = _changed(files) or (None if len(fds) == 3 else "no stdio")
        if why:
            _reply(conn, {"declined": why})
            conn.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            for closing in listening:
                closing.close()
            for other in workers.values():
                other.close()
            _worker(conn, request, fds)  # never returns
        workers[pid] = conn
        _reply(conn, {"pid": pid})
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def _reply(conn: socket.socket, obj: dict) -> None:
    try:
        _send(conn, obj)
    except OSError:
        pass


def _reap(workers: dict[int, socket.socket]) -> None:
    while workers:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = workers.pop(pid, None)
        if conn is not None:
            _reply(conn, {"status": _exit_status(status)})
            conn.close()


# ----------------------------------------------------------------------------- for the Snakefile

_server = None


def start() -> dict[str, str]:
    """Start the server for this process's jobs (the Snakefile's `onstart`) and return the environment
    that points the jobs at it; {} where MUDIFF_FORKSERVER=off. The jobs that start before the
    server is warm run in their own interpreters."""
    global _server
    if os.environ.get(SOCKET_ENV) == "off":
        return {}
    import subprocess

    name = f"mudiff-{os.getuid()}-{os.getpid()}-{time.time_ns() % 10**9}.sock"
    path = os.path.join(tempfile.gettempdir(), name)
    if len(os.fsencode(path)) > 100:  # a Unix socket's path holds 107 bytes: a long TMPDIR would not do
        path = os.path.join("/tmp", name)
    Path(".snakemake").mkdir(exist_ok=True)
    log = open(".snakemake/mudiff-forkserver.log", "w")  # noqa: SIM115 - the server's, kept open by it
    _server = subprocess.Popen(
        [sys.executable, "-m", "mudiff.forkserver", path, "--parent", str(os.getpid())],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C reaches the jobs, which pass it to their workers
    )
    log.close()
    return {SOCKET_ENV: path}


def stop() -> None:
    """Stop the server (the Snakefile's `onsuccess` and `onerror`)."""
    global _server
    if _server is not None and _server.poll() is None:
        _server.terminate()
        try:
            _server.wait(10)
        except Exception:  # noqa: BLE001
            _server.kill()
    _server = None


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mudiff.forkserver", description=__doc__.splitlines()[0])
    parser.add_argument("socket")
    parser.add_argument("--parent", type=int, default=None, help="exit once this process is gone")
    args = parser.parse_args(argv)
    serve(args.socket, args.parent)


if __name__ == "__main__":
    main()
