"""The report's instance-level section (for report.md), rendered from the analysis stage's outputs:
agreement, factors, predictor, and the list of verdicts on every SPEC finding."""

from __future__ import annotations

import pandas as pd

from mudiff.report.markdown import md_table


def agreement_summary(agreement: pd.DataFrame) -> pd.DataFrame:
    """One row per forget set: Kendall's W and the mean pairwise Spearman with intervals."""
    w = agreement[agreement["stat"] == "kendall_w"].set_index("forget_set")
    rho = agreement[agreement["stat"] == "mean_spearman"].set_index("forget_set")
    return pd.DataFrame(
        {
            "forget_set": w.index,
            "methods": w["n_methods"].to_numpy(),
            "samples": w["n_samples"].to_numpy(),
            "Kendall's W": w["value"].to_numpy(),
            "W 95% CI": [f"[{a:.3f}, {b:.3f}]" for a, b in zip(w["ci_low"], w["ci_high"])],
            "mean Spearman": rho.loc[w.index, "value"].to_numpy(),
        }
    )


def _auc_columns(result: dict, label: str) -> dict:
    """AUC and its interval of one model on one feature set, or blanks where that set was skipped."""
    if "skipped" in result:
        return {f"AUC {label}": float("nan"), f"{label} 95% CI": result["skipped"]}
    return {
        f"AUC {label}": result["auc"],
        f"{label} 95% CI": f"[{result['auc_ci_low']:.3f}, {result['auc_ci_high']:.3f}]",
    }


def predictor_summary(predictor: dict) -> pd.DataFrame:
    """Per method and model: the AUC with all features and without the bank features, side by
    side with their intervals, and the top features of the full fit."""
    rows = []
    for method, r in predictor["methods"].items():
        if "skipped" in r:
            continue
        full, no_bank = r["all_features"], r["without_bank_features"]
        for kind in ("logistic_regression", "gradient_boosting"):
            imp = full[kind]["importance"]
            top = sorted(imp, key=lambda f: -abs(imp[f]))[:3]
            rows.append(
                {
                    "method": method,
                    "model": kind.replace("_", " "),
                    "samples": r["n"],
                    "hard": r["n_hard"],
                    **_auc_columns(full[kind], "all"),
                    **_auc_columns(no_bank.get(kind, no_bank), "without bank"),
                    "top features (all)": ", ".join(f"{f} ({imp[f]:+.3f})" for f in top),
                }
            )
    return pd.DataFrame(rows)


def _dropped_note(predictor: dict) -> str:
    dropped = predictor["feature_sets"]["without_bank_features"]["dropped"]
    if not dropped:
        return "No feature comes from the model bank, so both AUCs are the same fit."
    they = "they are" if len(dropped) > 1 else "it is"
    return (
        f"`AUC all` uses every feature; `AUC without bank` drops {', '.join(dropped)}: {they} "
        f"{predictor['dropped_why']}, so part of what {they.split()[0]} predict{'s' * (len(dropped) == 1)} is the "
        "bank itself. The gap between the two "
        "AUCs is what the predictor owes to that shared source; the AUC without them is the one that speaks for "
        "scores from the target alone."
    )


def findings_list(findings: list[dict]) -> str:
    """The report's "SPEC findings" list: each verdict's text."""
    return "\n".join(f"- {f['text']}" for f in findings)


def render(
    agreement: pd.DataFrame,
    verdicts: pd.DataFrame,
    predictor: dict,
    findings: list[dict],
    figures: dict[str, str],
    seed: int | None = None,
    n_seeds: int = 1,
) -> str:
    """Markdown: agreement, factors, predictor (of replicate `seed`), and the verdict on every SPEC
    finding (over all `n_seeds` seeds). `figures` maps agreement / factors / roc / difficulty to
    paths relative to report.md."""
    shown = (
        ""
        if n_seeds == 1
        else (
            f"Shown for seed {seed}, the first of {n_seeds}; every seed's tables and figures are "
            f"under `seed_<s>/analysis/`, and the replicates table above gives their headline "
            "numbers over the seeds."
        )
    )
    lines = [
        "## Instance-level difficulty",
        "",
        *([shown, ""] if shown else []),
        "Per forget sample and method: `steps_to_forget` = first epoch (0 = before unlearning) at which the "
        "unlearned model's phi falls below the median phi of the bank's OUT models (never = censored, ranked "
        "hardest); `residual` = U-LiRA log-ratio of the unlearned model. Difficulty ranks samples by steps, then "
        "residual. Retrain is left out (it never trains on F), and so are method variants `<method>@<label>` in the "
        "comparisons across methods (the same algorithm with other hyperparameters).",
        "",
        f"![per-sample difficulty]({figures['difficulty']})",
        "",
        "### Do methods agree on which samples are hard?",
        "",
    ]
    agree = (
        md_table(agreement_summary(agreement)) if len(agreement) else "Fewer than two methods per forget set."
    )
    lines += [
        agree,
        "",
        f"![agreement]({figures['agreement']})",
        "",
        "### Factors of difficulty",
        "",
        "Spearman of each score with difficulty per method (95% interval); algorithm-independent = same sign "
        "for every method and interval excluding 0 for most.",
        "",
    ]
    cols = [
        "factor",
        "sign",
        "sign_consistent",
        "n_significant",
        "n_methods",
        "algorithm_independent",
        "mean_rho",
        "min_abs_rho",
        "agrees_with_spec",
    ]
    lines += [
        md_table(verdicts[cols]),
        "",
        f"![factors]({figures['factors']})",
        "",
        "### Predicting hard samples before unlearning",
        "",
        f"Hard = censored or in the top {predictor['params']['hard_share']:.0%} of a run's difficulty; features: "
        f"{', '.join(predictor['features'])}; {predictor['params']['folds']}-fold out-of-fold AUC, "
        "folds grouped by sample id.",
        "",
        _dropped_note(predictor),
        "",
    ]
    summary = predictor_summary(predictor)
    lines += [
        md_table(summary) if len(summary) else "Too few hard or easy samples to cross-validate.",
        "",
        f"![ROC]({figures['roc']})",
        "",
        "## SPEC findings",
        "",
        *(
            [
                f"Over all {n_seeds} seeds: verdicts compare the means over the seeds; each says in how many seeds it "
                "held on its own.",
                "",
            ]
            if n_seeds > 1
            else []
        ),
        findings_list(findings),
        "",
    ]
    return "\n".join(lines)
