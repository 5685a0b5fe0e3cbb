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


def fit_logistic_1d(
    x: np.ndarray, y: np.ndarray, C: float = 1.0, iterations: int = 50
) -> tuple[float, float]:
    """(slope, intercept) of an L2-regularised logistic regression on one feature, by Newton's method.

    The objective is scikit-learn's default (0.5 * slope^2 + C * log-loss, intercept unpenalised),
    solved exactly here: importing scikit-learn costs each evaluation job a second.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    X = np.stack([x, np.ones_like(x)], axis=1)
    w = np.zeros(2)
    reg = np.diag([1.0 / C, 0.0])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ w, -500, 500)))
        grad = X.T @ (p - y) + reg @ w
        hess = (X * (p * (1 - p))[:, None]).T @ X + reg + 1e-12 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(w[0]), float(w[1])


def population_mia(
    conf_retain: np.ndarray, conf_test: np.ndarray, conf_forget: np.ndarray, seed: int = 0
) -> float:
    if len(conf_forget) == 0:
        raise ValueError("MIA needs a non-empty forget set")
    rng = np.random.default_rng(seed)
    k = min(len(conf_retain), len(conf_test))
    members = rng.choice(conf_retain, size=k, replace=False)
    non_members = rng.choice(conf_test, size=k, replace=False)
    x = _logit(np.concatenate([members, non_members])).ravel()
    y = np.concatenate([np.ones(k), np.zeros(k)])
    slope, intercept = fit_logistic_1d(x, y)
    predicted_member = slope * _logit(conf_forget).ravel() + intercept > 0
    return float((~predicted_member).mean())
