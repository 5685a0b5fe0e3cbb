"""Scale-out on Slurm through Snakemake's executor plugin: the profile resolves, every job's
resources are valid for the plugin, and a tiny study runs for real on a single-node Slurm
(slurmctld + slurmd + munge from Debian's slurm-wlm) that the test starts and stops.

The real run needs root and Debian's `slurm-wlm` and `munge` (CI installs them); without them
it is skipped, saying why. A machine with a Slurm config of its own is never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from studyrepo import REPO, TINY, copy_repo, runs, snakemake, write_config

pytestmark = pytest.mark.e2e

SLURM_CONF = Path("/etc/slurm/slurm.conf")
MARK = "# written by mudiff's tests/test_slurm.py"
PLUGIN_ARGS = [
    "--slurm-no-account",
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "2",
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, str]:
    pytest.importorskip("snakemake_executor_plugin_slurm")
    repo = copy_repo(tmp_path_factory.mktemp("slurm") / "repo")
    return repo, write_config(repo, TINY)


def _dry_run_resources(output: str) -> dict[str, list[dict[str, str]]]:
    """{rule: [resources of each job]} from a dry run's job listing."""
    jobs: dict[str, list[dict[str, str]]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        head = re.match(r"(?:local)?rule (\w+):", block.strip())
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        if head and res and head.group(1) != "all":  # `all` is a local target, not a job
            pairs = dict(kv.split("=", 1) for kv in res.group(1).split(", "))
            jobs.setdefault(head.group(1), []).append(pairs)
    return jobs


def test_slurm_profile_resolves_and_every_job_asks_for_valid_resources(repo):
    from snakemake_executor_plugin_slurm.partitions import parse_gpu_requirements

    path, config = repo
    out = snakemake(
        path, "-n", "--forceall", "--workflow-profile", "profiles/slurm", "--configfile", config, *PLUGIN_ARGS
    ).stdout
    jobs = _dry_run_resources(out)
    assert {"train_bank", "train_target", "unlearn", "evaluate", "analysis", "report"} <= set(jobs), sorted(
        jobs
    )
    for rule, resources in jobs.items():
        for r in resources:
            assert int(r["mem_mb"]) > 0 and int(r["runtime"]) > 0, (rule, r)

            class Job:  # what the plugin reads of a job to build --gpus
                pass

            Job.resources = {"gpu": int(r.get("gpu", 0)), "gres": ""}
            assert parse_gpu_requirements(Job) == (0, None), (rule, r)  # device: cpu asks for no GPU


def test_gpu_study_asks_for_one_gpu_in_model_stages_only(repo):
    path, config = repo
    gpu_config = write_config(path, {**TINY, "device": "auto"}, "tiny_gpu.yaml")
    jobs = _dry_run_resources(snakemake(path, "-n", "--forceall", "--configfile", gpu_config).stdout)
    for rule, resources in jobs.items():
        wanted = 1 if rule in ("train_target", "train_bank", "scores_target", "scores_bank", "unlearn") else 0
        assert {int(r["gpu"]) for r in resources} == {wanted}, rule


# ------------------------------------------------------------------------- a real single node


def _start(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    missing = [b for b in ("slurmctld", "slurmd", "munged", "sbatch", "squeue") if shutil.which(b) is None]
    if missing:
        pytest.skip(f"Slurm is not installed here (missing {missing}; apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        pytest.skip("starting slurmctld and slurmd needs root")
    if SLURM_CONF.exists() and MARK not in SLURM_CONF.read_text():
        pytest.skip(f"{SLURM_CONF} belongs to a real Slurm installation: not touching it")
    root = tmp_path_factory.mktemp("slurmd")
    # A private munged on its own socket and key: a system one may be absent, stopped, or have left
    # a stale socket behind (apt's post-install starts it in some images, and it does not survive).
    munge = Path(tempfile.mkdtemp(prefix="mudiff-munge-"))
    munge.chmod(0o755)  # munged refuses a socket whose folder not everyone may traverse
    (munge / "key").write_bytes(os.urandom(128))
    (munge / "key").chmod(0o600)
    _start(
        [
            "munged",
            f"--socket={munge}/socket",
            f"--key-file={munge}/key",
            f"--pid-file={munge}/pid",
            f"--log-file={munge}/log",
            f"--seed-file={munge}/seed",
        ]
    )
    try:
        host = socket.gethostname()
        mem_mb = int(
            int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) / 1024 * 0.8
        )
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SLURM_CONF.write_text(
            "\n".join(
                [
                    MARK,
                    "ClusterName=mudiff",
                    f"SlurmctldHost={host}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={munge}/socket",
                    f"StateSaveLocation={root}/state",
                    f"SlurmdSpoolDir={root}/spool",
                    f"SlurmctldPidFile={root}/slurmctld.pid",
                    f"SlurmdPidFile={root}/slurmd.pid",
                    f"SlurmctldLogFile={root}/slurmctld.log",
                    f"SlurmdLogFile={root}/slurmd.log",
                    "SlurmctldPort=16817",
                    "SlurmdPort=16818",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "MpiDefault=none",
                    "ReturnToService=2",
                    "MinJobAge=300",  # keeps finished jobs visible to squeue, the plugin's status command here
                    f"NodeName={host} CPUs={os.cpu_count()} RealMemory={mem_mb} State=UNKNOWN",
                    f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        for sub in ("state", "spool"):
            (root / sub).mkdir()
        _start(["slurmctld"])
        _start(["slurmd"])
        deadline = time.monotonic() + 60
        while (
            "idle" not in subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True).stdout
        ):
            if time.monotonic() > deadline:
                logs = [root / "slurmctld.log", root / "slurmd.log", munge / "log"]
                pytest.fail(
                    "Slurm did not come up:\n" + "\n".join(f.read_text()[-2000:] for f in logs if f.exists())
                )
            time.sleep(1)
        yield root
    finally:  # also when Slurm did not come up: nothing is left running
        subprocess.run(["scancel", "--user", "root"], capture_output=True)
        for pidfile in ("slurmd.pid", "slurmctld.pid"):
            pid = root / pidfile
            if pid.exists():
                subprocess.run(["kill", pid.read_text().strip()], capture_output=True)
        subprocess.run(["munged", "--stop", f"--socket={munge}/socket"], capture_output=True)
        shutil.rmtree(munge, ignore_errors=True)
        SLURM_CONF.unlink(missing_ok=True)


def test_tiny_study_runs_through_the_slurm_executor(slurm, repo):
    path, config = repo
    # keep the logs of successful jobs (the plugin deletes them by default): each job's sbatch log is evidence
    proc = snakemake(
        path,
        "--workflow-profile",
        "profiles/slurm",
        "--configfile",
        config,
        *PLUGIN_ARGS,
        "--slurm-keep-successful-logs",
        check=False,
    )
    assert proc.returncode == 0, (
        proc.stdout[-2000:],
        proc.stderr[-5000:],
        (slurm / "slurmctld.log").read_text()[-2000:],
    )
    assert "has been submitted with SLURM jobid" in proc.stdout + proc.stderr
    assert (path / "results" / "tiny" / "report.md").is_file()
    assert len(list((path / ".snakemake" / "slurm_logs").rglob("*.log"))) >= 10  # one per submitted job
    statuses = [r.info.status for r in runs(path, "tiny")]
    assert statuses and set(statuses) == {"FINISHED"}
    # every job (each a Snakemake of its own on the node) carries the submitting Snakemake's invocation
    assert len({r.data.tags["mudiff.invocation"] for r in runs(path, "tiny")}) == 1
    assert "Audit: all " in proc.stderr  # the onsuccess summary, of the submitting Snakemake
    assert "Nothing to be done" in snakemake(path, "-n", "--configfile", config).stdout


def test_local_profile_limits_gpu_jobs(repo):
    """profiles/local: one GPU, so model jobs ask for it and the scheduler runs them one at a time."""
    path, config = repo
    gpu_config = write_config(path, {**TINY, "device": "auto"}, "tiny_gpu.yaml")
    out = snakemake(
        path, "-n", "--forceall", "--workflow-profile", "profiles/local", "--configfile", gpu_config
    ).stdout
    jobs = _dry_run_resources(out)
    assert {int(r["gpu"]) for r in jobs["train_bank"]} == {1}
    profile = (REPO / "profiles" / "local" / "config.yaml").read_text()
    assert "gpu=1" in profile
