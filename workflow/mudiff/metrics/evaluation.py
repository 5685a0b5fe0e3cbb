"""FA, RA, TA and population MIA of one model, and ToW / ToW-MIA against retrain, from tables.

Both take a model's prediction table (one row per split and sample id: p_y, phi, correct), which
the unlearn stage writes once, so evaluation needs neither the models nor torch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mudiff.metrics.mia import population_mia
from mudiff.metrics.tow import tow, tow_mia

PREDICTION_COLUMNS = ("split", "id", "label", "p_y", "phi", "correct")


def model_metrics(predictions: pd.DataFrame, forget_ids: np.ndarray, mia_seed: int = 0) -> dict[str, float]:
    """Accuracies (%) on the forget set F, the retain set R = train minus F, and test; MIA on F."""
    missing = set(PREDICTION_COLUMNS) - set(predictions.columns)
    if missing:
        raise ValueError(f"prediction table lacks columns {sorted(missing)}")
    train = predictions[predictions["split"] == "train"]
    test = predictions[predictions["split"] == "test"]
    in_forget = train["id"].isin(np.asarray(forget_ids)).to_numpy()
    if in_forget.sum() != len(np.unique(forget_ids)):
        raise ValueError(f"{len(np.unique(forget_ids)) - int(in_forget.sum())} forget ids have no prediction")
    correct, conf = train["correct"].to_numpy(dtype=bool), train["p_y"].to_numpy(dtype=np.float64)
    return {
        "FA": 100 * float(correct[in_forget].mean()),
        "RA": 100 * float(correct[~in_forget].mean()),
        "TA": 100 * float(test["correct"].to_numpy(dtype=bool).mean()),
        "MIA": population_mia(
            conf[~in_forget], test["p_y"].to_numpy(dtype=np.float64), conf[in_forget], seed=mia_seed
        ),
    }


def compare(u: dict, r: dict) -> dict[str, float]:
    """ToW and ToW-MIA of an unlearned model's metrics `u` against retrain's `r`."""
    return {
        "ToW": tow(u["FA"], u["RA"], u["TA"], r["FA"], r["RA"], r["TA"]),
        "ToW_MIA": tow_mia(u["MIA"], u["RA"], u["TA"], r["MIA"], r["RA"], r["TA"]),
    }
