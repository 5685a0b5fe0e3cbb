"""Stage `report`: the evaluation table, figures and `report.md` of a study."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mudiff.analysis.findings import CONFIDENCE, INDEPENDENCE, across_seeds, with_levels
from mudiff.analysis.intervals import format_ci, mean_ci
from mudiff.analysis.proxies import METRICS as PROXY_METRICS
from mudiff.analysis.seeds import evaluation_summary, seed_of, summarise
from mudiff.deviations import DEVIATIONS
from mudiff.io import RUN_ID_KEY, atomic_path, read_ids, read_json, read_table, write_json, write_table
from mudiff.methods.name import MethodName
from mudiff.options import build, plain
from mudiff.report import figures, instance_level, provenance, samples
from mudiff.report.html import render_html
from mudiff.report.markdown import render
from mudiff.sections import AnalysisConfig
from mudiff.tracking import input_runs, job_run, run_commit


@dataclass
class StudyParams:
    """The study config's keys the report shows."""

    name: str
    seeds: list[int]
    model: str


@dataclass
class Params:
    """The job's params (rules/report.smk): the study, its `analysis` section, the inert threshold
    (`evaluate.inert_flip_share`), the MLflow UI's address (`tracking.ui`) and each RSU method's order."""

    study: StudyParams
    analysis: AnalysisConfig
    tracking_ui: str
    inert_flip_share: float | None = None
    rsu_orders: dict[str, str] = field(default_factory=dict)


def forget_set_table(
    manifests: list[str], id_tables: list[str], tables: dict[int, pd.DataFrame]
) -> pd.DataFrame:
    """Per forget set: how it was built, its size, and over the seeds the mean memorization of its
    samples and its entanglement score (mean and interval)."""
    memorization = {
        seed: t.set_index("id")["memorization"] for seed, t in tables.items() if "memorization" in t.columns
    }
    rows = []
    for manifest_path, ids_path in zip(manifests, id_tables):
        manifest, seed = read_json(manifest_path), seed_of(manifest_path)
        mem = memorization.get(seed)
        rows.append(
            {
                **{k: manifest.get(k) for k in ("name", "rule", "score", "size", "entanglement_score")},
                "seed": seed,
                "mean_memorization": float(mem.loc[read_ids(ids_path)].mean()) if mem is not None else np.nan,
                "same_population_as": ", ".join(manifest.get("same_population_as") or []),
                "mid_cut": manifest.get("mid_cut") or "",
            }
        )
    table = pd.DataFrame(rows)
    out = summarise(table, ["name", "rule", "score", "size"], ("mean_memorization", "entanglement_score"))
    for column in ("same_population_as", "mid_cut"):  # text; seeds that differ are joined by "; "
        out[column] = out["name"].map(
            table.groupby("name")[column].agg(lambda v: "; ".join(dict.fromkeys(x for x in v if x)))
        )
    return out


def replicate_table(
    seeds: list[int],
    targets: list[dict],
    banks: list[dict],
    findings: dict[int, list[dict]],
    predictors: list[dict],
) -> pd.DataFrame:
    """One row per seed of the headline numbers of each replicate, and their mean and 95% interval."""
    rows = []
    for seed, target, bank, predictor in zip(seeds, targets, banks, predictors):
        own = {f["finding"]: f for f in findings[seed]}
        aucs, aucs_no_bank = (
            [
                r[fs]["logistic_regression"]["auc"]
                for r in predictor["methods"].values()
                if "skipped" not in r and "skipped" not in r[fs]
            ]
            for fs in ("all_features", "without_bank_features")
        )
        rows.append(
            {
                "seed": str(seed),
                "target test acc": target["test_acc"],
                "bank OUT acc": bank["out_acc_mean"],
                "Spearman(confidence, memorization)": own.get(CONFIDENCE, {})
                .get("numbers", {})
                .get("spearman", np.nan),
                "median mean pairwise rho": own.get(INDEPENDENCE, {})
                .get("numbers", {})
                .get("median_mean_spearman", np.nan),
                "predictor AUC (LR, mean over methods)": float(np.mean(aucs)) if aucs else np.nan,
                "predictor AUC without bank features (LR)": float(np.mean(aucs_no_bank))
                if aucs_no_bank
                else np.nan,
            }
        )
    table = pd.DataFrame(rows)
    shown = table.copy()
    for column in table.columns[1:]:
        shown[column] = [f"{v:.3f}" if np.isfinite(v) else "" for v in table[column]]
    if len(rows) > 1:
        summary = {c: format_ci(mean_ci(table[c])) for c in table.columns[1:]}
        shown = pd.concat([shown, pd.DataFrame([{"seed": "mean [95% CI]", **summary}])], ignore_index=True)
    return shown


