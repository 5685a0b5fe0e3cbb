"""Stage `track_data`: version one prepared dataset with DVC (its own entry of data.dvc) and write its record.

The arrays must still be the ones `prepare_data` wrote (the md5 in the manifest): tracking a file that
changed afterwards would bless it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mudiff.data.checksums import digest
from mudiff.data.records import DataMismatch, track
from mudiff.io import read_json
from mudiff.options import build
from mudiff.tracking import job_run


@dataclass
class Params:
    dvc_file: str  # the DVC file that versions every dataset (data.dvc)


def run(job: dict) -> None:
    p, inp, out = build(Params, job["params"]), job["input"], job["output"]
    folder = Path(inp["arrays"]).parent
    with job_run(job) as mlrun:
        want, got = read_json(inp["manifest"])["arrays_md5"], digest(inp["arrays"])
        if want != got:
            raise DataMismatch(
                f"{inp['arrays']}: md5 {got}, but prepare_data wrote {want} ({inp['manifest']}): the file changed "
                f"after it was prepared; rerun `snakemake --forcerun prepare_data`"
            )
        record = track(folder, p.dvc_file)
        mlrun.log_dataset(record, "tracked")
        print(f"dvc add {folder}: md5 {record['md5']} ({record['dvc_file']}); record {out['record']}")
