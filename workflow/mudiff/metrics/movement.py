"""Did a run move its forget set at all? The inert rule.

A run is *inert* when its forget set's state never changes from epoch 0 (the target, before
unlearning): at no recorded epoch does the share of F whose correctness differs from epoch 0
reach `flip_share` (default 2%: with |F| = 43 one flipped sample is enough). Such a run is no
evidence about unlearning: the report marks it and every cross-method finding leaves it out.
The mean absolute change of phi (logit confidence) is recorded beside it for the reader.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

INERT_FLIP_SHARE = 0.02


def forget_movement(trace: pd.DataFrame, flip_share: float = INERT_FLIP_SHARE) -> dict:
    """Movement of F over a run's trace (columns epoch, id, phi, correct; epoch 0 = before).

    Returns the largest share of F flipped against epoch 0 (`forget_flip_share`), the largest
    mean |phi_e - phi_0| (`forget_phi_shift`), and `inert` (flip share below `flip_share` at every epoch).
    """
    if trace.empty or not (trace["epoch"] == 0).any():
        raise ValueError("trace has no epoch-0 state of the forget set")
    wide_correct = trace.pivot(index="id", columns="epoch", values="correct").astype(float)
    wide_phi = trace.pivot(index="id", columns="epoch", values="phi").astype(float)
    later = [e for e in wide_correct.columns if e != 0]
    if not later:  # a method that recorded no epoch (e.g. RUM whose steps are all 'none') moved nothing
        flips, shift = 0.0, 0.0
    else:
        flips = float(np.abs(wide_correct[later].to_numpy() - wide_correct[[0]].to_numpy()).mean(0).max())
        shift = float(np.nanmax(np.abs(wide_phi[later].to_numpy() - wide_phi[[0]].to_numpy()).mean(0)))
    return {"forget_flip_share": flips, "forget_phi_shift": shift, "inert": bool(flips < flip_share)}
