"""The written report: tables of every result and, for each SPEC finding, whether this run reproduced it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mudiff.analysis.comparison import method_order, mix_sets, rum_comparison
from mudiff.analysis.proxies import METRICS as PROXY_METRICS
from mudiff.analysis.proxies import MIN_MEASURABLE_SECONDS as PROXY_MIN_SECONDS
from mudiff.analysis.proxies import NO_EXTRA_TRAINING as PROXY_NO_EXTRA_TRAINING
from mudiff.analysis.proxies import cost_note as proxy_cost_note
from mudiff.analysis.seeds import EVALUATION_METRICS, formatted, summarise
from mudiff.methods.name import MethodName


def md_table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    return df.to_markdown(index=False, floatfmt=floatfmt)


def _ci_pivot(rows: pd.DataFrame, index: str, columns: str, value: str, order: list[str]) -> pd.DataFrame:
    """`value` as 'mean [95% CI]' over the seeds, one row per `index` (in `order`), one column per `columns`."""
    cells = summarise(rows, [index, columns], (value,))
    cells["text"] = formatted(cells, (value,))[value]
    table = cells.pivot(index=index, columns=columns, values="text")
    return table.reindex([m for m in order if m in table.index]).reset_index()


def cost_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per method, over its forget sets: mean ToW, mean wall time and wall time as a ratio to retrain's."""
    order = list(dict.fromkeys(summary["method"]))
    return (
        summary.groupby("method")[["ToW", "seconds", "cost_ratio"]]
        .mean()
        .reindex(order)
        .reset_index()
        .rename(columns={"ToW": "mean ToW", "seconds": "mean seconds", "cost_ratio": "time / retrain"})
    )


def rum_table(evaluation: pd.DataFrame) -> pd.DataFrame | None:
    """ToW on the `*_mix` forget sets of each method run vanilla, as rum_f:, as shuffle: (and `rum`)."""
    runs = rum_comparison(mix_sets(evaluation))
    if runs.empty:
        return None
    return _ci_pivot(runs, "method", "forget_set", "ToW", method_order(runs))


def rsu_table(evaluation: pd.DataFrame, orders: dict[str, str]) -> pd.DataFrame | None:
    """ToW of each rsu:<method> run (with its order) beside its vanilla method, per forget set."""
    names = {m: MethodName.read(m) for m in set(evaluation["method"])}
    rsu = sorted(m for m, n in names.items() if n.meta == "rsu")
    if not rsu:
        return None
    wanted = list(dict.fromkeys(m for r in rsu for m in (names[r].inner, r)))
    sets = evaluation.loc[evaluation["method"].isin(rsu), "forget_set"].unique()
    rows = evaluation[evaluation["method"].isin(wanted) & evaluation["forget_set"].isin(sets)]
    table = _ci_pivot(rows, "method", "forget_set", "ToW", wanted)
    table.insert(1, "order", [orders.get(m, "(vanilla)" if m not in rsu else "") for m in table["method"]])
    return table


def _bank_engine(bank: dict) -> str:
    """How the bank trained, from its summary (older summaries lack the engine; older BatchNorm banks
    trained one model at a time, engine "one_by_one")."""
    if bank.get("engine") == "one_by_one" or not bank.get("vectorized", True):
        return "one model at a time"
    engine = {"stacked_mlp": "stacked perceptrons", "vmap": "vmap"}.get(bank.get("engine"), "vectorized")
    return f"{engine}, groups of {bank['group_size']}"


def bank_text(bank: dict, study_model: str) -> str:
    """The bank in the report's opening: which architecture scored memorization (the summary's `model`;
    older summaries lack it and trained the study's model), how many models, and how it trained."""
    model = bank.get("model") or study_model
    shards = bank.get("shards", 1)
    jobs = f", trained in {shards} shards" if shards > 1 else ""
    return (
        f"Model bank: memorization scored by a bank of K = {bank['models']} {model} models on "
        f"p = {bank['fraction']} of train, {bank['epochs']} epochs{jobs}, {bank['seconds']:.1f} s "
        f"({bank['images_per_second']:.0f} images/s, {_bank_engine(bank)}); accuracy on own training "
        f"samples {bank['in_acc_mean']:.2f}%, on held-out train samples {bank['out_acc_mean']:.2f}%, "
        f"on test {bank['test_acc_mean']:.2f}%."
    )


