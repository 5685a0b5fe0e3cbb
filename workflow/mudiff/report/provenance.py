"""The report's provenance section: for each headline table, the MLflow runs its numbers came from."""

from __future__ import annotations

import re
from pathlib import Path

SEED = re.compile(r"seed_(\d+)")

# Each headline table of the report, and the inputs of the report job its numbers come from.
TABLES = [
    (
        "Replicates (target and bank accuracy, headline findings, predictor AUC)",
        ("target_metrics", "bank_summary", "findings", "predictor"),
    ),
    ("Forget sets", ("manifests",)),
    ("Proxies of memorization", ("proxies",)),
    ("Findings and the analysis of instance-level difficulty", ("findings", "agreement", "factor_verdicts")),
]


def run_link(run_id: str, ui: str, experiment_id: str) -> str:
    """A run as a short id linking to it in the MLflow UI."""
    return f"[{run_id[:8]}]({ui.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id})"


def _seed(path: str) -> str:
    m = SEED.search(path)
    return m.group(1) if m else "-"


def _paths(inputs: dict, name: str) -> list[str]:
    value = inputs.get(name) or []
    return [value] if isinstance(value, str) else list(value)


def section(inputs: dict, run_of: dict[str, str], ui: str, experiment_id: str, own: dict) -> list[str]:
    """Markdown lines: this report's run, commit and data, then the runs behind each headline table.

    `inputs`: the report job's inputs by name; `run_of`: input path -> the id of the run that wrote it
    (`mudiff.tracking.input_runs`); `own`: this run's id, commit and data digest."""
    link = lambda r: run_link(r, ui, experiment_id) if r else "(none recorded)"  # noqa: E731
    lines = [
        "## Provenance",
        "",
        f"Every number above comes from a run in MLflow experiment `{own['study']}` (id {experiment_id}). This report "
        f"is run {link(own['run_id'])}, at commit `{own['commit']}`, on data with DVC digest `{own['data_digest']}`. "
        f"The links open the runs in the MLflow UI at {ui} (`mlflow ui --backend-store-uri <store>` serves it); "
        f"`python -m mudiff audit results/{own['study']}` checks every output against its run.",
        "",
        "Unlearning results (and the cost, RUM and RSU tables): each cell's evaluate run, per seed (that run "
        "names the unlearn run it read, under its `mudiff/inputs.json`).",
        "",
    ]
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for path in _paths(inputs, "evaluations"):
        p = Path(path)
        rows.setdefault((p.parent.name, p.stem), {})[_seed(path)] = link(run_of.get(path))
    seeds = sorted({s for cells in rows.values() for s in cells}, key=lambda s: (len(s), s))
    lines += [
        "| method | forget set | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "|---|---|" + "---|" * len(seeds),
    ]
    lines += [
        f"| {m} | {fs} | " + " | ".join(cells.get(s, "") for s in seeds) + " |"
        for (m, fs), cells in rows.items()
    ]
    lines += ["", "The other tables:", "", "| table | runs |", "|---|---|"]
    for title, names in TABLES:
        runs = []
        for name in names:
            for path in _paths(inputs, name):
                r = run_of.get(path)
                label = Path(path).stem if name == "manifests" else name
                runs.append(f"{label} (seed {_seed(path)}): {link(r)}")
        lines.append(f"| {title} | " + "<br>".join(dict.fromkeys(runs)) + " |")
    return lines + [""]
