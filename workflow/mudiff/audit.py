"""`python -m mudiff audit results/<study>`: check a finished study against MLflow and the files on disk.

For every file under the study's results folder, and for its prepared dataset:
- exactly one FINISHED run is behind it: the run its JSON object or table records
  (`mudiff.io.RUN_ID_KEY`), otherwise the last FINISHED run that lists the file in its
  `mudiff/outputs.json`; a run that is missing, deleted or not FINISHED is named;
- the file is the one that run wrote (its sha256 in the run's outputs.json), and no later run
  wrote another version of it;
- the run's copy in the artifact store, where the policy copied one, has that checksum too;
- the run is current: its source files (`mudiff/sources.json`) and data digest equal today's,
  and each input it read still comes from the run it read it from. A stale run is named with the
  reason. Another git commit with the same code is noted, and fails only with `--strict`.

It prints one table and exits non-zero when anything does not match.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mudiff.io import run_id_of
from mudiff.tracking import (
    INPUTS_ARTIFACT,
    OUTPUTS_ARTIFACT,
    SOURCES_ARTIFACT,
    _client,
    git_commit,
    run_commit,
    sha256,
    tracking_uri,
)


@dataclass
class Row:
    """One output file: the run behind it and what does not match (nothing, when it passes)."""

    path: str
    run_id: str | None = None
    rule: str = ""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class Artifacts:
    """A run's artifacts, read in place from a local store or downloaded once from a remote one."""

    def __init__(self, client: Any):
        self.client = client
        self.tmp = tempfile.TemporaryDirectory(prefix="mudiff-audit-")

    def path(self, run: Any, artifact: str) -> Path | None:
        uri = run.info.artifact_uri
        parsed = urlparse(uri)
        if parsed.scheme in ("", "file"):
            local = Path(unquote(parsed.path)) / artifact
            return local if local.is_file() else None
        try:
            dest = Path(self.tmp.name) / run.info.run_id
            dest.mkdir(exist_ok=True)
            return Path(self.client.download_artifacts(run.info.run_id, artifact, str(dest)))
        except Exception:  # MlflowException or an HTTP error: the artifact is not there
            return None

    def json(self, run: Any, artifact: str) -> Any:
        path = self.path(run, artifact)
        return json.loads(path.read_text()) if path else None


SNAKEMAKE_REPORT = (
    "snakemake-report"  # `snakemake --report results/<study>/snakemake-report.html`: Snakemake's, not a job's
)


