"""Tug-of-war (ToW): how close an unlearned model lands to retrain on forget, retain and test accuracy."""

from __future__ import annotations


def tow(fa_u: float, ra_u: float, ta_u: float, fa_r: float, ra_r: float, ta_r: float) -> float:
    """ToW = (1 - |FA_u - FA_r|/100)(1 - |RA_u - RA_r|/100)(1 - |TA_u - TA_r|/100); accuracies in %."""
    return (1 - abs(fa_u - fa_r) / 100) * (1 - abs(ra_u - ra_r) / 100) * (1 - abs(ta_u - ta_r) / 100)


def tow_mia(mia_u: float, ra_u: float, ta_u: float, mia_r: float, ra_r: float, ta_r: float) -> float:
    """ToW with the forget term replaced by (1 - |MIA_u - MIA_r|); MIA is a share in [0, 1]."""
    return (1 - abs(mia_u - mia_r)) * (1 - abs(ra_u - ra_r) / 100) * (1 - abs(ta_u - ta_r) / 100)
