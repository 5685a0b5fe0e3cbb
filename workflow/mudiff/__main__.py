"""Command-line entry point of every pipeline stage: `python -m mudiff STAGE --job JSON`, and of the
audit of a finished study: `python -m mudiff audit results/<study>` (mudiff.audit).

Stages are imported lazily, so a job loads (and depends on) its own stage's code only.

A job dies with whoever started it (`die_with_parent`): killing Snakemake, or the shell wrapper
Snakemake runs the job in, sends the job SIGTERM, which it records as a KILLED run and which leaves
no outputs (they are written atomically at the end), instead of an orphan that goes on writing them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import threading
import time

STAGES = {
    "init": "mudiff.tracking",
    "prepare_data": "mudiff.stages.prepare_data",
    "track_data": "mudiff.stages.track_data",
    "train_target": "mudiff.stages.train_target",
    "train_bank": "mudiff.stages.train_bank",
    "merge_bank": "mudiff.stages.merge_bank",
    "scores_target": "mudiff.stages.scores_target",
    "scores_bank": "mudiff.stages.scores_bank",
    "scores": "mudiff.stages.scores",
    "proxies": "mudiff.stages.proxies",
    "forget_set": "mudiff.stages.forget_set",
    "unlearn": "mudiff.stages.unlearn",
    "evaluate": "mudiff.stages.evaluate",
    "analysis": "mudiff.stages.analysis",
    "report": "mudiff.stages.report",
}

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
SHELLS = frozenset(
    {"bash", "sh", "dash", "zsh", "ksh"}
)  # a job's wrapper: Snakemake runs `bash -c "... python -m mudiff ..."`
WATCH_SECONDS = 0.5

# The parent as early as this process can see it: one that dies before `die_with_parent` is noticed.
PARENT_AT_START = os.getppid()


def _stat(pid: int) -> tuple[str, int] | None:
    """(comm, parent pid) of a live process from /proc, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read().decode(errors="replace")
    except OSError:
        return None
    comm, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
    return (comm, int(rest[1])) if rest[0] not in ("Z", "X") else None


def _adopted(pid: int, parent_at_start: int) -> bool:
    """Whether process `pid` lost the parent it started with: re-parented since, or (orphaned before
    anyone looked) adopted by a real init system, which never starts a pipeline job or its shell itself."""
    now = _stat(pid)
    if now is None:
        return False
    if now[1] != parent_at_start:
        return True
    if now[1] == 1:
        init = _stat(1)
        return init is not None and init[0] in ("systemd", "init")
    return False


def _watch_wrapper(wrapper: int, its_parent: int, sig: int) -> None:
    """Send `sig` to this process once the shell wrapper `wrapper` is orphaned (its parent, Snakemake,
    died): the kernel's death signal follows the wrapper only, and the wrapper outlives Snakemake.
    Where the wrapper itself dies, the death signal comes; nothing more is sent."""
    while _stat(wrapper) is not None and os.getppid() == wrapper:
        if _adopted(wrapper, its_parent):
            os.kill(os.getpid(), sig)
            return
        time.sleep(WATCH_SECONDS)


_armed = False


def death_signal(sig: int) -> bool:
    """Have the kernel send `sig` to this process when the thread that forked it dies (Linux: prctl
    PR_SET_PDEATHSIG); False, doing nothing, elsewhere than Linux or where prctl is unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(sig: int = signal.SIGTERM, parent_at_start: int | None = None) -> bool:
    """Have the kernel send `sig` to this process when its parent dies (Linux: prctl PR_SET_PDEATHSIG),
    and, where the parent is a shell wrapper (Snakemake's `bash -c`), when the wrapper's own parent
    dies. Sends `sig` at once where the parent (or the wrapper's parent) is already gone: it may die
    before this runs. Returns False, doing nothing, elsewhere than Linux or where prctl is unavailable.

    The kernel's death signal follows the parent *thread* that forked this process; Snakemake's and
    the shell's forking threads wait for the job, so this holds for jobs. Once per process.
    """
    global _armed
    if not sys.platform.startswith("linux"):
        return False
    if _armed:
        return True
    parent_at_start = PARENT_AT_START if parent_at_start is None else parent_at_start
    if not death_signal(sig):
        return False
    _armed = True
    if _adopted(
        os.getpid(), parent_at_start
    ):  # the parent died before prctl took effect: no signal will come
        os.kill(os.getpid(), sig)
        return True
    wrapper = os.getppid()
    stat = _stat(wrapper)
    if stat is not None and stat[0] in SHELLS:
        if stat[1] == 1 and _adopted(wrapper, 1):  # Snakemake died before the job started
            os.kill(os.getpid(), sig)
            return True
        threading.Thread(
            target=_watch_wrapper,
            args=(wrapper, stat[1], int(sig)),
            daemon=True,
            name="mudiff-die-with-parent",
        ).start()
    return True


def run_stage(argv: list[str]) -> None:
    """Run one stage job, `STAGE --job JSON --io JSON`, in this process."""
    parser = argparse.ArgumentParser(prog="python -m mudiff", description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=sorted(STAGES))
    parser.add_argument("--job", required=True, help="JSON: rule, study, wildcards, params")
    parser.add_argument("--io", default="{}", help="JSON: input and output paths by name")
    args = parser.parse_args(argv)
    module = importlib.import_module(STAGES[args.stage])
    module.run({"input": {}, "output": {}, **json.loads(args.job), **json.loads(args.io)})


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["audit"]:  # a command for people, not a stage (so by name: no job's code depends on it)
        sys.exit(importlib.import_module("mudiff.audit").main(argv[1:]))
    from mudiff import forkserver, jobclock

    started = jobclock.process_started()
    if started is not None:
        os.environ[jobclock.STARTED_ENV] = repr(started)
    die_with_parent()
    status = forkserver.submit(argv)  # a warm worker of this Snakemake run's fork server, if there is one
    if status is not None:
        sys.exit(status)
    run_stage(argv)


if __name__ == "__main__":
    main()