def _files(folder: Path) -> list[Path]:
    """The study's output files: hidden files (`atomic_path`'s temporary ones among them) left out, and
    Snakemake's own report."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.stem != SNAKEMAKE_REPORT
    )


def _all_runs(client: Any, exp_ids: list[str]) -> list[Any]:
    from mlflow.entities import ViewType

    runs, token = [], None
    while True:
        page = client.search_runs(exp_ids, run_view_type=ViewType.ALL, max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def audit(results: str | Path, strict: bool = False) -> list[Row]:
    """Audit the study whose results are in `results` (its folder name is the study, and its MLflow
    experiment); paths are relative to the working directory, the pipeline's."""
    from mudiff.data.records import DataMismatch, dvc_entry, record_path, verify

    results = Path(results)
    if not results.is_dir():
        raise SystemExit(f"audit: {results} is not a results folder (run the study first)")
    study = results.name
    client = _client()
    exp = client.get_experiment_by_name(study)
    if exp is None:
        raise SystemExit(f"audit: no MLflow experiment '{study}' in {tracking_uri()}")
    runs = _all_runs(client, [exp.experiment_id])
    by_id = {r.info.run_id: r for r in runs}
    artifacts = Artifacts(client)
    finished = [r for r in runs if r.info.status == "FINISHED" and r.info.lifecycle_stage == "active"]
    manifests = {r.info.run_id: artifacts.json(r, OUTPUTS_ARTIFACT) or {} for r in finished}
    claims: dict[str, list[Any]] = {}  # path -> FINISHED runs that wrote it, last first
    for run in sorted(finished, key=lambda r: r.info.end_time or 0, reverse=True):
        for path in manifests[run.info.run_id]:
            claims.setdefault(path, []).append(run)

    rows: list[Row] = []
    behind: dict[str, Any] = {}  # run id -> run, for the runs behind some output
    for file in _files(results):
        path = file.as_posix()
        row = Row(path)
        rows.append(row)
        digest = sha256(file)
        named = run_id_of(file)
        wrote = claims.get(path, [])
        if named:
            run = by_id.get(named)
            if run is None:
                row.problems.append(f"its run {named} is not in the store")
                continue
            if run.info.lifecycle_stage != "active":
                row.problems.append(f"its run {named} was deleted")
                continue
            if run.info.status != "FINISHED":
                row.problems.append(f"its run {named} is {run.info.status}")
                continue
        elif wrote:
            run = next((r for r in wrote if manifests[r.info.run_id][path]["sha256"] == digest), wrote[0])
        else:
            row.problems.append("no FINISHED run wrote it (not a pipeline output, or its run was deleted)")
            continue
        row.run_id, row.rule = run.info.run_id, run.data.tags.get("mudiff.rule", "")
        behind[run.info.run_id] = run
        entry = manifests.get(run.info.run_id, {}).get(path)
        if entry is None:
            row.problems.append(f"run {run.info.run_id} does not list it among its outputs")
            continue
        if entry["sha256"] != digest:
            row.problems.append(
                f"changed since its run wrote it: sha256 {digest[:12]} on disk, {entry['sha256'][:12]} recorded"
            )
        later = [r for r in wrote if (r.info.end_time or 0) > (run.info.end_time or 0)]
        if later:
            row.problems.append(
                f"a later run ({later[0].info.run_id}, {later[0].info.run_name}) wrote it again: this file is older"
            )
        if entry.get("artifact"):
            copy = artifacts.path(run, entry["artifact"])
            if copy is None:
                row.problems.append(f"its artifact {entry['artifact']} is missing from the store")
            elif sha256(copy) != entry["sha256"]:
                row.problems.append(
                    f"the artifact store's copy ({entry['artifact']}) differs from what the run recorded"
                )
        else:
            row.notes.append("recorded by reference (not copied to the artifact store)")

    head = git_commit().removesuffix("-dirty")
    stale: dict[str, tuple[list[str], list[str]]] = {}
    for run_id, run in behind.items():
        problems, notes = [], []
        sources = artifacts.json(run, SOURCES_ARTIFACT)
        if sources is None:
            problems.append("its run recorded no source files (logged by an older mudiff?)")
        else:
            changed = [p for p, d in sorted(sources.items()) if not Path(p).is_file() or sha256(p) != d]
            if changed:
                problems.append(
                    f"stale: code changed since ({', '.join(changed[:4])}{' ...' if len(changed) > 4 else ''})"
                )
        data_path, data_digest = (
            run.data.tags.get("mudiff.data_path"),
            run.data.tags.get("mudiff.data_digest"),
        )
        if data_path:
            entry = dvc_entry(data_path)
            now = entry.get("md5") if entry else None
            if now != data_digest:
                problems.append(f"stale: its data {data_path} was {data_digest}, data.dvc now has {now}")
        for path, was in sorted((artifacts.json(run, INPUTS_ARTIFACT) or {}).items()):
            now = run_id_of(path) if Path(path).is_file() else None
            if now != was:
                problems.append(
                    f"stale: it read {path} from run {was}, which is now {'from run ' + now if now else 'gone'}"
                )
        commit = run_commit(run.data.tags)
        if "unknown" not in (head, commit) and commit != head:
            (problems if strict else notes).append(
                f"ran at commit {commit[:10]}, HEAD is {head[:10]}" + ("" if problems else " (same code)")
            )
        stale[run_id] = (problems, notes)
    for row in rows:
        if row.run_id in stale:
            row.problems += stale[row.run_id][0]
            row.notes += stale[row.run_id][1]

    records = {r.data.tags.get("mudiff.data_path") for r in behind.values()} - {None, ""}
    for folder in sorted(records):
        row = Row(f"{folder}/ (prepared data)")
        rows.append(row)
        try:
            record = verify(record_path(folder))
        except (DataMismatch, OSError, ValueError, KeyError) as err:
            row.problems.append(str(err))
            continue
        tracked = client.search_runs(
            [e.experiment_id for e in client.search_experiments()],
            filter_string=f"dataset.digest = '{record['md5']}' and attributes.status = 'FINISHED'",
        )
        tracked = [r for r in tracked if r.data.tags.get("mudiff.rule") == "track_data"]
        if not tracked:
            row.problems.append(f"no FINISHED track_data run logged its digest {record['md5']}")
        else:
            row.run_id, row.rule = tracked[0].info.run_id, "track_data"
            row.notes.append(f"DVC digest {record['md5']}, files match data.dvc")
    return rows


