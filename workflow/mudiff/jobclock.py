"""When a job started and how: the fixed cost a job pays before its work, for its MLflow run.

A leaf module (no torch, no MLflow), read by `mudiff.__main__` when a job's process starts, by the
fork server's workers and by `mudiff.tracking.JobRun.log_timing`."""

from __future__ import annotations

import os
import time

STARTED_ENV = "MUDIFF_JOB_STARTED"  # when the job's process started (epoch seconds), for its timing line
LAUNCH_ENV = "MUDIFF_LAUNCH"  # set in a worker: how the job started, for its run's tags


def process_started(pid: int | str = "self") -> float | None:
    """When process `pid` started, in epoch seconds to the clock tick (Linux /proc), or None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            ticks = int(fh.read().decode(errors="replace").rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))


def job_started() -> float | None:
    """When the running job's process started (set by mudiff.__main__), or None outside a job."""
    value = os.environ.get(STARTED_ENV)
    return float(value) if value else None


def launch() -> str:
    """How the running job started: in a fork-server worker, or in its own interpreter."""
    return os.environ.get(LAUNCH_ENV) or "own interpreter"
