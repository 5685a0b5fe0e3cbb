"""Forget sets: random, and low / mid / high / mix by any score, direction-aware.

Samples are ranked by hardness (the score times its SPEC direction), ties broken by id, so
"high" is always the hardest. Levels are quantile bins by default: the N easiest, the N around
the median, the N hardest; `mid_rule="rum"` takes RUM's original "N closest to 0.5".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mudiff.scores import hardness

LEVELS = ("low", "mid", "high", "mix")


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
    """'random' -> ('random', None); 'memorization_high' -> ('memorization', 'high')."""
    if name == "random":
        return "random", None
    score, _, level = name.rpartition("_")
    if not score or level not in LEVELS:
        raise ForgetSetError(f"forget set {name!r} is neither 'random' nor '<score>_<level>' with level in {LEVELS}")
    return score, level


def random_set(ids: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(np.asarray(ids), size=n, replace=False))


def rank_by_hardness(scores: pd.DataFrame, score: str) -> pd.DataFrame:
    """Rows with a finite score, easiest first (ties broken by id)."""
    if score not in scores.columns:
        raise ForgetSetError(f"score {score!r} is not in the scores table; it has {sorted(set(scores.columns) - {'id', 'label'})}")
    table = scores[["id", score]].copy()
    table["hardness"] = hardness(score, table[score].to_numpy(dtype=np.float64))
    table = table[np.isfinite(table["hardness"])]
    return table.sort_values(["hardness", "id"], kind="stable").reset_index(drop=True)


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


def build(name: str, scores: pd.DataFrame, size: float, seed: int = 0, mid_rule: str = "quantile") -> tuple[np.ndarray, dict]:
    """The ids of forget set `name` and the manifest of how they were built."""
    n = resolve_size(size, len(scores))
    family, level = parse_name(name)
    if family == "random":
        ids = random_set(scores["id"].to_numpy(), n, seed)
    else:
        ids = level_set(rank_by_hardness(scores, family), level, n, mid_rule, family)
    manifest = {
        "name": name, "rule": "random" if family == "random" else "level", "score": None if family == "random" else family,
        "level": level, "size": int(len(ids)), "seed": seed, "mid_rule": mid_rule if level in ("mid", "mix") else None,
    }
    return ids.astype(np.int64), manifest


def names(cfg: dict) -> list[str]:
    """The forget sets a config asks for: 'random' and '<score>_<level>' for each level of each score."""
    out = ["random"] if cfg["random"] else []
    out += [f"{score}_{level}" for score, levels in cfg["by_score"].items() for level in levels]
    return out


def params_of(name: str, cfg: dict) -> dict:
    """The config values that one forget set depends on (so that changing another's reruns nothing here)."""
    family, level = parse_name(name)
    params = {"size": cfg["size"]}
    if family == "random":
        params["seed"] = cfg["seed"]
    if level in ("mid", "mix"):
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
