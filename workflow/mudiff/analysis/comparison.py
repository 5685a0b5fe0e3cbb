"""Which runs the RUM finding compares, chosen in one place: on the mix forget sets (a third each of
low, mid and high memorization), `rum_f:<m>` (refined and sequenced) against vanilla `<m>` and
`shuffle:<m>` (sequenced on random thirds), and `rum` (a method per subset) against every vanilla and
shuffle method. The finding (`analysis.findings`), the report's table and its figure all read it.

A variant label stays on the wrapped method: `rum_f:neggrad_plus@x` pairs with `neggrad_plus@x`.
"""

from __future__ import annotations

import pandas as pd

from mudiff.methods.name import MethodName

ARMS = ("vanilla", "rum_f", "shuffle", "rum")  # in the order tables and figures show them


def mix_sets(evaluation: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs on a `*_mix` forget set."""
    return evaluation[evaluation["forget_set"].astype(str).str.endswith("_mix")]


def seed_means(rows: pd.DataFrame) -> pd.DataFrame:
    """One ToW per method and seed, the mean over the forget sets of `rows` (so that n counts seeds);
    `rows` as they are when they have no seed column."""
    if "seed" not in rows:
        return rows
    return rows.groupby(["method", "seed"], as_index=False)["ToW"].mean()


def arms(inner: str) -> dict[str, str]:
    """The method name of each arm that compares with `rum_f:<inner>`: {arm: method}."""
    vanilla = MethodName.read(inner)
    return {"rum_f": str(vanilla.wrap("rum_f")), "vanilla": inner, "shuffle": str(vanilla.wrap("shuffle"))}


def is_rum_rival(method: str) -> bool:
    """Whether `rum` competes with `method`: every vanilla or shuffle method but retrain, variants
    included."""
    name = MethodName.read(method)
    return name.meta in (None, "shuffle") and name.inner != "retrain"


def rum_comparison(rows: pd.DataFrame, anchors: tuple[str, ...] = ("rum_f", "shuffle")) -> pd.DataFrame:
    """The rows of `rows` the comparison reads, with their `arm` (one of `ARMS`) and `inner` (the method
    wrapped, variant label kept; 'rum' for `rum`): the methods run as one of `anchors` (the figure and
    the table show a method run as `rum_f` or `shuffle`; the finding needs `rum_f`), each beside its
    vanilla and the other wrapper, and `rum` whenever it ran. Grouped by method, in the order methods
    first appear in `rows`; empty when nothing compares."""
    names = {m: MethodName.read(m) for m in rows["method"].unique()}
    inners = {str(n.wrapped) for n in names.values() if n.meta in anchors and n.inner is not None}
    chosen: dict[str, tuple[str, str]] = {}
    for m, n in names.items():
        if m == "rum":
            chosen[m] = ("rum", "rum")
        elif n.meta in ("rum_f", "shuffle") and str(n.wrapped) in inners:
            chosen[m] = (n.meta, str(n.wrapped))
        elif n.meta is None and m in inners:
            chosen[m] = ("vanilla", m)
    if not chosen:
        return rows.iloc[0:0].assign(arm=pd.Series(dtype=str), inner=pd.Series(dtype=str))
    return pd.concat(
        [rows[rows["method"] == m].assign(arm=arm, inner=inner) for m, (arm, inner) in chosen.items()]
    )


def inners(comparison: pd.DataFrame) -> list[str]:
    """The wrapped methods of a comparison, sorted (`rum` left out: it wraps none)."""
    return sorted(set(comparison.loc[comparison["arm"] != "rum", "inner"]))


def method_order(comparison: pd.DataFrame) -> list[str]:
    """The methods of a comparison as tables list them: per wrapped method its vanilla, rum_f and
    shuffle runs, then `rum`."""
    arm = dict(zip(comparison["method"], comparison["arm"]))
    inner = dict(zip(comparison["method"], comparison["inner"]))
    return sorted(arm, key=lambda m: (arm[m] == "rum", inner[m], ARMS.index(arm[m])))
