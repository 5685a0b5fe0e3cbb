"""Per-sample unlearning difficulty of one run (one method on one forget set), from the bank.

- `residual`: U-LiRA, the bank's LiRA log-ratio applied to the unlearned model's phi. High =
  the sample still looks like a training member (not forgotten).
- `steps_to_forget`: the first recorded epoch at which phi under the unlearned model falls below
  the median phi of the bank's OUT models for that sample. Epoch 0 (the target, before any
  unlearning) counts: a sample already below its threshold gets 0, so "easy by construction"
  samples are not confused with ones forgotten in the first epoch. A sample never below is
  *censored*: `steps_to_forget` is NaN, `censored` is True and `max_epoch` is the last epoch
  observed (right-censoring time, for survival-style analysis). Only the first crossing counts.
- `difficulty`: one scalar in (0, 1] for ranking (higher = harder): the fractional rank of
  (steps_to_forget with censored as +inf, then residual). Censored samples are thus the hardest,
  ordered among themselves by how member-like they still look; exact ties share their mean rank.
Samples without OUT models in the bank have no threshold (steps NaN, not censored); samples with
fewer than two IN or OUT models have no residual. Either way their difficulty is NaN: unmeasured,
which is not the same as hard.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from mudiff.scores.privacy_risk import lira_log_ratio


def bank_columns(id_train: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Positions of `ids` among the bank's columns (`id_train`); an unknown id is an error."""
    id_train = np.asarray(id_train)
    order = np.argsort(id_train, kind="stable")
    pos = np.searchsorted(id_train, ids, sorter=order)
    pos = np.minimum(pos, len(id_train) - 1)
    cols = order[pos]
    bad = id_train[cols] != ids
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} ids are not in the bank (first: {np.asarray(ids)[bad][:5].tolist()})"
        )
    return cols


def out_median(phi_bank: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per sample, the median phi of the bank models that did not train on it (NaN if none)."""
    out = np.where(np.asarray(mask, dtype=bool), np.nan, np.asarray(phi_bank, dtype=np.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column is a sample without OUT models
        return np.nanmedian(out, axis=0)


def residual(phi_u: np.ndarray, phi_bank: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """U-LiRA log-ratio of the unlearned model on each sample (columns of the bank = samples)."""
    return lira_log_ratio(phi_u, phi_bank, mask)


def steps_to_forget(
    trace: pd.DataFrame, phi_bank: np.ndarray, mask: np.ndarray, id_train: np.ndarray
) -> pd.DataFrame:
    """One row per id of `trace` (columns epoch, id, phi): steps_to_forget, censored, max_epoch."""
    if trace.duplicated(["epoch", "id"]).any():
        raise ValueError(
            "trace records a sample twice at one epoch (a meta-method's epoch counter must run on)"
        )
    wide = trace.pivot(index="epoch", columns="id", values="phi").sort_index()
    if wide.isna().any().any():
        raise ValueError("trace does not record every forget sample at every epoch")
    ids = wide.columns.to_numpy()
    epochs = wide.index.to_numpy()
    threshold = out_median(phi_bank[:, bank_columns(id_train, ids)], mask[:, bank_columns(id_train, ids)])
    below = wide.to_numpy() < threshold[None, :]  # NaN threshold compares False
    ever = below.any(axis=0)
    measured = np.isfinite(threshold)
    steps = np.where(ever, epochs[below.argmax(axis=0)], np.nan).astype(np.float64)
    return pd.DataFrame(
        {
            "id": ids,
            "steps_to_forget": steps,
            "censored": measured & ~ever,
            "max_epoch": np.full(len(ids), epochs.max()),
        }
    )


def difficulty_rank(steps: np.ndarray, censored: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """Fractional rank in (0, 1] of (steps with censored = +inf, residual); NaN where unmeasured."""
    steps = np.where(np.asarray(censored, dtype=bool), np.inf, np.asarray(steps, dtype=np.float64))
    res = np.asarray(residual, dtype=np.float64)
    ok = ~np.isnan(steps) & ~np.isnan(res)
    out = np.full(len(steps), np.nan)
    s, r = steps[ok], res[ok]
    n = len(s)
    if n == 0:
        return out
    order = np.lexsort((r, s))
    s_sorted, r_sorted = s[order], r[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (s_sorted[1:] != s_sorted[:-1]) | (r_sorted[1:] != r_sorted[:-1])
    group = np.cumsum(new) - 1
    position = np.arange(1, n + 1, dtype=np.float64)
    mean_rank = np.bincount(group, weights=position) / np.bincount(group)
    ranks = np.empty(n)
    ranks[order] = mean_rank[group]
    out[ok] = ranks / n
    return out


def difficulty_table(
    trace: pd.DataFrame,
    phi_bank: np.ndarray,
    mask: np.ndarray,
    id_train: np.ndarray,
    phi_u: pd.Series | None = None,
) -> pd.DataFrame:
    """id, residual, steps_to_forget, censored, max_epoch, difficulty of one run.

    The unlearned model's phi defaults to the trace's last epoch: the trace's last record is
    taken after the method's last epoch, i.e. on the returned model. `phi_u` (a Series by id)
    overrides it, e.g. when the model was re-evaluated separately.
    """
    steps = steps_to_forget(trace, phi_bank, mask, id_train)
    ids = steps["id"].to_numpy()
    if phi_u is None:
        last = trace[trace["epoch"] == trace["epoch"].max()]
        phi_u = last.set_index("id")["phi"]
    cols = bank_columns(id_train, ids)
    steps["residual"] = residual(
        phi_u.reindex(ids).to_numpy(dtype=np.float64), phi_bank[:, cols], mask[:, cols]
    )
    steps["difficulty"] = difficulty_rank(
        steps["steps_to_forget"].to_numpy(), steps["censored"].to_numpy(), steps["residual"].to_numpy()
    )
    return steps[["id", "residual", "steps_to_forget", "censored", "max_epoch", "difficulty"]]
