"""Population membership inference (SPEC): how much of the forget set still looks like training data.

A logistic-regression attack on the true-class confidence is trained with retain samples as
members against test samples as non-members (classes balanced by subsampling the larger).
MIA = the share of the forget set predicted non-member: retrain scores high on it, a model
that still remembers F scores low. The confidence enters through its logit,
log p - log(1 - p), a monotone transform that keeps confidences near 1 apart.
"""

from __future__ import annotations

import numpy as np


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    return (np.log(p) - np.log1p(-p))[:, None]


def population_mia(conf_retain: np.ndarray, conf_test: np.ndarray, conf_forget: np.ndarray, seed: int = 0) -> float:
    from sklearn.linear_model import LogisticRegression

    if len(conf_forget) == 0:
        raise ValueError("MIA needs a non-empty forget set")
    rng = np.random.default_rng(seed)
    k = min(len(conf_retain), len(conf_test))
    members = rng.choice(conf_retain, size=k, replace=False)
    non_members = rng.choice(conf_test, size=k, replace=False)
    x = _logit(np.concatenate([members, non_members]))
    y = np.concatenate([np.ones(k), np.zeros(k)])
    attack = LogisticRegression(C=1.0).fit(x, y)
    return float((attack.predict(_logit(conf_forget)) == 0).mean())
