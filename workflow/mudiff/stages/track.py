"""Stage `track`: version the prepared data with DVC (`dvc add`), so data.dvc records its digest."""

from __future__ import annotations

import subprocess
import sys

from mudiff.tracking import data_digest, job_run


def run(job: dict) -> None:
    root = job["params"]["root"]
    with job_run(job) as mlrun:
        subprocess.run([sys.executable, "-m", "dvc", "add", "--quiet", root], check=True)
        dig = data_digest(job["output"]["dvc"])
        mlrun.set_tags({"mudiff.data_digest": dig})
        print(f"dvc add {root}: md5 {dig}")
