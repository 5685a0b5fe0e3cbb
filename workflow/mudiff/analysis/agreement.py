"""Agreement between methods on which samples are hard: pairwise Spearman and Kendall's W.

Input is a matrix D of shape (n samples, m methods) of difficulty on one forget set, restricted
to the samples every method measured. Rankings are average ranks (ties share their mean).

Kendall's W with the tie correction: W = 12 S / (m^2 (n^3 - n) - m sum_j T_j), S the sum of
squared deviations of the samples' rank sums from their mean, T_j = sum over tie groups of
rater j of (t^3 - t). Since sum_i (r_ij - (n+1)/2)^2 = (n^3 - n - T_j) / 12 for average ranks,
the denominator equals 12 m sum_ij (r_ij - (n+1)/2)^2, which needs no grouping of ties and
vectorizes over bootstrap replicates. W is 1 when all methods rank alike and 0 when rank sums
are all equal (two exactly opposite rankings); (mW - 1)/(m - 1) is the mean pairwise
Spearman (exactly so without ties).

Intervals: percentile bootstrap over samples (seeded), replicates vectorized in chunks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

CHUNK_ELEMENTS = 4_000_000  # replicates per chunk x n x m stays a few tens of MB


def _ranks(d: np.ndarray) -> np.ndarray:
    """Average ranks along the samples axis (second-to-last)."""
    return rankdata(d, axis=-2)


def _spearman_from_ranks(r: np.ndarray) -> np.ndarray:
    """(..., n, m) ranks -> (..., m, m) Pearson correlation of ranks (Spearman)."""
    c = r - r.mean(axis=-2, keepdims=True)
    cov = np.einsum("...ia,...ib->...ab", c, c)
    sd = np.sqrt(np.einsum("...aa->...a", cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        return cov / (sd[..., :, None] * sd[..., None, :])


def _w_from_ranks(r: np.ndarray) -> np.ndarray:
    """(..., n, m) average ranks -> (...) Kendall's W with the tie correction."""
    n, m = r.shape[-2], r.shape[-1]
    sums = r.sum(axis=-1)
    s = ((sums - sums.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)
    spread = ((r - (n + 1) / 2) ** 2).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / (m * spread)


def spearman_matrix(d: np.ndarray) -> np.ndarray:
    """(m, m) Spearman correlations between the columns of d (n, m)."""
    return _spearman_from_ranks(_ranks(np.asarray(d, dtype=np.float64)))


def kendalls_w(d: np.ndarray) -> float:
    """Kendall's W of the m columns (raters) of d (n items, m raters), tie-corrected."""
    return float(_w_from_ranks(_ranks(np.asarray(d, dtype=np.float64))))


def bootstrap(d: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap replicates over samples: Spearman matrices (B, m, m) and W values (B,)."""
    d = np.asarray(d, dtype=np.float64)
    n, m = d.shape
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    chunk = max(1, CHUNK_ELEMENTS // max(1, n * m))
    rho, w = [], []
    for start in range(0, n_boot, chunk):
        r = _ranks(d[idx[start : start + chunk]])
        rho.append(_spearman_from_ranks(r))
        w.append(_w_from_ranks(r))
    return np.concatenate(rho), np.concatenate(w)


def _interval(x: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.nanpercentile(x, [50 * (1 - level), 50 * (1 + level)], axis=0)
    return lo, hi


def agreement(
    d: np.ndarray, methods: list[str], n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """Long table: one `spearman` row per pair of methods and one `kendall_w` row, with intervals.

    Also a `mean_spearman` row: (mW - 1)/(m - 1), the mean pairwise Spearman, with the interval
    from the same replicates.
    """
    d = np.asarray(d, dtype=np.float64)
    n, m = d.shape
    rho = spearman_matrix(d)
    w = kendalls_w(d)
    boot_rho, boot_w = bootstrap(d, n_boot, seed)
    rho_lo, rho_hi = _interval(boot_rho, level)
    w_lo, w_hi = _interval(boot_w, level)
    mean_rho = lambda x: (m * x - 1) / (m - 1)  # noqa: E731
    rows = [
        {
            "stat": "spearman",
            "method_a": methods[a],
            "method_b": methods[b],
            "value": rho[a, b],
            "ci_low": rho_lo[a, b],
            "ci_high": rho_hi[a, b],
        }
        for a in range(m)
        for b in range(a + 1, m)
    ]
    rows.append(
        {"stat": "kendall_w", "method_a": None, "method_b": None, "value": w, "ci_low": w_lo, "ci_high": w_hi}
    )
    rows.append(
        {
            "stat": "mean_spearman",
            "method_a": None,
            "method_b": None,
            "value": mean_rho(w),
            "ci_low": mean_rho(w_lo),
            "ci_high": mean_rho(w_hi),
        }
    )
    out = pd.DataFrame(rows)
    out["n_samples"], out["n_methods"] = n, m
    return out


def agreement_table(
    difficulty: pd.DataFrame,
    exclude: tuple[str, ...] = ("retrain",),
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """`agreement` per forget set over its methods, on the samples every method measured.

    `difficulty` has columns method, forget_set, id, difficulty. Retrain is excluded by default:
    it never trains on F, so its per-sample values are the bank's OUT noise, not a method's effort.
    """
    tables = []
    rows = difficulty[~difficulty["method"].isin(exclude)]
    for forget_set, group in rows.groupby("forget_set", sort=True):
        wide = group.pivot(index="id", columns="method", values="difficulty").dropna()
        if wide.shape[1] < 2 or wide.shape[0] < 3:
            continue
        table = agreement(wide.to_numpy(), list(wide.columns), n_boot, seed, level)
        table.insert(0, "forget_set", forget_set)
        tables.append(table)
    cols = [
        "forget_set",
        "stat",
        "method_a",
        "method_b",
        "value",
        "ci_low",
        "ci_high",
        "n_samples",
        "n_methods",
    ]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=cols)
