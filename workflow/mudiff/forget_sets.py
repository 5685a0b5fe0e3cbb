"""Forget sets: random; low / mid / high / mix by any score, direction-aware; entanglement
es_low / es_mid / es_high; risk_ranked; class.

Samples are ranked by hardness (the score times its SPEC direction), ties broken in a random
order seeded by `forget_sets.seed`, so "high" is always the hardest. Levels are quantile bins by default: the N easiest, the N around
the median, the N hardest; `mid_rule="rum"` takes RUM's original "N closest to 0.5".

Ties across levels (a tie block is a run of equal score values in the ranking): where the quantile `mid`
window lies entirely inside the tie block that also holds the whole `low` window, `mid` is cut above
that block instead: the N samples around the median of the samples ranked strictly between the block
and the `high` window (the untied remainder), provided that remainder holds at least N samples;
symmetrically, where `mid` lies inside the block that holds the whole `high` window, `mid` is the N
around the median of the samples strictly between the `low` window and that block. Where the
remainder is too small, `mid` keeps the quantile window and the manifests declare the levels the same
population. A shifted `mid` never overlaps `low` or `high`. `mix` applies the same rule to its thirds
(low, mid, high windows of n//3, n//3 and the rest). The manifest of every level set records
`score_range` ([min, max] of its score values), `tie_block` ({value, size} of the tie block when the
whole set lies inside one, else null), `mid_cut` ("quantile", "above the tie block at <v>",
"below the tie block at <v>" or "rum"; null for low and high) and `same_population_as`: the other levels
of the score (of n samples each, as built) that lie inside the same tie block as this set, so that both
are draws from one score value; for `mix`, a note when two of its own thirds do.

Entanglement sets: samples ranked by centroid_distance (ascending, ties by id) are cut into 15
equal slices (`np.array_split`), and es_low, es_mid, es_high are the slices at 0-based indices
3, 12 and 14 (the 4th, 13th and 15th; es_high is the farthest slice), as RUM's code indexes them
(`get_fs_dist_only` with group_index 3, 12, 14). A slice holds about N_train/15 samples; the
configured size N is taken from the middle of the slice (by rank), so that every family has the
same N; a slice smaller than N is refused. Manifests record `slice_index` (0-based).

risk_ranked: the N samples of highest privacy_risk, returned in rank order (most exposed
first) for sequential unlearning (RSU). class: every sample of one class (size = class size).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mudiff.io import IdError, check_ids
from mudiff.scores import hardness

LEVELS = ("low", "mid", "high", "mix")
ES_SLICES = 15
ES_LEVELS = {"low": 3, "mid": 12, "high": 14}  # 0-based slice indices, as RUM's code (group_index)
SPECIAL = {f"es_{level}": ("entanglement", level) for level in ES_LEVELS} | {
    "risk_ranked": ("risk_ranked", None),
    "class": ("class", None),
}


class ForgetSetError(ValueError):
    """A forget set that cannot be built as asked (empty, too large, unknown score or level)."""


def resolve_size(size: float, n_train: int) -> int:
    """A share below 1 is a fraction of the train set; otherwise a count."""
    n = int(round(size * n_train)) if size < 1 else int(size)
    if n < 1:
        raise ForgetSetError(
            f"forget_sets.size {size} gives an empty forget set on {n_train} training samples"
        )
    if n > n_train:
        raise ForgetSetError(f"forget_sets.size {size} asks for {n} samples but the train set has {n_train}")
    return n


def parse_name(name: str) -> tuple[str, str | None]:
    """'random' -> ('random', None); 'memorization_high' -> ('memorization', 'high');
    'es_low' -> ('entanglement', 'low'); 'risk_ranked' / 'class' -> (name, None)."""
    if name == "random":
        return "random", None
    if name in SPECIAL:
        return SPECIAL[name]
    score, _, level = name.rpartition("_")
    if not score or level not in LEVELS:
        raise ForgetSetError(
            f"forget set {name!r} is neither 'random' nor '<score>_<level>' with level in {LEVELS} nor one of {sorted(SPECIAL)}"
        )
    return score, level


def random_set(ids: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(np.asarray(ids), size=n, replace=False))


def rank_by_hardness(scores: pd.DataFrame, score: str, tie_seed: int | None = None) -> pd.DataFrame:
    """Rows with a finite score, easiest first.

    Ties are broken by id, or, given `tie_seed`, by a seeded random order of the ids: scores
    with large ties (most digits samples have memorization exactly 0) would otherwise fill the
    low and mid sets with the lowest ids, and ids follow the source's collection order.
    """
    if score not in scores.columns:
        raise ForgetSetError(
            f"score {score!r} is not in the scores table; it has {sorted(set(scores.columns) - {'id', 'label'})}"
        )
    table = scores[["id", score]].copy()
    table["hardness"] = hardness(score, table[score].to_numpy(dtype=np.float64))
    table = table[np.isfinite(table["hardness"])]
    if tie_seed is None:
        return table.sort_values(["hardness", "id"], kind="stable").reset_index(drop=True)
    ids = np.sort(table["id"].to_numpy())
    tie_rank = pd.Series(
        np.random.default_rng(tie_seed).permutation(len(ids)), index=ids
    )  # per id, whatever the row order
    table["tie"] = tie_rank.loc[table["id"].to_numpy()].to_numpy()
    return table.sort_values(["hardness", "tie"], kind="stable").drop(columns="tie").reset_index(drop=True)


def _mid_start(hard: np.ndarray, values: np.ndarray, n_low: int, n: int, n_high: int) -> tuple[int, str]:
    """Start (rank) of the mid window of `n` and how it was cut, given the low and high windows' sizes (module doc)."""
    total = len(hard)
    start = total // 2 - n // 2
    if n < 1:
        return start, "quantile"
    if (
        hard[0] == hard[start + n - 1]
    ):  # mid inside the tie block at the bottom, which holds the whole low window
        stop = int(np.searchsorted(hard, hard[0], "right"))
        room = total - n_high - stop  # ranked strictly between the block and the high window
        if room >= n:
            return stop + room // 2 - n // 2, f"above the tie block at {values[0]:g}"
    elif hard[start] == hard[-1]:  # mid inside the tie block at the top, which holds the whole high window
        first = int(np.searchsorted(hard, hard[-1], "left"))
        room = first - n_low
        if room >= n:
            return n_low + room // 2 - n // 2, f"below the tie block at {values[-1]:g}"
    return start, "quantile"


