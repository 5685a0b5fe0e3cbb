"""Predict hard samples from pre-unlearning scores only.

Label: a sample is *hard* in a run when it is censored (never forgotten) or its difficulty is in
the run's top `hard_share` (default a third). Features: the score columns of the scores table,
all computed from the target model, its training dynamics or the bank, never from an unlearning
outcome. Per method, samples are pooled over forget sets; folds are stratified by label and
grouped by id (StratifiedGroupKFold), so that a sample in two forget sets never sits in both a
training and a test fold. Models: a standardised logistic regression and a histogram gradient-
boosted tree (which takes missing values as they are; the regression gets median imputation).

Reported: out-of-fold ROC AUC with a percentile-bootstrap interval, ROC curve points, and which
features carry it: the regression's standardised coefficients (fit on all rows) and the tree's
permutation importance (drop in held-out AUC, averaged over folds).

Each method is fit twice, on two feature sets (`FEATURE_SETS`): all features, and without the
features that share their source with the difficulty measure. Difficulty (steps to forget and
the U-LiRA residual) is read off the model bank's phi, and so are the bank scores (`FROM_BANK`:
memorization, privacy_risk); a predictor that leans on them partly predicts the bank from the
bank. The gap between the two AUCs is what the predictor owes to that shared source.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from mudiff.scores import FROM_BANK

OUTCOME_COLUMNS = {
    "residual",
    "steps_to_forget",
    "censored",
    "max_epoch",
    "difficulty",
    "hard",
    "method",
    "forget_set",
}

# The predictor's feature sets, in the order shown: every feature, and every feature but those
# read off the model bank, the source of the difficulty measure itself.
FEATURE_SETS = ("all_features", "without_bank_features")
SHARED_SOURCE_REASON = (
    "computed from the model bank, the same source as the difficulty measure "
    "(steps to forget and the U-LiRA residual use the bank's phi)"
)


def feature_sets(features: list[str], shared_source: tuple[str, ...] = FROM_BANK) -> dict[str, dict]:
    """Per entry of `FEATURE_SETS`: the features it uses and those it drops."""
    dropped = [f for f in features if f in shared_source]
    return {
        "all_features": {"features": list(features), "dropped": []},
        "without_bank_features": {
            "features": [f for f in features if f not in shared_source],
            "dropped": dropped,
        },
    }


def hard_labels(difficulty: pd.DataFrame, hard_share: float = 1 / 3) -> pd.Series:
    """True where censored or in the top `hard_share` of difficulty within its run."""
    q = difficulty.groupby(["method", "forget_set"])["difficulty"].transform(
        lambda d: d.quantile(1 - hard_share)
    )
    return (difficulty["censored"].astype(bool) | (difficulty["difficulty"] > q)).rename("hard")


def models(seed: int) -> dict:
    return {
        "logistic_regression": make_pipeline(
            SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=2000)
        ),
        "gradient_boosting": HistGradientBoostingClassifier(
            max_iter=100, learning_rate=0.1, max_leaf_nodes=15, random_state=seed
        ),
    }


def auc_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of `p` (scores) against the matching row of `y` (labels), by Mann-Whitney on ranks."""
    y = np.asarray(y, dtype=bool)
    ranks = rankdata(np.asarray(p, dtype=np.float64), axis=1)
    n1 = y.sum(axis=1)
    n0 = y.shape[1] - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((ranks * y).sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def auc_bootstrap(
    y: np.ndarray, p: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of ROC AUC over samples, replicates vectorized."""
    y = np.asarray(y, dtype=bool)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_boot, len(y)))
    auc = auc_rows(y[idx], np.asarray(p, dtype=np.float64)[idx])
    lo, hi = np.nanpercentile(auc, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def permutation_auc_drop(
    model, x: pd.DataFrame, y: np.ndarray, n_repeats: int = 5, seed: int = 0
) -> np.ndarray:
    """Per feature: held-out AUC minus the mean AUC with that feature's column shuffled (`n_repeats`
    times). All shuffled copies are scored in one `predict_proba` call."""
    y = np.asarray(y, dtype=bool)
    rng = np.random.default_rng(seed)
    base = auc_rows(y[None], model.predict_proba(x)[:, 1][None])[0]
    values = x.to_numpy(dtype=np.float64)
    n, d = values.shape
    copies = np.repeat(values[None], d * n_repeats, axis=0)  # (d * repeats, n, d)
    for j in range(d):
        for r in range(n_repeats):
            copies[j * n_repeats + r, :, j] = values[rng.permutation(n), j]
    shuffled = pd.DataFrame(copies.reshape(-1, d), columns=x.columns)
    p = model.predict_proba(shuffled)[:, 1].reshape(d * n_repeats, n)
    auc = auc_rows(np.broadcast_to(y, p.shape), p).reshape(d, n_repeats)
    return base - auc.mean(axis=1)


def cross_validate(
    x: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    folds: int = 5,
    seed: int = 0,
    n_boot: int = 1000,
    n_repeats: int = 5,
) -> dict:
    """Out-of-fold AUC, interval, ROC points and feature importance of each model."""
    bad = OUTCOME_COLUMNS & set(x.columns)
    if bad:
        raise ValueError(
            f"predictor features must be pre-unlearning scores; got outcome columns {sorted(bad)}"
        )
    x = x.loc[:, x.notna().any()]  # a score missing everywhere carries nothing
    y = np.asarray(y, dtype=bool)
    splits = list(StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y, groups))
    result = {}
    for name, model in models(seed).items():
        oof = np.full(len(y), np.nan)
        importance = np.zeros(x.shape[1])
        for train, test in splits:
            fitted = model.fit(x.iloc[train], y[train])
            oof[test] = fitted.predict_proba(x.iloc[test])[:, 1]
            if name == "gradient_boosting":
                importance += permutation_auc_drop(fitted, x.iloc[test], y[test], n_repeats, seed) / len(
                    splits
                )
        if name == "logistic_regression":
            importance = model.fit(x, y)[-1].coef_[0]
        fpr, tpr, _ = roc_curve(y, oof)
        lo, hi = auc_bootstrap(y, oof, n_boot, seed)
        result[name] = {
            "auc": float(roc_auc_score(y, oof)),
            "auc_ci_low": lo,
            "auc_ci_high": hi,
            "roc_fpr": fpr.tolist(),
            "roc_tpr": tpr.tolist(),
            "importance_kind": "standardised coefficient"
            if name == "logistic_regression"
            else "permutation AUC drop",
            "importance": dict(zip(x.columns, map(float, importance))),
        }
    return result


def predict_hard(
    difficulty: pd.DataFrame,
    scores: pd.DataFrame,
    features: list[str],
    hard_share: float = 1 / 3,
    exclude: tuple[str, ...] = ("retrain",),
    folds: int = 5,
    seed: int = 0,
    n_boot: int = 1000,
    threads: int = 1,
    shared_source: tuple[str, ...] = FROM_BANK,
) -> dict:
    """Per method (pooled over its forget sets): label balance, and per feature set (`FEATURE_SETS`:
    all features, and without those in `shared_source`, the bank scores) the features used and
    dropped and `cross_validate`'s results, on the same folds; `{"skipped": why}` in place of a
    set's results where it has no feature left.

    `threads` caps OpenMP/BLAS threads: the boosted tree's OpenMP pool on a shared, busy machine
    spins for seconds per fit on a few hundred samples (100x slower than one thread).
    """
    bad = OUTCOME_COLUMNS & set(features)
    if bad:
        raise ValueError(
            f"predictor features must be pre-unlearning scores; got outcome columns {sorted(bad)}"
        )
    keep = ["method", "forget_set", "id", "censored", "difficulty"]
    rows = difficulty.loc[~difficulty["method"].isin(exclude) & difficulty["difficulty"].notna(), keep].copy()
    rows["hard"] = hard_labels(rows, hard_share)
    joined = rows.merge(scores[["id", *features]], on="id", how="left", validate="many_to_one")
    out = {}
    for method, g in joined.groupby("method", sort=True):
        y = g["hard"].to_numpy()
        k = min(folds, int(y.sum()), int((~y).sum()), g["id"].nunique())
        if k < 2:
            out[method] = {
                "n": len(g),
                "n_hard": int(y.sum()),
                "skipped": "too few hard or easy samples for cross-validation",
            }
            continue
        out[method] = {"n": len(g), "n_hard": int(y.sum()), "folds": k, "hard_share": hard_share}
        for name, fs in feature_sets(features, shared_source).items():
            if not fs["features"]:
                out[method][name] = {**fs, "skipped": "no feature left"}
                continue
            if name != "all_features" and not fs["dropped"]:  # nothing dropped: the same fit
                out[method][name] = {**out[method]["all_features"], **fs}
                continue
            with threadpool_limits(limits=threads):
                result = cross_validate(g[fs["features"]], y, g["id"].to_numpy(), k, seed, n_boot)
            out[method][name] = {**fs, **result}
    return out
