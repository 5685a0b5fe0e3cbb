"""Forget sets: random; low / mid / high / mix by any score, direction-aware; entanglement
es_low / es_mid / es_high; risk_ranked; class.

Samples are ranked by hardness (the score times its SPEC direction), ties broken in a random
order seeded by `forget_sets.seed`, so "high" is always the hardest. Levels are quantile bins by default: the N easiest, the N around
the median, the N hardest; `mid_rule="rum"` takes RUM's original "N closest to 0.5".

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

from mudiff.scores import hardness

LEVELS = ("low", "mid", "high", "mix")
ES_SLICES = 15
ES_LEVELS = {"low": 3, "mid": 12, "high": 14}  # 0-based slice indices, as RUM's code (group_index)
SPECIAL = {f"es_{level}": ("entanglement", level) for level in ES_LEVELS} | {
    "risk_ranked": ("risk_ranked", None), "class": ("class", None)}


class ForgetSetError(ValueError):
    """A forget set that cannot be built as asked (empty, too large, unknown score or level)."""


def resolve_size(size: float, n_train: int) -> int:
    """A share below 1 is a fraction of the train set; otherwise a count."""
    n = int(round(size * n_train)) if size < 1 else int(size)
    if n < 1:
        raise ForgetSetError(f"forget_sets.size {size} gives an empty forget set on {n_train} training samples")
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
            f"forget set {name!r} is neither 'random' nor '<score>_<level>' with level in {LEVELS} nor one of {sorted(SPECIAL)}")
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
        raise ForgetSetError(f"score {score!r} is not in the scores table; it has {sorted(set(scores.columns) - {'id', 'label'})}")
    table = scores[["id", score]].copy()
    table["hardness"] = hardness(score, table[score].to_numpy(dtype=np.float64))
    table = table[np.isfinite(table["hardness"])]
    if tie_seed is None:
        return table.sort_values(["hardness", "id"], kind="stable").reset_index(drop=True)
    ids = np.sort(table["id"].to_numpy())
    tie_rank = pd.Series(np.random.default_rng(tie_seed).permutation(len(ids)), index=ids)  # per id, whatever the row order
    table["tie"] = tie_rank.loc[table["id"].to_numpy()].to_numpy()
    return table.sort_values(["hardness", "tie"], kind="stable").drop(columns="tie").reset_index(drop=True)


def level_set(ranked: pd.DataFrame, level: str, n: int, mid_rule: str = "quantile", score: str | None = None) -> np.ndarray:
    """The ids of one level of a ranking (see module doc)."""
    total = len(ranked)
    if level == "mix":
        thirds = [n // 3, n // 3, n - 2 * (n // 3)]
        parts = [level_set(ranked, lvl, k, mid_rule, score) for lvl, k in zip(("low", "mid", "high"), thirds)]
        ids = np.concatenate(parts)
        if len(np.unique(ids)) != n:
            raise ForgetSetError(f"mix of {n} overlaps itself: the ranking has only {total} samples")
        return np.sort(ids)
    if level in ("low", "mid", "high") and n > total:
        raise ForgetSetError(f"level {level!r} asks for {n} samples but only {total} have a finite score")
    if level == "low":
        return np.sort(ranked["id"].to_numpy()[:n])
    if level == "high":
        return np.sort(ranked["id"].to_numpy()[total - n :])
    if level == "mid":
        if mid_rule == "rum":
            values = ranked[score].to_numpy(dtype=np.float64)
            order = np.lexsort((ranked["id"].to_numpy(), np.abs(values - 0.5)))
            return np.sort(ranked["id"].to_numpy()[order[:n]])
        start = total // 2 - n // 2
        return np.sort(ranked["id"].to_numpy()[start : start + n])
    raise ForgetSetError(f"unknown level {level!r}; known: {LEVELS}")


def entanglement_set(scores: pd.DataFrame, level: str, n: int) -> np.ndarray:
    """es_<level>: `n` samples around the middle of RUM's slice (0-based index `ES_LEVELS[level]`) of the
    centroid_distance ranking."""
    ranked = rank_by_hardness(scores, "centroid_distance")
    slices = np.array_split(ranked["id"].to_numpy(), ES_SLICES)
    members = slices[ES_LEVELS[level]]
    if n > len(members):
        raise ForgetSetError(
            f"forget_sets.size: es_{level} asks for {n} samples but slice {ES_LEVELS[level]} (0-based) of {ES_SLICES} holds only "
            f"{len(members)} ({len(ranked)} samples with a finite centroid_distance)")
    start = len(members) // 2 - n // 2
    return np.sort(members[start : start + n])


def risk_ranked_set(scores: pd.DataFrame, n: int) -> np.ndarray:
    """The `n` samples of highest privacy_risk, most exposed first (ties by id)."""
    ranked = rank_by_hardness(scores, "privacy_risk")
    if n > len(ranked):
        raise ForgetSetError(f"forget_sets.size: risk_ranked asks for {n} samples but only {len(ranked)} have a finite privacy_risk")
    order = np.lexsort((ranked["id"].to_numpy(), -ranked["hardness"].to_numpy()))
    return ranked["id"].to_numpy()[order[:n]]


def class_set(scores: pd.DataFrame, class_id: int | None) -> np.ndarray:
    """Every sample of class `class_id`."""
    if class_id is None:
        raise ForgetSetError("forget_sets.class_id is null: no class forget set to build")
    labels = scores["label"].to_numpy()
    ids = np.sort(scores["id"].to_numpy()[labels == class_id])
    if len(ids) == 0:
        raise ForgetSetError(f"forget_sets.class_id: class {class_id} has no training samples (labels: {sorted(set(labels.tolist()))})")
    if len(ids) == len(labels):
        raise ForgetSetError(f"forget_sets.class_id: class {class_id} is the whole train set; the retain set would be empty")
    return ids


def build(name: str, scores: pd.DataFrame, size: float = 0.03, seed: int = 0, mid_rule: str = "quantile",
          class_id: int | None = None) -> tuple[np.ndarray, dict]:
    """The ids of forget set `name` and the manifest of how they were built.

    Ids are sorted, except for risk_ranked (rank order, most exposed first; manifest `ordered_by`).
    """
    family, level = parse_name(name)
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
            manifest.update(rule="entanglement", score="centroid_distance", slice_index=ES_LEVELS[level],
                            slice_indexing="0-based", slices=ES_SLICES)
        elif family == "risk_ranked":
            ids = risk_ranked_set(scores, n)
            manifest.update(rule="risk_ranked", score="privacy_risk", ordered_by="privacy_risk descending")
        else:
            ids = level_set(rank_by_hardness(scores, family, tie_seed=seed), level, n, mid_rule, family)
            manifest.update(rule="level", score=family, seed=seed, ties="seeded random order",
                            mid_rule=mid_rule if level in ("mid", "mix") else None)
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
    """Refuse a forget set with no samples, duplicates, or ids outside the train set."""
    ids = np.asarray(ids)
    if ids.size == 0:
        raise ForgetSetError(f"{name}: no samples")
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ForgetSetError(f"{name}: duplicate ids, e.g. {uniq[counts > 1][:5].tolist()}")
    outside = np.setdiff1d(uniq, train_ids)
    if outside.size:
        raise ForgetSetError(f"{name}: {outside.size} ids are not in the train set, e.g. {outside[:5].tolist()}")
    return ids
