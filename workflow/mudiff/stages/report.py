"""Stage `report`: the evaluation table, figures and `report.md` of a study."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mudiff.forget_sets import parse_name
from mudiff.io import atomic_path, read_json, read_table, write_table
from mudiff.analysis import section
from mudiff.report import figures
from mudiff.report.html import render_html
from mudiff.report.markdown import render
from mudiff.tracking import job_run

DEVIATIONS = [
    "Entanglement sets (es_low/mid/high) take the configured forget-set size from the middle of RUM's slices 3, 12, 14 "
    "(1-based) of 15 by centroid_distance, rather than whole slices, so that every family has the same size.",
    "grad_norm and curvature differentiate with respect to the model's normalised input, not raw pixels.",
    "privacy_risk: LiRA Gaussian standard deviations are floored at 0.01 (logit units); NaN where fewer than two IN "
    "or OUT models.",
    "Non-retrain methods use a constant learning rate.",
    "random_label and salun: one epoch is a pass over F ∪ R with F's labels redrawn once per run among the wrong classes "
    "(the SalUn code draws them uniformly, true class included); default lr 0.01 (SPEC's small-model value; 0.1 for CIFAR ResNets is config).",
    "salun: gradients outside the saliency mask are zeroed (as in the SalUn code); weight decay still shrinks those weights.",
    "scrub: gamma 0.99 and beta 0.001 (SCRUB code defaults; SPEC gives none); a fresh SGD optimizer for every max and min pass.",
    "RUM and RSU: each step's retain set is train minus everything forgotten up to that step; methods whose epoch is a pass "
    "over R get their epochs split over the steps (at least 1 each, so short budgets can grow slightly), neggrad keeps its "
    "epochs per step; refinement is into thirds of F by the score, not by the global low/mid/high cut-offs.",
    "RSU: ranks by privacy_risk when the scores table has it, otherwise by the target's per-sample loss (logged); "
    "one order per study for a given wrapped method, so 'RSU by order' needs one study per order.",
    "Training dynamics are read off the training forward pass (the model mid-epoch, on augmented views when augmentation "
    "is on), not from a separate evaluation pass.",
    "MIA: a logistic regression on the logit of the true-class confidence (a monotone transform of it), "
    "classes balanced by subsampling.",
    "Models with BatchNorm are trained one at a time in the bank (vmap cannot keep running statistics).",
    "One seed per study: no 95% intervals yet.",
]


def run(job: dict) -> None:
    p, inp, out = job["params"], job["input"], job["output"]
    with job_run(job) as mlrun:
        mlrun.set_tags({"mudiff.deviations": " | ".join(DEVIATIONS)})
        evaluation = pd.DataFrame([read_json(f) for f in inp["evaluations"]])
        parsed = [parse_name(n) for n in evaluation["forget_set"]]
        evaluation["score"] = [s if s != "random" else None for s, _ in parsed]
        evaluation["level"] = [lv for _, lv in parsed]
        scores = read_table(inp["scores"])
        forget_sets = pd.DataFrame([read_json(f) for f in inp["manifests"]])
        if "memorization" in scores.columns:
            mem = scores.set_index("id")["memorization"]
            forget_sets["mean_memorization"] = [float(mem.loc[read_table(f)["id"]].mean()) for f in inp["forget_sets"]]
        else:
            forget_sets["mean_memorization"] = float("nan")
        proxies = read_table(inp["proxies"])
        fig_dir = Path(out["figures"])
        fig_dir.mkdir(parents=True, exist_ok=True)
        figs = {
            "tow_by_memorization": figures.tow_by_level(evaluation, "memorization", fig_dir / "tow_by_memorization.png"),
            "proxies_vs_memorization": figures.proxies_vs_memorization(
                scores, [c for c in scores.columns if c not in ("id", "label", "memorization")], fig_dir / "proxies_vs_memorization.png"),
        }
        if (evaluation["score"] == "entanglement").any():
            figs["tow_by_entanglement"] = figures.tow_by_level(evaluation, "entanglement", fig_dir / "tow_by_entanglement.png")
        figs["proxies"] = Path(inp["proxies_figure"])
        analysis_dir = Path(inp["analysis_figures"])
        analysis_figs = {k: str((analysis_dir / f"{k}.png").relative_to(Path(out["report"]).parent))
                         for k in ("agreement", "factors", "roc", "difficulty")}
        analysis_md = section.render(read_table(inp["agreement"]), read_table(inp["factor_verdicts"]),
                                     read_json(inp["predictor"]), read_json(inp["findings"]), analysis_figs)
        rel = {k: str(Path(v).relative_to(Path(out["report"]).parent)) for k, v in figs.items()}
        text = render(p["study"], read_json(inp["data_manifest"]), read_json(inp["target_metrics"]), read_json(inp["bank_summary"]),
                      scores, read_json(inp["timings"]), forget_sets, evaluation, rel, DEVIATIONS, proxies, analysis_md)
        write_table(evaluation, out["evaluation"])
        with atomic_path(out["report"]) as tmp:
            tmp.write_text(text)
        with atomic_path(out["html"]) as tmp:
            tmp.write_text(render_html(text, Path(out["report"]).parent, f"mudiff report: {p['study']['name']}"))
        mlrun.log_metrics({f"ToW.{r.method}.{r.forget_set}": r.ToW for r in evaluation.itertuples()})
        print(text)