def table(rows: list[Row], verbose: bool = False) -> str:
    """The audit as a fixed-width table: every failing output, and the passing ones when `verbose`."""
    shown = [r for r in rows if verbose or not r.ok]
    lines = []
    if shown:
        width = max(len(r.path) for r in shown)
        lines.append(f"{'output':<{width}}  {'run':<32}  {'rule':<14}  verdict")
        for r in shown:
            verdict = (
                "; ".join(r.problems)
                if r.problems
                else "ok" + (f" ({'; '.join(r.notes)})" if r.notes else "")
            )
            lines.append(f"{r.path:<{width}}  {r.run_id or '-':<32}  {r.rule:<14}  {verdict}")
    bad = sum(not r.ok for r in rows)
    runs = len({r.run_id for r in rows if r.run_id})
    lines.append(
        f"audit: {len(rows)} outputs, {runs} runs behind them: "
        + ("all match" if not bad else f"{bad} do not match")
    )
    return "\n".join(lines)


def finished_summary(results: str | Path) -> str:
    """What a person wants at the end of a successful `snakemake`: the headline ToW table, the report,
    the audit's verdict and the command that opens the study in MLflow (the Snakefile's `onsuccess`)."""
    import pandas as pd

    results = Path(results)
    lines = [f"mudiff: study '{results.name}' done."]
    summary = results / "summary.parquet"
    if summary.is_file():
        tow = pd.read_parquet(summary).pivot(index="method", columns="forget_set", values="ToW")
        lines += [
            "ToW (1 = as retrain; mean over seeds), method x forget set:",
            tow.to_string(float_format="%.3f", na_rep=""),
        ]
    report = results / "report.md"
    lines.append(
        f"Report: {report} ({results / 'report.html'})"
        if report.is_file()
        else f"Report: not written yet ({report}): this run stopped short of it"
    )
    try:
        rows = audit(results)
        bad = [r for r in rows if not r.ok]
        lines.append(
            f"Audit: all {len(rows)} outputs match their MLflow runs"
            if not bad
            else f"Audit: {len(bad)} of {len(rows)} outputs do not match their runs, first {bad[0].path}: "
            f"{bad[0].problems[0]}; `python -m mudiff audit {results}` lists them"
        )
    except (Exception, SystemExit) as err:  # the summary never fails a finished run
        lines.append(f"Audit: could not run ({type(err).__name__}: {err})")
    uri = tracking_uri()
    ui = (
        f"mlflow ui --backend-store-uri {uri}" if uri.startswith(("sqlite:", "file:", "/")) else f"open {uri}"
    )
    lines.append(f"MLflow: {ui}  (experiment '{results.name}')")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mudiff audit", description=__doc__.splitlines()[0])
    parser.add_argument("results", help="the study's results folder, results/<study>")
    parser.add_argument(
        "--strict", action="store_true", help="a run at another commit fails, even with the same code"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="list every output, not only those that fail"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    rows = audit(args.results, args.strict)
    print(table(rows, args.verbose))
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
