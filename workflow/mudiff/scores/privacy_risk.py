"""Privacy risk (per-sample LiRA, SPEC): how much more likely the target's phi is under the
models that trained on a sample than under those that did not.

`lira_log_ratio` works for any query model: the target (privacy_risk) or an unlearned model
(U-LiRA, per-sample unlearning verification).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mudiff.scores.inputs import Inputs

MIN_STD = 1e-2  # phi is in logit units; a floor keeps a degenerate fit (all models agree) finite


def _gaussian_fit(
    phi: np.ndarray, side: np.ndarray, min_std: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sample (column): the median of phi over the models on `side`, their standard deviation
    (ddof 0, about their mean, floored at `min_std`) and their count, as the LiRA authors' code
    (`mean_in = np.median(dat_in, 1)`, `std_in = np.std(dat_in, 1)`). Vectorised: the other side
    is NaN, which sorts last, so a column's median sits at ranks (n-1)//2 and n//2 (np.nanmedian
    would loop over the columns once there are 600 models). A column with no model gets NaN."""
    n = side.sum(0)
    if len(phi) == 0:
        nan = np.full(phi.shape[1:], np.nan)
        return nan, nan, n
    on_side = np.sort(np.where(side, phi, np.nan), axis=0)
    lo = np.take_along_axis(on_side, np.maximum(n - 1, 0)[None, :] // 2, axis=0)[0]
    hi = np.take_along_axis(on_side, n[None, :] // 2, axis=0)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.where(n > 0, (lo + hi) / 2, np.nan)
        mean = np.where(side, phi, 0.0).sum(0) / n
        spread = np.sqrt(np.where(side, (phi - mean) ** 2, 0.0).sum(0) / n)
    return centre, np.maximum(spread, min_std), n


def gaussian_logpdf(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return -0.5 * np.log(2 * np.pi * std**2) - (x - mean) ** 2 / (2 * std**2)


def lira_log_ratio(
    phi_query: np.ndarray, phi_bank: np.ndarray, mask: np.ndarray, min_std: float = MIN_STD
) -> np.ndarray:
    """log N(phi_query_i; IN_i) - log N(phi_query_i; OUT_i) for every sample i.

    phi_query: (N,) the queried model's phi; phi_bank: (K, N); mask: (K, N) True where model k
    trained on sample i. IN/OUT are Gaussian fits over the models with / without i, centred on
    the median of phi with the standard deviation as spread (floored at `min_std`), as the LiRA
    authors' code; NaN where a side has fewer than two models.
    """
    phi = np.asarray(phi_bank, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    q = np.asarray(phi_query, dtype=np.float64)
    mu_in, sd_in, n_in = _gaussian_fit(phi, mask, min_std)
    mu_out, sd_out, n_out = _gaussian_fit(phi, ~mask, min_std)
    ratio = gaussian_logpdf(q, mu_in, sd_in) - gaussian_logpdf(q, mu_out, sd_out)
    return np.where((n_in >= 2) & (n_out >= 2), ratio, np.nan)


def privacy_risk(
    phi_target: np.ndarray, phi_bank: np.ndarray, mask: np.ndarray, min_std: float = MIN_STD
) -> np.ndarray:
    """SPEC's privacy_risk: the LiRA log-ratio of the target model (high = exposed)."""
    return lira_log_ratio(phi_target, phi_bank, mask, min_std)


def compute(inputs: Inputs, params: None = None) -> np.ndarray:
    from mudiff.training import per_sample, predict

    phi_target = per_sample(predict(inputs.target, inputs.data, "train"), inputs.y_train)["phi"].cpu().numpy()
    return privacy_risk(phi_target, inputs.bank["phi_train"], inputs.bank["mask"])