def run(job: dict) -> None:
    p, inp, out = build(Params, job["params"]), job["input"], job["output"]
    seeds = p.study.seeds
    with job_run(job) as mlrun:
        mlrun.set_tags({"mudiff.deviations": " | ".join(DEVIATIONS)})
        # each row keeps the id of the evaluate run it came from
        evaluation = with_levels(
            pd.DataFrame([read_json(f) for f in inp["evaluations"]]).rename(
                columns={RUN_ID_KEY: "evaluate_run_id"}
            )
        )
        summary = evaluation_summary(evaluation)
        first = seeds[0]  # its per-sample detail (scores, analysis) is shown; every seed's is under seed_<s>/
        score_tables = {seed_of(f): read_table(f) for f in inp["scores"]}
        scores = score_tables[seed_of(inp["scores"][0])]
        forget_sets = forget_set_table(inp["manifests"], inp["forget_sets"], score_tables)
        proxies = summarise(
            pd.concat([read_table(f).assign(seed=seed_of(f)) for f in inp["proxies"]]),
            ["score", "direction"],
            PROXY_METRICS,
        )
        per_seed_findings = {seed_of(f): read_json(f)["findings"] for f in inp["findings"]}
        es = forget_sets.dropna(subset=["entanglement_score"])
        es = dict(zip(es["name"], es["entanglement_score"])) if len(es) else None
        populations: dict[str, list] = {}
        for path in inp["manifests"]:  # a level is one population with another in any seed: not testable
            m = read_json(path)
            populations.setdefault(m["name"], [])
            populations[m["name"]] += [
                n for n in (m.get("same_population_as") or []) if n not in populations[m["name"]]
            ]
        findings = across_seeds(
            evaluation,
            per_seed_findings,
            es,
            p.analysis.confidence_threshold,
            p.analysis.min_rho,
            populations,
            p.rsu_orders,
        )
        tuning = pd.read_csv(inp["tuning"]) if inp.get("tuning") else None
        targets = [read_json(f) for f in inp["target_metrics"]]
        banks = [read_json(f) for f in inp["bank_summary"]]
        predictors = [read_json(f) for f in inp["predictor"]]
        replicates = replicate_table(seeds, targets, banks, per_seed_findings, predictors)
        report_dir = Path(out["report"]).parent
        fig_dir = Path(out["figures"])
        fig_dir.mkdir(parents=True, exist_ok=True)
        figs = {
            "tow_by_memorization": figures.tow_by_level(
                evaluation, "memorization", fig_dir / "tow_by_memorization.png"
            ),
            "proxies_vs_memorization": figures.proxies_vs_memorization(
                scores,
                [c for c in scores.columns if c not in ("id", "label", "memorization")],
                fig_dir / "proxies_vs_memorization.png",
            ),
        }
        if (evaluation["score"] == "entanglement").any():
            figs["tow_by_entanglement"] = figures.tow_by_level(
                evaluation, "entanglement", fig_dir / "tow_by_entanglement.png"
            )
        rum = figures.rum_comparison(evaluation, fig_dir / "rum_comparison.png")
        if rum is not None:
            figs["rum_comparison"] = rum
        if any(MethodName.read(m).meta == "rsu" for m in evaluation["method"].unique()):
            figs["rsu_by_order"] = figures.rsu_by_order(
                evaluation, p.rsu_orders, fig_dir / "rsu_by_order.png"
            )
        figs["proxies"] = Path(inp["proxies_figure"][0])
        if inp.get("difficulty") and inp.get("arrays"):  # the forget samples themselves, hardest and easiest
            from mudiff.data import load_prepared

            difficulty = pd.concat(
                [read_table(f).assign(seed=seed_of(f)) for f in inp["difficulty"]], ignore_index=True
            )
            figs |= samples.draw(
                difficulty,
                load_prepared(inp["arrays"]),
                read_json(inp["data_manifest"])["dataset"],
                fig_dir,
                p.analysis.exclude,
                samples.inert_runs(evaluation),
            )
        analysis_dir = Path(inp["analysis_figures"][0])
        analysis_figs = {
            k: str((analysis_dir / f"{k}.png").relative_to(report_dir))
            for k in ("agreement", "factors", "roc", "difficulty")
        }
        analysis_md = instance_level.render(
            read_table(inp["agreement"][0]),
            read_table(inp["factor_verdicts"][0]),
            predictors[0],
            findings,
            analysis_figs,
            seed=first,
            n_seeds=len(seeds),
        )
        rel = {k: str(Path(v).relative_to(report_dir)) for k, v in figs.items()}
        own = mlrun.client.get_run(mlrun.run_id)
        provenance_md = provenance.section(
            inp,
            input_runs(inp),
            p.tracking_ui,
            own.info.experiment_id,
            {
                "run_id": mlrun.run_id,
                "study": p.study.name,
                "data_digest": own.data.tags.get("mudiff.data_digest", ""),
                "commit": run_commit(own.data.tags),
            },
        )
        text = render(
            plain(p.study),
            read_json(inp["data_manifest"]),
            targets[0],
            banks[0],
            replicates,
            forget_sets,
            evaluation,
            summary,
            rel,
            DEVIATIONS,
            proxies,
            analysis_md,
            p.rsu_orders,
            tuning,
            p.inert_flip_share,
            provenance_md,
        )
        write_table(evaluation, out["evaluation"])
        write_table(summary, out["summary"])
        write_json({"findings": findings}, out["findings"])
        with atomic_path(out["report"]) as tmp:
            tmp.write_text(text)
        with atomic_path(out["html"]) as tmp:
            tmp.write_text(render_html(text, report_dir, f"mudiff report: {p.study.name}"))
        mlrun.log_metrics({f"ToW.{r.method}.{r.forget_set}": r.ToW for r in summary.itertuples()})
        mlrun.log_metrics(
            {
                "findings_reproduced": sum(f["reproduced"] is True for f in findings),
                "findings_not_reproduced": sum(f["reproduced"] is False for f in findings),
                "findings_not_testable": sum(f["reproduced"] is None for f in findings),
                "seeds": len(seeds),
                "inert_runs": int(
                    evaluation.get("inert", pd.Series(dtype=bool)).fillna(False).astype(bool).sum()
                ),
            }
        )
        print(text)
