"""Where this project deviates from SPEC: the science list the report ends with (README's "Deviations
from SPEC" is the same list, word for word; a test keeps them so). Data only."""

DEVIATIONS = [
    "Entanglement sets (es_low/mid/high) take the configured forget-set size from the middle of each of RUM's slices "
    "(0-based indices 3, 12, 14 of 15 by centroid_distance, as RUM's code), rather than the whole slice, so that every "
    "family has the same size.",
    "grad_norm and curvature differentiate with respect to the model's normalised input, not raw pixels.",
    "privacy_risk: LiRA Gaussian standard deviations are floored at 0.01 (logit units); NaN where fewer than two IN "
    "or OUT models.",
    "Non-retrain methods use a constant learning rate.",
    "random_label and salun: one epoch is a pass over F ∪ R with F's labels redrawn once per run among the wrong classes "
    "(the SalUn code draws them uniformly, true class included); default lr 0.01 (SPEC's small-model value; 0.1 for CIFAR ResNets is config).",
    "salun: gradients outside the saliency mask are zeroed (as in the SalUn code); weight decay still shrinks those weights.",
    "scrub: gamma 0.99 and beta 0.001 (SCRUB code defaults; SPEC gives none); a fresh SGD optimizer for every max and min pass.",
    "RUM and RSU: each step's retain set is train minus everything forgotten up to that step; methods whose epoch is a pass "
    "over R get their epochs split over the steps (at least 1 each, so short budgets can grow slightly), neggrad keeps its "
    "epochs per step; refinement is into thirds of F by the score, not by the global low/mid/high cut-offs.",
    "RSU: ranks by privacy_risk when the scores table has it, otherwise by the target's per-sample loss (logged); "
    "its control orders run as variants of the method (`rsu:<method>@<label>`).",
    "Training dynamics are read off the training forward pass (the model mid-epoch, on augmented views when augmentation "
    "is on), not from a separate evaluation pass.",
    "MIA: a logistic regression on the logit of the true-class confidence (a monotone transform of it), "
    "classes balanced by subsampling.",
    "The bank's perceptron engine (`mudiff/bank/engines.py`, used for `mlp`) computes in fp32 on every device, also on a GPU "
    "where the vmap engine uses bf16 autocast: the perceptrons are small and their bank is cheap there. Its gradient is "
    "autograd's (tests compare them); the bank's results do not depend on the engine beyond fp32 rounding.",
    "Method settings are tuned once, on the seed-0 target and random forget sets (`python -m mudiff.tuning`), and "
    "shared by every seed; the shipped studies override SPEC's CIFAR defaults with them (config/tuning/<study>.csv).",
    "Replicate seeds share the data split (digits: `data.split_seed`; the other datasets' official split), so intervals "
    "over seeds cover training, bank, forget-set draws and unlearning, not the choice of test set.",
]
