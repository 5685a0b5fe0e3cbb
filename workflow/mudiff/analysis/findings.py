"""The verdict on every SPEC finding, from this run's numbers: the one place the report asks.

Each function returns a dict {finding, method, reproduced, numbers, text}: `reproduced` is True,
False, or None when the run lacks what the finding needs (then `text` says what is missing).
Numbers are means over the rows of a cell (one per seed) with a t-based 95% interval when there
are several seeds. Verdicts compare means; the intervals are reported for the reader to judge.

A run whose forget set never changed (`inert`, see `mudiff.metrics.movement`) is no evidence:
every verdict leaves such runs out and says so, and a finding whose needed runs are inert, whose
levels are one population (tied scores), or that has too few non-inert methods, reads "not
testable here" with the reason. With one seed a verdict is a point estimate and says so.

Rules (SPEC "Findings"):
- ToW falls as memorization of F rises: mean ToW on the `high` set below the `low` set, per
  method (finetune and neggrad_plus, as SPEC names them).
- ToW falls as entanglement of F rises: per non-retrain method run on the es sets, mean ToW on
  the set of highest measured ES below the set of lowest (by slice label when no ES is given).
- RUM beats vanilla and shuffle on mix sets: mean ToW over the `*_mix` sets of `rum_f:<m>`
  above both `<m>` and `shuffle:<m>`; `rum` (a method per subset) above every vanilla and every
  shuffle method run on the same sets.
- Confidence ranks samples close to memorization: |Spearman| >= `threshold` (0.5 here; the
  papers report 0.8-0.9 on CIFAR).
- Difficulty is algorithm-independent: on every forget set the mean pairwise Spearman between
  methods, (mW - 1)/(m - 1), has an interval above zero, and its median over forget sets is at
  least `min_rho`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from mudiff.analysis import comparison
from mudiff.analysis.intervals import format_ci, mean_ci
from mudiff.analysis.proxies import cost_phrase, score_cost
from mudiff.forget_sets import ForgetSetError, parse_name
from mudiff.methods.name import MethodName

MEMORIZATION_METHODS = ("finetune", "neggrad_plus")
LEVELS = ("low", "mid", "high")
CONFIDENCE = "Training-dynamics confidence ranks samples close to memorization"
INDEPENDENCE = "Per-sample difficulty is algorithm-independent"


def _verdict(finding: str, method: str | None, reproduced: bool | None, numbers: dict, detail: str) -> dict:
    word = {True: "**reproduced**", False: "**not reproduced**", None: "not testable here"}[reproduced]
    who = f" ({method})" if method else ""
    return {
        "finding": finding,
        "method": method,
        "reproduced": reproduced,
        "numbers": numbers,
        "text": f"{finding}{who}: {word} ({detail}).",
    }


def with_levels(evaluation: pd.DataFrame) -> pd.DataFrame:
    """Add `score` and `level` parsed from forget-set names (None for names outside SPEC's)."""
    out = evaluation.copy()

    def parse(name):
        try:
            return parse_name(name)
        except ForgetSetError:
            return (None, None)

    parsed = [parse(n) for n in out["forget_set"]]
    out["score"] = [s for s, _ in parsed]
    out["level"] = [lv for _, lv in parsed]
    return out


def _cell(rows: pd.DataFrame, metric: str) -> dict:
    return mean_ci(rows[metric]) if metric in rows else mean_ci([])


MIN_METHODS = 3  # non-inert methods on a forget set for the agreement between methods to be testable


def inert_runs(evaluation: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs that left their forget set untouched (`inert`, from the evaluate stage)."""
    if "inert" not in evaluation:
        return evaluation.iloc[0:0]
    return evaluation[evaluation["inert"].fillna(False).astype(bool)]


def active(evaluation: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs that moved their forget set: the only ones any cross-method finding reads."""
    return evaluation.drop(index=inert_runs(evaluation).index)


def _runs(rows: pd.DataFrame) -> str:
    pairs = sorted(set(zip(rows["method"], rows["forget_set"])))
    return ", ".join(f"{m} on {fs}" for m, fs in pairs)


def _left_out(
    evaluation: pd.DataFrame, methods: list[str] | None = None, sets: list[str] | None = None
) -> str:
    """'; left out N inert run(s): ...' for the inert runs among `methods` x `sets` (all when None)."""
    rows = inert_runs(evaluation)
    if methods is not None:
        rows = rows[rows["method"].isin(methods)]
    if sets is not None:
        rows = rows[rows["forget_set"].isin(sets)]
    return f"; left out {len(rows)} inert run(s): {_runs(rows)}" if len(rows) else ""


def tow_trend(
    evaluation: pd.DataFrame,
    method: str,
    score: str,
    finding: str,
    prefix: str = "",
    populations: dict[str, list] | None = None,
) -> dict:
    """Does mean ToW on `<score>` high fall below low for `method`? (see module doc)

    Not testable when a needed run is inert (in any seed), or when the manifests say that the low
    and high sets are one population (`populations`: forget set -> its `same_population_as`).
    """
    ev = with_levels(evaluation)
    every = ev[(ev["method"] == method) & (ev["score"] == score)]
    names = {
        lv: (every.loc[every["level"] == lv, "forget_set"].iloc[0] if (every["level"] == lv).any() else None)
        for lv in LEVELS
    }
    dead = inert_runs(every)
    if len(dead):
        return _verdict(finding, method, None, {}, f"inert run(s), F unchanged: {_runs(dead)}")
    rows = every
    levels = [lv for lv in LEVELS if (rows["level"] == lv).any()]
    if not {"low", "high"} <= set(levels):
        return _verdict(
            finding,
            method,
            None,
            {},
            f"needs {prefix or score + '_'}low and {prefix or score + '_'}high for {method}",
        )
    same_as = {lv: (populations or {}).get(names[lv]) or [] for lv in levels}
    if names["low"] in same_as["high"]:
        return _verdict(
            finding, method, None, {}, f"{names['low']} and {names['high']} are one population (tied scores)"
        )
    dropped = "mid" in levels and names["low"] in same_as["mid"]
    levels = [lv for lv in levels if not (dropped and lv == "mid")]
    numbers = {
        metric: {lv: _cell(rows[rows["level"] == lv], metric) for lv in levels}
        for metric in ("ToW", "ToW_MIA")
    }
    tow = numbers["ToW"]
    reproduced = bool(tow["high"]["mean"] < tow["low"]["mean"])
    shown = ", ".join(f"{prefix}{lv} {format_ci(tow[lv])}" for lv in levels)
    if dropped:
        shown += " (mid left out: one population with low)"
    mia = numbers["ToW_MIA"]
    if all(np.isfinite(mia[lv]["mean"]) for lv in levels):
        shown += "; ToW-MIA " + ", ".join(f"{prefix}{lv} {format_ci(mia[lv])}" for lv in levels)
    return _verdict(finding, method, reproduced, numbers, f"ToW {shown}")


def memorization_findings(
    evaluation: pd.DataFrame, methods=MEMORIZATION_METHODS, populations: dict[str, list] | None = None
) -> list[dict]:
    return [
        tow_trend(
            evaluation, m, "memorization", "ToW falls as memorization of F rises", populations=populations
        )
        for m in methods
    ]


def entanglement_findings(
    evaluation: pd.DataFrame, entanglement_scores: dict[str, float] | None = None
) -> list[dict]:
    """Per method: does ToW fall as F's entanglement rises?

    With the es sets' measured entanglement scores (SPEC's ES, from their manifests) the sets are
    ordered by ES, and the verdict compares ToW on the most and the least entangled set: RUM's
    centroid-distance slices need not come out in ES order on every dataset and model. Without
    them, the slice labels (es_low < es_mid < es_high) stand in for the order.
    """
    finding = "ToW falls as entanglement of F rises"
    ev = with_levels(evaluation)
    methods = sorted(set(ev.loc[(ev["score"] == "entanglement") & (ev["method"] != "retrain"), "method"]))
    if not methods:
        return [_verdict(finding, None, None, {}, "needs es_low and es_high forget sets")]
    if not entanglement_scores:
        return [tow_trend(evaluation, m, "entanglement", finding, prefix="es_") for m in methods]
    out = []
    for m in methods:
        rows = ev[
            (ev["method"] == m)
            & (ev["score"] == "entanglement")
            & ev["forget_set"].isin(list(entanglement_scores))
        ]
        dead = inert_runs(rows)
        if len(dead):
            out.append(_verdict(finding, m, None, {}, f"inert run(s), F unchanged: {_runs(dead)}"))
            continue
        sets = sorted(set(rows["forget_set"]), key=lambda fs: entanglement_scores[fs])
        if len(sets) < 2:
            out.append(_verdict(finding, m, None, {}, f"needs two es sets with a measured ES for {m}"))
            continue
        tow = {fs: _cell(rows[rows["forget_set"] == fs], "ToW") for fs in sets}
        numbers = {"ToW": tow, "ES": {fs: float(entanglement_scores[fs]) for fs in sets}}
        least, most = sets[0], sets[-1]
        shown = ", ".join(f"{fs} (ES {entanglement_scores[fs]:.1f}) {format_ci(tow[fs])}" for fs in sets)
        labels = [fs for fs in ("es_low", "es_mid", "es_high") if fs in sets]
        note = "" if labels == sets else "; the slice labels are not in ES order on this run"
        out.append(
            _verdict(
                finding,
                m,
                bool(tow[most]["mean"] < tow[least]["mean"]),
                numbers,
                f"ToW by measured entanglement, least to most: {shown}{note}",
            )
        )
    return out


def rum_findings(evaluation: pd.DataFrame) -> list[dict]:
    finding = "RUM with the same budget beats vanilla and shuffle on mix sets"
    every = comparison.mix_sets(evaluation)
    dead = set(inert_runs(every)["method"])
    mix = comparison.seed_means(active(every))  # one value per seed (the mean over the mix sets)
    tow = {m: mean_ci(g["ToW"]) for m, g in mix.groupby("method")}
    out = []
    for inner in comparison.inners(comparison.rum_comparison(mix, anchors=("rum_f",))):
        need = list(comparison.arms(inner).values())
        if dead & set(need):
            out.append(
                _verdict(
                    finding,
                    inner,
                    None,
                    {},
                    f"inert on a mix set, F unchanged: {', '.join(sorted(dead & set(need)))}",
                )
            )
            continue
        missing = [m for m in need if m not in tow]
        if missing:
            out.append(_verdict(finding, inner, None, {}, f"needs {', '.join(missing)} on the mix sets"))
            continue
        r, v, s = (tow[m] for m in need)
        out.append(
            _verdict(
                finding,
                inner,
                bool(r["mean"] > v["mean"] and r["mean"] > s["mean"]),
                {"rum_f": r, "vanilla": v, "shuffle": s},
                f"ToW on mix sets: rum_f {format_ci(r)}, vanilla {format_ci(v)}, shuffle {format_ci(s)}",
            )
        )
    if "rum" in dead:
        out.append(_verdict(finding, "rum", None, {}, "rum was inert on a mix set, F unchanged"))
    elif "rum" in tow:
        rivals = {m: t for m, t in tow.items() if comparison.is_rum_rival(m)}
        if not rivals:
            out.append(
                _verdict(finding, "rum", None, {}, "needs a vanilla or shuffle method on the mix sets")
            )
        else:
            best = max(rivals, key=lambda m: rivals[m]["mean"])
            left = sorted(m for m in dead if comparison.is_rum_rival(m))
            note = f"; left out {len(left)} inert rival(s): {', '.join(left)}" if left else ""
            out.append(
                _verdict(
                    finding,
                    "rum",
                    bool(tow["rum"]["mean"] > rivals[best]["mean"]),
                    {"rum": tow["rum"], **rivals},
                    f"ToW on mix sets: rum {format_ci(tow['rum'])}, best rival {best} {format_ci(rivals[best])}{note}",
                )
            )
    return out or [
        _verdict(finding, None, None, {}, "needs rum_f:<method>, shuffle:<method> and <method> on a mix set")
    ]


RSU = "RSU: unlearning F easy to hard (by privacy risk) beats hard to easy and random orders"


def rsu_findings(evaluation: pd.DataFrame, orders: dict[str, str] | None) -> list[dict]:
    """Per wrapped method: mean ToW of `rsu:<m>` in the easy_to_hard order above both control orders.
    `orders` maps each RSU method name (variants included) to its configured order."""
    if not orders:
        return [
            _verdict(
                RSU,
                None,
                None,
                {},
                "needs rsu:<method> runs in the easy_to_hard, hard_to_easy and random orders",
            )
        ]
    out = []
    names = {m: MethodName.read(m) for m in orders}
    for inner in sorted({n.inner for n in names.values()}):
        by_order = {order: m for m, order in orders.items() if names[m].base == MethodName("rsu", inner)}
        missing = [o for o in ("easy_to_hard", "hard_to_easy", "random") if o not in by_order]
        rows = evaluation[evaluation["method"].isin(list(by_order.values()))]
        dead = inert_runs(rows)
        if missing:
            out.append(
                _verdict(RSU, inner, None, {}, f"needs the {', '.join(missing)} order(s) of rsu:{inner}")
            )
        elif len(dead):
            out.append(_verdict(RSU, inner, None, {}, f"inert run(s), F unchanged: {_runs(dead)}"))
        else:
            tow = {o: _cell(rows[rows["method"] == m], "ToW") for o, m in by_order.items()}
            best = tow["easy_to_hard"]["mean"] > max(tow["hard_to_easy"]["mean"], tow["random"]["mean"])
            out.append(
                _verdict(
                    RSU,
                    inner,
                    bool(best),
                    {"ToW": tow},
                    "ToW "
                    + ", ".join(
                        f"{o} {format_ci(tow[o])}" for o in ("easy_to_hard", "hard_to_easy", "random")
                    ),
                )
            )
    return out


def confidence_finding(scores: pd.DataFrame | None, threshold: float = 0.5, cost: dict | None = None) -> dict:
    """`cost`: confidence's compute against the bank's (`mudiff.analysis.proxies.score_cost`), if timed."""
    finding = CONFIDENCE
    if scores is None or not {"confidence", "memorization"} <= set(scores.columns):
        return _verdict(finding, None, None, {}, "needs confidence and memorization in the scores table")
    ok = scores[["confidence", "memorization"]].dropna()
    rho = float(spearmanr(ok["confidence"], ok["memorization"]).statistic)
    numbers = {"spearman": rho, "n": len(ok), "threshold": threshold, "speedup_vs_bank": None, **(cost or {})}
    cost = f"; {cost_phrase('confidence', cost)}" if cost else ""
    return _verdict(
        finding,
        None,
        bool(abs(rho) >= threshold),
        numbers,
        f"Spearman {rho:+.3f} over {len(ok)} samples; the papers report |rho| 0.8-0.9 on CIFAR, "
        f"we call |rho| >= {threshold} a reproduction{cost}",
    )


def independence_finding(
    agreement: pd.DataFrame | None,
    verdicts: pd.DataFrame | None = None,
    min_rho: float = 0.5,
    left_out: str = "",
) -> dict:
    """Judged on the forget sets where at least `MIN_METHODS` non-inert methods ran (the agreement
    table is built from non-inert runs only; `left_out` names the inert runs it left out)."""
    finding = INDEPENDENCE
    rows = (
        agreement[agreement["stat"] == "mean_spearman"] if agreement is not None and len(agreement) else None
    )
    if rows is not None:
        rows = rows[rows["n_methods"] >= MIN_METHODS]
    if rows is None or rows.empty:
        return _verdict(
            finding,
            None,
            None,
            {},
            f"needs at least {MIN_METHODS} non-inert non-retrain methods on a forget set{left_out}",
        )
    w = agreement[agreement["stat"] == "kendall_w"].set_index("forget_set")
    per_set = {
        r.forget_set: {
            "mean_spearman": r.value,
            "ci_low": r.ci_low,
            "ci_high": r.ci_high,
            "kendall_w": float(w.loc[r.forget_set, "value"]),
            "n_samples": int(r.n_samples),
            "n_methods": int(r.n_methods),
        }
        for r in rows.itertuples()
    }
    median = float(rows["value"].median())
    above = bool((rows["ci_low"] > 0).all())
    independent = (
        [] if verdicts is None else verdicts.loc[verdicts["algorithm_independent"], "factor"].tolist()
    )
    numbers = {
        "per_forget_set": per_set,
        "median_mean_spearman": median,
        "min_rho": min_rho,
        "algorithm_independent_factors": independent,
    }
    shown = "; ".join(
        f"{fs} W {v['kendall_w']:.2f}, mean rho {v['mean_spearman']:+.2f} [{v['ci_low']:+.2f}, {v['ci_high']:+.2f}]"
        for fs, v in per_set.items()
    )
    factors = (
        f"; algorithm-independent factors: {', '.join(independent) or 'none'}" if verdicts is not None else ""
    )
    return _verdict(
        finding,
        None,
        bool(above and median >= min_rho),
        numbers,
        f"median over forget sets of the mean pairwise Spearman {median:+.3f}, needs >= {min_rho} and every "
        f"interval above 0: {shown}{factors}{left_out}",
    )


def all_findings(
    evaluation: pd.DataFrame,
    scores: pd.DataFrame | None = None,
    agreement: pd.DataFrame | None = None,
    verdicts: pd.DataFrame | None = None,
    cost: dict | None = None,
    confidence_threshold: float = 0.5,
    min_rho: float = 0.5,
    entanglement_scores: dict[str, float] | None = None,
    populations: dict[str, list] | None = None,
) -> list[dict]:
    """One seed's verdicts. The agreement table must come from non-inert runs only (the analysis stage's)."""
    return [
        *memorization_findings(evaluation, populations=populations),
        *entanglement_findings(evaluation, entanglement_scores),
        *rum_findings(evaluation),
        confidence_finding(scores, confidence_threshold, cost),
        independence_finding(
            agreement, verdicts, min_rho, _left_out(evaluation[evaluation["method"] != "retrain"])
        ),
    ]


def _over_seeds_of(
    per_seed: dict[int, list[dict]], finding: str, number: str
) -> tuple[list[float], list[dict]]:
    found = [
        f for fs in per_seed.values() for f in fs if f["finding"] == finding and f["reproduced"] is not None
    ]
    return [float(f["numbers"][number]) for f in found], found


def across_seeds(
    evaluation: pd.DataFrame,
    per_seed: dict[int, list[dict]],
    entanglement_scores: dict[str, float] | None = None,
    confidence_threshold: float = 0.5,
    min_rho: float = 0.5,
    populations: dict[str, list] | None = None,
    rsu_orders: dict[str, str] | None = None,
) -> list[dict]:
    """The study's verdict on every finding, over its replicate seeds.

    `evaluation` holds every seed's rows (a `seed` column); `per_seed` maps each seed to its own
    analysis stage's findings. Findings read off the evaluation (memorization, entanglement, RUM)
    are judged on the means over the seeds, with 95% t-intervals; confidence and independence on
    the mean over the seeds of each seed's own statistic. Each verdict also says in how many
    seeds it held on its own (`seeds_reproduced` of `seeds`).
    """
    out = [
        *memorization_findings(evaluation, populations=populations),
        *entanglement_findings(evaluation, entanglement_scores),
        *rum_findings(evaluation),
        *rsu_findings(evaluation, rsu_orders),
    ]
    rhos, found = _over_seeds_of(per_seed, CONFIDENCE, "spearman")
    if rhos:
        rho = mean_ci(rhos)
        timed = [f["numbers"] for f in found if f["numbers"].get("bank_seconds")]
        spent = (
            score_cost(
                "confidence",
                np.mean([t["seconds"] for t in timed]),
                np.mean([t["bank_seconds"] for t in timed]),
            )
            if timed
            else None
        )
        cost = f"; mean over seeds, {cost_phrase('confidence', spent)}" if spent else ""
        out.append(
            _verdict(
                CONFIDENCE,
                None,
                bool(abs(rho["mean"]) >= confidence_threshold),
                {"spearman": rho, "threshold": confidence_threshold, "cost": spent},
                f"Spearman {format_ci(rho, '+.3f')} over {rho['n']} seed(s); the papers report |rho| 0.8-0.9 "
                f"on CIFAR, we call |rho| >= {confidence_threshold} a reproduction{cost}",
            )
        )
    else:
        out.append(
            _verdict(CONFIDENCE, None, None, {}, "needs confidence and memorization in the scores table")
        )
    medians, found = _over_seeds_of(per_seed, INDEPENDENCE, "median_mean_spearman")
    if medians:
        med = mean_ci(medians)
        above = all(v["ci_low"] > 0 for f in found for v in f["numbers"]["per_forget_set"].values())
        out.append(
            _verdict(
                INDEPENDENCE,
                None,
                bool(above and med["mean"] >= min_rho),
                {"median_mean_spearman": med, "min_rho": min_rho, "every_interval_above_zero": above},
                f"median over forget sets of the mean pairwise Spearman between methods {format_ci(med, '+.3f')} "
                f"over {med['n']} seed(s), needs >= {min_rho}; every forget set's bootstrap interval above 0 in "
                f"every seed: {'yes' if above else 'no'}"
                f"{_left_out(evaluation[evaluation['method'] != 'retrain'])}",
            )
        )
    else:
        reasons = sorted(
            {
                f["text"].split("not testable here (", 1)[-1].rstrip(").")
                for fs in per_seed.values()
                for f in fs
                if f["finding"] == INDEPENDENCE
            }
        )
        out.append(
            _verdict(
                INDEPENDENCE,
                None,
                None,
                {},
                "; ".join(reasons)
                or f"needs at least {MIN_METHODS} non-inert non-retrain methods on a forget set",
            )
        )
    for f in out:
        held = [
            any(
                g["finding"] == f["finding"] and g["method"] == f["method"] and g["reproduced"] is True
                for g in fs
            )
            for fs in per_seed.values()
        ]
        f["seeds"], f["seeds_reproduced"] = len(held), int(sum(held))
        if len(held) > 1 and f["reproduced"] is not None:
            f["text"] = f"{f['text'][:-1]}; held in {sum(held)} of {len(held)} seeds on its own."
        elif len(held) == 1 and f["reproduced"] is not None:
            f["text"] = f"{f['text'][:-1]}; one seed: a point estimate, no interval."
    return out