def moved_text(summary: pd.DataFrame, i) -> str:
    """'12.3%', or 'INERT 0.0%' (and 'inert in k of n seeds' when the seeds disagree)."""
    if "forget_flip_share" not in summary or not np.isfinite(summary.at[i, "forget_flip_share"]):
        return ""
    share = f"{100 * summary.at[i, 'forget_flip_share']:.1f}%"
    inert, seeds = summary.at[i, "inert"], int(summary.at[i, "seeds"])
    if inert >= 1:
        return f"INERT {share}"
    return f"{share} (inert in {round(inert * seeds)} of {seeds} seeds)" if inert > 0 else share


def tuning_section(tuning: pd.DataFrame | None) -> list[str]:
    """How the method settings were chosen: the committed tuning table (mudiff.tuning)."""
    if tuning is None:
        return []
    shown = tuning[
        [
            "method",
            "setting",
            "FA",
            "FA_retrain",
            "TA",
            "TA_retrain",
            "ToW",
            "flip_share",
            "moves_forget_set",
            "collapsed",
            "selected",
        ]
    ].copy()
    shown["selected"] = ["**selected**" if v else "" for v in shown["selected"]]
    statuses = tuning.groupby("method", sort=False)["method_status"].first()
    lines = [
        "## How the method settings were chosen",
        "",
        "As papers choose them: on the `random` forget set (the study's own and further seeded draws of its size), "
        "by ToW, never by looking at the hard sets. `python -m mudiff.tuning` ran every grid point from the "
        "seed-0 target; a point is eligible when it moves F (mean flipped share at least the inert threshold) "
        "without collapsing (test accuracy within `tune.collapse_points` of retrain's). Means over the draws:",
        "",
        md_table(shown),
        "",
    ]
    lines += [f"- {m}: {st}" for m, st in statuses.items()] + [""]
    return lines


