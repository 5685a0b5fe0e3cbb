"""Stage `analysis`: instance-level difficulty of every unlearning run and what it says.

Reads the scores table, the bank, every run's per-epoch trace and every evaluation; writes the
per-sample difficulty of all runs stacked (joined with the scores), the agreement between
methods, the factors of difficulty and their verdicts, the hard-sample predictor, the verdict on
every SPEC finding, and their figures. CPU only; seconds on digits (bootstrap and
cross-validation dominate).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mudiff.analysis import findings as findings_mod
from mudiff.analysis.agreement import agreement_table
from mudiff.analysis.difficulty import difficulty_table
from mudiff.analysis.factors import factor_correlations, factor_names, factor_verdicts
from mudiff.analysis.findings import all_findings
from mudiff.analysis.predictor import SHARED_SOURCE_REASON, feature_sets, predict_hard
from mudiff.analysis.proxies import score_cost
from mudiff.io import read_arrays, read_json, read_table, write_json, write_table
from mudiff.methods.name import MethodName
from mudiff.options import build
from mudiff.report import analysis_figures as figures
from mudiff.sections import AnalysisConfig
from mudiff.tracking import job_run

# What `analyse` reads: the study config's `analysis` section (defaults and limits there).
AnalysisParams = AnalysisConfig


@dataclass
class Params:
    """The job's params (rules/analysis.smk): the study config's `analysis` section."""

    analysis: AnalysisConfig


def run_of(trace_path: str | Path) -> tuple[str, str]:
    """(method, forget_set) of `.../unlearn/<method>/<forget_set>/trace.parquet`."""
    path = Path(trace_path)
    return path.parent.parent.name, path.parent.name


def stacked_difficulty(traces: list[str], bank: dict, scores: pd.DataFrame) -> pd.DataFrame:
    """Every run's difficulty table, with method and forget_set, joined with the scores by id."""
    tables = []
    for path in traces:
        method, forget_set = run_of(path)
        table = difficulty_table(read_table(path), bank["phi_train"], bank["mask"], bank["id_train"])
        table.insert(0, "forget_set", forget_set)
        table.insert(0, "method", method)
        tables.append(table)
    stacked = pd.concat(tables, ignore_index=True)
    return stacked.merge(scores, on="id", how="left", validate="many_to_one")


def confidence_cost(timings: dict | None) -> dict | None:
    """Confidence's marginal compute against the bank's training (scores/timings.json): seconds,
    and a ratio only where confidence's own time is measurable (`mudiff.analysis.proxies.score_cost`)."""
    if not timings:
        return None
    return score_cost("confidence", timings.get("seconds", {}).get("confidence"), timings.get("bank_seconds"))