def level_windows(
    ranked: pd.DataFrame, sizes: tuple[int, int, int], mid_rule: str = "quantile", score: str | None = None
) -> tuple[dict[str, np.ndarray], str]:
    """Ranks (positions in `ranked`) of the low, mid and high windows of `sizes` = (n_low, n_mid, n_high), and
    how mid was cut."""
    score = score or ranked.columns[1]
    total = len(ranked)
    n_low, n_mid, n_high = sizes
    values = ranked[score].to_numpy(dtype=np.float64)
    if mid_rule == "rum":
        mid, cut = np.lexsort((ranked["id"].to_numpy(), np.abs(values - 0.5)))[:n_mid], "rum"
    else:
        start, cut = _mid_start(ranked["hardness"].to_numpy(), values, n_low, n_mid, n_high)
        mid = np.arange(start, start + n_mid)
    return {"low": np.arange(n_low), "mid": mid, "high": np.arange(total - n_high, total)}, cut


def _level(
    ranked: pd.DataFrame, level: str, n: int, mid_rule: str, score: str | None
) -> tuple[np.ndarray, dict]:
    """Ranks of one level's samples and the manifest fields of its ties (module doc)."""
    total = len(ranked)
    if level not in LEVELS:
        raise ForgetSetError(f"unknown level {level!r}; known: {LEVELS}")
    if level == "mix":
        windows, cut = level_windows(ranked, (n // 3, n // 3, n - 2 * (n // 3)), mid_rule, score)
        ranks = np.concatenate(list(windows.values()))
        if len(np.unique(ranks)) != n:
            raise ForgetSetError(f"mix of {n} overlaps itself: the ranking has only {total} samples")
    else:
        if n > total:
            raise ForgetSetError(f"level {level!r} asks for {n} samples but only {total} have a finite score")
        windows, cut = level_windows(ranked, (n, n, n), mid_rule, score)
        ranks = windows[level]
    hard = ranked["hardness"].to_numpy()
    values = ranked[score or ranked.columns[1]].to_numpy(dtype=np.float64)

    def block(r: np.ndarray) -> float | None:  # the tied hardness of ranks `r` when they all share one value
        return float(hard[r[0]]) if len(r) and hard[r].min() == hard[r].max() else None

    own = block(ranks)
    tie_block = None
    if own is not None:
        tie_block = {
            "value": float(values[ranks[0]]),
            "size": int(np.searchsorted(hard, own, "right") - np.searchsorted(hard, own, "left")),
        }
    prefix = f"{score}_" if score else ""
    if level == "mix":
        tied = {}
        for part, r in windows.items():
            if len(r) and block(r) is not None:
                tied.setdefault(block(r), []).append(part)
        same = [
            f"{prefix}mix ({' and '.join(parts)} thirds share one tie block)"
            for parts in tied.values()
            if len(parts) > 1
        ]
    else:
        same = (
            []
            if own is None
            else [
                f"{prefix}{other}"
                for other in ("low", "mid", "high")
                if other != level and block(windows[other]) == own
            ]
        )
    info = {
        "score_range": [float(values[ranks].min()), float(values[ranks].max())],
        "tie_block": tie_block,
        "mid_cut": cut if level in ("mid", "mix") else None,
        "same_population_as": same,
    }
    return ranks, info


def level_set(
    ranked: pd.DataFrame, level: str, n: int, mid_rule: str = "quantile", score: str | None = None
) -> np.ndarray:
    """The ids of one level of a ranking (see module doc)."""
    ranks, _ = _level(ranked, level, n, mid_rule, score)
    return np.sort(ranked["id"].to_numpy()[ranks])


def entanglement_set(scores: pd.DataFrame, level: str, n: int) -> np.ndarray:
    """es_<level>: `n` samples around the middle of RUM's slice (0-based index `ES_LEVELS[level]`) of the
    centroid_distance ranking."""
    ranked = rank_by_hardness(scores, "centroid_distance")
    slices = np.array_split(ranked["id"].to_numpy(), ES_SLICES)
    members = slices[ES_LEVELS[level]]
    if n > len(members):
        raise ForgetSetError(
            f"forget_sets.size: es_{level} asks for {n} samples but slice {ES_LEVELS[level]} (0-based) of {ES_SLICES} holds only "
            f"{len(members)} ({len(ranked)} samples with a finite centroid_distance)"
        )
    start = len(members) // 2 - n // 2
    return np.sort(members[start : start + n])


def entanglement_score(embeddings: np.ndarray, forget: np.ndarray) -> float:
    """SPEC's entanglement score of a forget set (boolean mask over rows) against its retain set.

    ES = [mean_R ||z - mu_R||^2 + mean_F ||z - mu_F||^2] / [(||mu_R - mu||^2 + ||mu_F - mu||^2) / 2],
    mu = (mu_R + mu_F) / 2. Higher = more entangled.
    """
    z = embeddings.astype(np.float64)
    forget = np.asarray(forget, dtype=bool)
    zr, zf = z[~forget], z[forget]
    if len(zr) == 0 or len(zf) == 0:
        raise ValueError("entanglement score needs a non-empty forget set and a non-empty retain set")
    mu_r, mu_f = zr.mean(0), zf.mean(0)
    mu = (mu_r + mu_f) / 2
    within = ((zr - mu_r) ** 2).sum(1).mean() + ((zf - mu_f) ** 2).sum(1).mean()
    between = 0.5 * (((mu_r - mu) ** 2).sum() + ((mu_f - mu) ** 2).sum())
    return float(within / between)


def risk_ranked_set(scores: pd.DataFrame, n: int) -> np.ndarray:
    """The `n` samples of highest privacy_risk, most exposed first (ties by id)."""
    ranked = rank_by_hardness(scores, "privacy_risk")
    if n > len(ranked):
        raise ForgetSetError(
            f"forget_sets.size: risk_ranked asks for {n} samples but only {len(ranked)} have a finite privacy_risk"
        )
    order = np.lexsort((ranked["id"].to_numpy(), -ranked["hardness"].to_numpy()))
    return ranked["id"].to_numpy()[order[:n]]


def class_set(scores: pd.DataFrame, class_id: int | None) -> np.ndarray:
    """Every sample of class `class_id`."""
    if class_id is None:
        raise ForgetSetError("forget_sets.class_id is null: no class forget set to build")
    labels = scores["label"].to_numpy()
    ids = np.sort(scores["id"].to_numpy()[labels == class_id])
    if len(ids) == 0:
        raise ForgetSetError(
            f"forget_sets.class_id: class {class_id} has no training samples (labels: {sorted(set(labels.tolist()))})"
        )
    if len(ids) == len(labels):
        raise ForgetSetError(
            f"forget_sets.class_id: class {class_id} is the whole train set; the retain set would be empty"
        )
    return ids


def build(
    name: str,
    scores: pd.DataFrame,
    size: float = 0.03,
    seed: int = 0,
    mid_rule: str = "quantile",
    class_id: int | None = None,
) -> tuple[np.ndarray, dict]:
    """The ids of forget set `name` and the manifest of how they were built.

    Ids are sorted, except for risk_ranked (rank order, most exposed first; manifest `ordered_by`).
    """
    family, level = parse_name(name)
    try:  # a null id would otherwise become int64's minimum in the cast below
        check_ids(scores["id"], f"forget set {name!r}: the scores table")
    except IdError as err:
        raise ForgetSetError(str(err)) from None
    manifest = {"name": name, "level": level, "seed": None, "mid_rule": None, "ordered_by": None}
    if family == "class":
        ids = class_set(scores, class_id)
        manifest.update(rule="class", score=None, class_id=class_id, size_rule="class size")
    else:
        n = resolve_size(size, len(scores))
        manifest["size_rule"] = f"forget_sets.size = {size}"
        if family == "random":
            ids = random_set(scores["id"].to_numpy(), n, seed)
            manifest.update(rule="random", score=None, seed=seed)
        elif family == "entanglement":
            ids = entanglement_set(scores, level, n)
            manifest.update(
                rule="entanglement",
                score="centroid_distance",
                slice_index=ES_LEVELS[level],
                slice_indexing="0-based",
                slices=ES_SLICES,
            )
        elif family == "risk_ranked":
            ids = risk_ranked_set(scores, n)
            manifest.update(rule="risk_ranked", score="privacy_risk", ordered_by="privacy_risk descending")
        else:
            ranked = rank_by_hardness(scores, family, tie_seed=seed)
            ranks, ties = _level(ranked, level, n, mid_rule, family)
            ids = np.sort(ranked["id"].to_numpy()[ranks])
            manifest.update(
                rule="level",
                score=family,
                seed=seed,
                ties="seeded random order",
                mid_rule=mid_rule if level in ("mid", "mix") else None,
                **ties,
            )
    manifest["size"] = int(len(ids))
    return ids.astype(np.int64), manifest


def names(cfg: dict) -> list[str]:
    """The forget sets a config asks for: 'random', '<score>_<level>' for each level of each score,
    es_low / es_mid / es_high, risk_ranked and class."""
    out = ["random"] if cfg["random"] else []
    out += [f"{score}_{level}" for score, levels in cfg["by_score"].items() for level in levels]
    out += [f"es_{level}" for level in ES_LEVELS] if cfg.get("entanglement") else []
    out += ["risk_ranked"] if cfg.get("risk_ranked") else []
    out += ["class"] if cfg.get("class_id") is not None else []
    return out


def replicate_seed(base: int, replicate: int) -> int:
    """The seed of a replicate's forget sets: `forget_sets.seed` and the study seed, mixed."""
    return int(np.random.SeedSequence([base, replicate]).generate_state(1)[0])


def params_of(name: str, cfg: dict) -> dict:
    """The config values that one forget set depends on (so that changing another's reruns nothing here)."""
    family, level = parse_name(name)
    if family == "class":
        return {"class_id": cfg["class_id"]}
    params = {"size": cfg["size"]}
    if family not in ("entanglement", "risk_ranked"):  # random sets, and level sets' tie-break
        params["seed"] = cfg["seed"]
    if family not in ("entanglement", "risk_ranked") and level in ("mid", "mix"):
        params["mid_rule"] = cfg["mid_rule"]
    return params


def validate_ids(ids: np.ndarray, train_ids: np.ndarray, name: str = "forget set") -> np.ndarray:
    """Refuse a forget set with no samples, null or non-integer ids (by row, before any cast),
    duplicates, or ids outside the train set; return the ids as int64."""
    try:
        ids = check_ids(ids, name)
    except IdError as err:
        raise ForgetSetError(str(err)) from None
    if ids.size == 0:
        raise ForgetSetError(f"{name}: no samples")
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ForgetSetError(f"{name}: duplicate ids, e.g. {uniq[counts > 1][:5].tolist()}")
    outside = np.setdiff1d(uniq, train_ids)
    if outside.size:
        raise ForgetSetError(
            f"{name}: {outside.size} ids are not in the train set, e.g. {outside[:5].tolist()}"
        )
    return ids