def render(
    study: dict,
    data_manifest: dict,
    target: dict,
    bank: dict,
    replicates: pd.DataFrame,
    forget_sets: pd.DataFrame,
    evaluation: pd.DataFrame,
    summary: pd.DataFrame,
    figures: dict[str, str],
    deviations: list[str],
    proxies: pd.DataFrame,
    analysis_md: str,
    rsu_orders: dict[str, str],
    tuning: pd.DataFrame | None = None,
    inert_flip_share: float | None = None,
    provenance: list[str] | None = None,
) -> str:
    seeds = study["seeds"]
    over = (
        f"Every number below is the mean over {len(seeds)} seeds ({', '.join(map(str, seeds))}) with its 95% "
        "t-interval in brackets."
        if len(seeds) > 1
        else f"One seed ({seeds[0]}): no intervals over seeds; list more under `seeds` in the config to get them."
    )
    lines = [f"# mudiff report: study `{study['name']}`", ""]
    lines += [
        f"Dataset **{data_manifest['dataset']}** ({data_manifest['n_train']} train, {data_manifest['n_test']} test), "
        f"model **{study['model']}**, seeds {', '.join(map(str, seeds))}. {over}",
        "",
        f"Seed {seeds[0]}: target accuracy train {target['train_acc']:.2f}%, test {target['test_acc']:.2f}% "
        f"({target['seconds']:.1f} s). {bank_text(bank, study['model'])}",
        "",
        f"Snakemake's report (the DAG, every job's runtime, the code): `snakemake --report results/{study['name']}/"
        f"snakemake-report.html --configfile config/{study['name']}.yaml` writes it as [snakemake-report.html](snakemake-report.html).",
        "",
        "### Replicates",
        "",
        md_table(replicates),
        "",
    ]
    lines += [
        "## Unlearning results",
        "",
        "Accuracies in %, MIA as the share of the forget set predicted non-member; ToW = 1 means the same as retrain "
        "(ToW-MIA: the forget term by MIA). Cost ratio = wall time / retrain's wall time. " + over,
        "",
    ]
    metrics = list(EVALUATION_METRICS)
    shown = formatted(summary, metrics)
    shown = shown.sort_values(["forget_set", "method"])[["method", "forget_set", "seeds", *metrics]]
    shown["F moved"] = [moved_text(summary, i) for i in shown.index]
    rule = f"{100 * inert_flip_share:g}%" if inert_flip_share else "`evaluate.inert_flip_share`"
    lines += [
        f"`F moved`: the largest share of the forget set whose correctness flipped against the target's, over the "
        f"run's epochs. A run is **inert** when it never reaches {rule}: it left F untouched, is no evidence about "
        "unlearning, and every cross-method finding below leaves it out.",
        "",
        md_table(shown),
        "",
    ]
    lines += [f"![ToW and ToW-MIA by memorization level]({figures['tow_by_memorization']})", ""]
    if "tow_by_entanglement" in figures:
        lines += [f"![ToW and ToW-MIA by entanglement level]({figures['tow_by_entanglement']})", ""]
    lines += [
        "Per method, over its forget sets (means of the seed means): ToW and wall time, also as a ratio to retrain's.",
        "",
        md_table(cost_table(summary)),
        "",
    ]
    rum = rum_table(evaluation)
    if rum is not None:
        lines += [
            "### RUM vs vanilla vs shuffle",
            "",
            "ToW on the mix forget sets (a third each of low, mid and high memorization), same total budget.",
            "",
            md_table(rum),
            "",
        ]
        if "rum_comparison" in figures:
            lines += [f"![RUM vs vanilla vs shuffle]({figures['rum_comparison']})", ""]
    rsu = rsu_table(evaluation, rsu_orders)
    if rsu is not None:
        lines += [
            "### RSU by order",
            "",
            "ToW of risk-ranked sequential unlearning in each configured order (add orders as variants, e.g. "
            "`rsu:finetune@hard_to_easy: {order: hard_to_easy}`) beside the vanilla method.",
            "",
            md_table(rsu),
            "",
        ]
        if "rsu_by_order" in figures:
            lines += [f"![RSU by order]({figures['rsu_by_order']})", ""]

    lines += tuning_section(tuning)
    lines += [
        "## Forget sets",
        "",
        "Size, and over the seeds the mean memorization of the set's samples and its "
        "entanglement score (SPEC's ES on the target's embeddings).",
        "",
    ]
    fs = formatted(forget_sets, ("mean_memorization", "entanglement_score"))
    fs["score"] = fs["score"].fillna("")
    ties = [
        c for c in ("same_population_as", "mid_cut") if c in fs
    ]  # levels drawn from one tie block; how mid was cut
    columns = ["name", "rule", "score", "size", "seeds", "mean_memorization", "entanglement_score", *ties]
    lines += [md_table(fs[columns]), ""]

    lines += [
        "## Proxies of memorization",
        "",
        "Rank (Spearman) and linear (Pearson) correlation with memorization over all train samples and over the "
        "5% most memorized (`_top`); `aligned_spearman` = SPEC direction × Spearman (+ = agrees that hard samples "
        "are memorized); `seconds` = each score's marginal compute time (bank scores include the bank's training) "
        f"and `time_ratio_to_bank` its ratio to the bank's training time, given only where the score's own time "
        f"is measurable (>= {PROXY_MIN_SECONDS * 1000:.0f} ms). Training-dynamics scores are read off the target's "
        f"training, whose cost is paid anyway: {PROXY_NO_EXTRA_TRAINING}; `cost` says what each time covers. "
        + over,
        "",
    ]
    proxy_cols = list(PROXY_METRICS)
    shown = formatted(proxies, proxy_cols, ".4g").assign(cost=lambda t: t["score"].map(proxy_cost_note))
    lines += [
        md_table(shown[["score", "direction", *proxy_cols, "cost"]]),
        "",
        f"![proxies: correlation vs compute (seed {seeds[0]})]({figures['proxies']})",
        "",
        f"![proxies vs memorization (seed {seeds[0]})]({figures['proxies_vs_memorization']})",
        "",
    ]

    if "forget_samples" in figures:
        lines += [
            "## Hardest and easiest forget samples",
            "",
            "The forget samples hardest (top row) and easiest (bottom row) to unlearn, pooled over the methods and "
            "seeds: each run's per-sample difficulty (see below) is rank-normalised to (0, 1] within the run, so that "
            "runs of different sizes compare, then averaged per sample over the runs that had it in their forget set. "
            "Left out: the methods of `analysis.exclude` (retrain by default), inert runs and method variants. Above each image its class and sample id; below, "
            "`diff` = pooled difficulty (1 = hardest) and `mem` = memorization (mean over seeds).",
            "",
            f"![hardest and easiest forget samples]({figures['forget_samples']})",
            "",
        ]
        if "forget_samples_by_method" in figures:
            lines += [
                "Per method (its own runs only, rank-normalised the same way): its hardest and easiest samples.",
                "",
                f"![hardest and easiest forget samples per method]({figures['forget_samples_by_method']})",
                "",
            ]
    # Instance-level difficulty and the verdict on every SPEC finding: the analysis stage's (one place).
    lines += [analysis_md, ""]
    lines += ["## Deviations from SPEC", ""] + [f"- {d}" for d in deviations] + [""]
    lines += provenance or []
    return "\n".join(lines)
