"""The written report: tables of every result and, for each SPEC finding, whether this run reproduced it."""

from __future__ import annotations

import pandas as pd


def _table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    return df.to_markdown(index=False, floatfmt=floatfmt)


def cost_table(evaluation: pd.DataFrame) -> pd.DataFrame:
    """Per method: mean ToW and mean wall time as a ratio to retrain's, over the forget sets."""
    order = list(dict.fromkeys(evaluation["method"]))
    return (evaluation.groupby("method")[["ToW", "seconds", "cost_ratio"]].mean()
            .reindex(order).reset_index().rename(columns={"ToW": "mean ToW", "seconds": "mean seconds", "cost_ratio": "time / retrain"}))


def rum_table(evaluation: pd.DataFrame) -> pd.DataFrame | None:
    """ToW on the `*_mix` forget sets of each method run vanilla, as rum_f:, as shuffle: (and `rum`)."""
    mix = evaluation[evaluation["forget_set"].str.endswith("_mix")]
    metas = sorted({m.split(":", 1)[1] for m in mix["method"] if m.startswith(("rum_f:", "shuffle:"))})
    wanted = [m for inner in metas for m in (inner, f"rum_f:{inner}", f"shuffle:{inner}")] + ["rum"]
    rows = mix[mix["method"].isin(wanted)]
    if rows.empty or not (metas or "rum" in set(rows["method"])):
        return None
    table = rows.pivot_table(index="method", columns="forget_set", values="ToW")
    return table.reindex([m for m in wanted if m in table.index]).reset_index()


def rsu_table(evaluation: pd.DataFrame) -> pd.DataFrame | None:
    """ToW of each rsu:<method> beside its vanilla method, per forget set."""
    rsu = sorted(m for m in set(evaluation["method"]) if m.startswith("rsu:"))
    if not rsu:
        return None
    wanted = [m for r in rsu for m in (r.split(":", 1)[1], r)]
    rows = evaluation[evaluation["method"].isin(wanted)]
    table = rows.pivot_table(index="method", columns="forget_set", values="ToW")
    return table.reindex([m for m in wanted if m in table.index]).reset_index()


def render(study: dict, data_manifest: dict, target: dict, bank: dict, scores: pd.DataFrame, timings: dict,
           forget_sets: pd.DataFrame, evaluation: pd.DataFrame, figures: dict[str, str], deviations: list[str],
           proxies: pd.DataFrame, analysis_md: str) -> str:
    lines = [f"# mudiff report: study `{study['name']}`", ""]
    lines += [
        f"Dataset **{data_manifest['dataset']}** ({data_manifest['n_train']} train, {data_manifest['n_test']} test), "
        f"model **{study['model']}**, seed {study['seed']}. Target accuracy: train {target['train_acc']:.2f}%, "
        f"test {target['test_acc']:.2f}% ({target['seconds']:.1f} s).",
        "",
        f"Model bank: K = {bank['models']} models on p = {bank['fraction']} of train, {bank['epochs']} epochs, "
        f"{bank['seconds']:.1f} s ({bank['images_per_second']:.0f} images/s, {'vectorized, groups of ' + str(bank['group_size']) if bank['vectorized'] else 'one model at a time'}); "
        f"accuracy on own training samples {bank['in_acc_mean']:.2f}%, on held-out train samples {bank['out_acc_mean']:.2f}%, on test {bank['test_acc_mean']:.2f}%.",
        "",
    ]
    lines += ["## Unlearning results", "",
              "Accuracies in %, MIA as the share of the forget set predicted non-member; ToW = 1 means the same as retrain. "
              "Cost ratio = wall time / retrain's wall time. One seed: no intervals yet.", ""]
    cols = ["method", "forget_set", "FA", "RA", "TA", "MIA", "ToW", "ToW_MIA", "seconds", "cost_ratio"]
    lines += [_table(evaluation.sort_values(["forget_set", "method"])[cols], ".3f"), ""]
    lines += [f"![ToW by memorization level]({figures['tow_by_memorization']})", ""]
    if "tow_by_entanglement" in figures:
        lines += [f"![ToW by entanglement level]({figures['tow_by_entanglement']})", ""]
    lines += ["Per method, over the forget sets: mean ToW and wall time as a ratio to retrain's.", "",
              _table(cost_table(evaluation)), ""]
    rum = rum_table(evaluation)
    if rum is not None:
        lines += ["### RUM vs vanilla vs shuffle", "",
                  "ToW on the mix forget sets (a third each of low, mid and high memorization), same total budget.", "",
                  _table(rum), ""]
    rsu = rsu_table(evaluation)
    if rsu is not None:
        lines += ["### RSU", "", "ToW of risk-ranked sequential unlearning (its order: the method's config) beside the vanilla method.", "",
                  _table(rsu), ""]

    lines += ["## Forget sets", ""]
    fs_cols = ["name", "rule", "score", "size", "mean_memorization", "entanglement_score"]
    lines += [_table(forget_sets[fs_cols]), ""]

    lines += ["## Proxies of memorization", "",
              "Rank (Spearman) and linear (Pearson) correlation with memorization over all train samples and over the "
              "5% most memorized (`_top`); `aligned_spearman` = SPEC direction × Spearman (+ = agrees that hard samples "
              "are memorized); compute time of each score and its ratio to the bank's training time (bank scores "
              "include the bank's training).", ""]
    proxy_cols = ["score", "direction", "spearman", "pearson", "spearman_top", "pearson_top", "aligned_spearman",
                  "seconds", "time_ratio_to_bank"]
    lines += [_table(proxies[proxy_cols], ".4g"), "", f"![proxies: correlation vs compute]({figures['proxies']})", "",
              f"![proxies vs memorization]({figures['proxies_vs_memorization']})", ""]

    # Instance-level difficulty and the verdict on every SPEC finding: the analysis stage's (one place).
    lines += [analysis_md, ""]
    lines += ["## Deviations from SPEC", ""] + [f"- {d}" for d in deviations] + [""]
    return "\n".join(lines)