def analyse(
    scores: pd.DataFrame,
    bank: dict,
    traces: list[str],
    evaluation: pd.DataFrame,
    out: dict,
    params: AnalysisParams = AnalysisParams(),
    timings: dict | None = None,
    threads: int = 1,
    entanglement_scores: dict[str, float] | None = None,
    populations: dict[str, list] | None = None,
) -> dict:
    """Compute and write every output of the stage; return the headline numbers for MLflow."""
    difficulty = stacked_difficulty(traces, bank, scores)
    # Inert runs (F unchanged: `mudiff.metrics.movement`) are kept in the table, marked, and left out of
    # everything that compares methods: agreement, factors, predictor and the findings.
    inert = set(zip(*[findings_mod.inert_runs(evaluation)[c] for c in ("method", "forget_set")]))
    difficulty.insert(
        2, "inert", [run in inert for run in zip(difficulty["method"], difficulty["forget_set"])]
    )
    moving = difficulty[~difficulty["inert"]]
    # Across methods, each algorithm counts once: a variant `<method>@<label>` is the same algorithm
    # with other hyperparameters, and would make methods look more alike than they are.
    variants = sorted(m for m in difficulty["method"].unique() if MethodName.read(m).is_variant)
    exclude = [*params.exclude, *variants]
    agreement = agreement_table(moving, exclude, params.n_boot, params.seed)
    correlations = factor_correlations(moving, scores, exclude)
    verdicts = factor_verdicts(correlations)
    features = factor_names(scores)
    predictor = predict_hard(
        moving,
        scores,
        features,
        params.hard_share,
        exclude,
        params.folds,
        params.seed,
        params.n_boot,
        threads,
    )
    findings = all_findings(
        evaluation,
        scores,
        agreement,
        verdicts,
        confidence_cost(timings),
        params.confidence_threshold,
        params.min_rho,
        entanglement_scores,
        populations,
    )
    write_table(difficulty, out["difficulty"])
    write_table(agreement, out["agreement"])
    write_table(correlations, out["factors"])
    write_table(verdicts, out["factor_verdicts"])
    write_json(
        {
            "params": asdict(params),
            "features": features,
            "feature_sets": feature_sets(features),
            "dropped_why": SHARED_SOURCE_REASON,
            "methods": predictor,
        },
        out["predictor"],
    )
    write_json({"findings": findings}, out["findings"])
    fig_dir = Path(out["figures"])
    fig_dir.mkdir(parents=True, exist_ok=True)
    figures.agreement_heatmaps(agreement, fig_dir / "agreement.png")
    figures.factor_heatmap(correlations, verdicts, fig_dir / "factors.png")
    figures.roc_curves(predictor, fig_dir / "roc.png")
    figures.difficulty_distributions(difficulty, fig_dir / "difficulty.png", params.exclude)
    metrics = {
        f"kendall_w.{r.forget_set}": r.value for r in agreement[agreement["stat"] == "kendall_w"].itertuples()
    }
    metrics |= {
        f"{prefix}.{kind}.{m}": r[fs][kind]["auc"]
        for fs, prefix in (("all_features", "auc"), ("without_bank_features", "auc_no_bank"))
        for m, r in predictor.items()
        if "skipped" not in r and "skipped" not in r[fs]
        for kind in ("logistic_regression", "gradient_boosting")
    }
    metrics["algorithm_independent_factors"] = int(verdicts["algorithm_independent"].sum())
    metrics["findings_reproduced"] = sum(f["reproduced"] is True for f in findings)
    metrics["findings_not_reproduced"] = sum(f["reproduced"] is False for f in findings)
    metrics["censored_share"] = float(difficulty["censored"].mean())
    metrics["inert_runs"] = int(findings_mod.inert_runs(evaluation).shape[0])
    return {k: v for k, v in metrics.items() if v is not None and np.isfinite(v)}


def run(job: dict) -> None:
    p, inp, out = build(Params, job["params"]), job["input"], job["output"]
    with job_run(job) as mlrun:
        evaluation = pd.DataFrame([read_json(f) for f in inp["evaluations"]])
        timings = read_json(inp["timings"]) if inp.get("timings") else None
        manifests = [read_json(f) for f in inp.get("manifests", [])]
        es = {
            m["name"]: m["entanglement_score"] for m in manifests if m.get("entanglement_score") is not None
        }
        populations = {m["name"]: m.get("same_population_as") or [] for m in manifests}
        metrics = analyse(
            read_table(inp["scores"]),
            read_arrays(inp["bank"]),
            list(inp["traces"]),
            evaluation,
            out,
            p.analysis,
            timings,
            int(os.environ.get("OMP_NUM_THREADS", "1")),
            es,
            populations,
        )
        mlrun.set_tags(
            {
                "mudiff.inert_runs": ", ".join(
                    sorted(
                        f"{r.method}/{r.forget_set}" for r in findings_mod.inert_runs(evaluation).itertuples()
                    )
                )
                or "none"
            }
        )
        mlrun.log_metrics(metrics)
        for f in read_json(out["findings"])["findings"]:
            print(f"- {f['text']}")
