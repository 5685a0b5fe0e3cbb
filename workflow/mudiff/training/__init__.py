"""Training and prediction primitives shared by the target, the bank, retrain and every unlearning
method, one module per concern:

- `optim`: `Recipe` (what one SGD run needs), `SGD` (torch's SGD arithmetic over any tensors) and
  the learning-rate schedules (`lr_lambda`);
- `augmentation`: random crop and flip of a uint8 batch on its device;
- `quantities`: SPEC's per-sample quantities of logits (`per_sample`: p_y, phi, correctness, ...);
- `prediction`: `predict`, `prediction_table`, `embed`, `accuracy` (eval mode);
- `sampler`: `Sampler`, endless shuffled mini-batches;
- `dynamics`: `Dynamics`, per-epoch per-sample records of the training forward pass;
- `loop`: `fit`, the training loop, and its default objective.

Every public name is importable from `mudiff.training` itself.
"""

from mudiff.training.augmentation import augment
from mudiff.training.dynamics import Dynamics
from mudiff.training.loop import Objective, cross_entropy, fit
from mudiff.training.optim import SGD, Recipe, lr_lambda, sgd
from mudiff.training.prediction import accuracy, embed, predict, prediction_table
from mudiff.training.quantities import per_sample
from mudiff.training.sampler import Sampler

__all__ = [
    "SGD",
    "Dynamics",
    "Objective",
    "Recipe",
    "Sampler",
    "accuracy",
    "augment",
    "cross_entropy",
    "embed",
    "fit",
    "lr_lambda",
    "per_sample",
    "predict",
    "prediction_table",
    "sgd",
]
