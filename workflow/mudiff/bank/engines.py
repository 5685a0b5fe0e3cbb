"""Many models of one architecture trained as one: the two engines of the bank.

An engine holds the stacked parameters of G models (leading dimension G) and gives, for a batch
per model, the gradient of sum_k mean_i CE(model_k(x_ki), y_ki): each model's own mean-loss
gradient, since the models share no parameter.

- `VmapEngine`: any model, BatchNorm included. One `torch.func.vmap` over `functional_call`,
  differentiated by autograd; bf16 autocast on GPU. The models' buffers (BatchNorm's running mean
  and variance and its batch count) are stacked like their parameters and vmapped with in_dims=0,
  so that each model keeps its own: a gradient step runs the models in train mode (batch
  statistics, and BatchNorm updates each model's running statistics in place, as training it
  alone does), scoring in eval mode (the running statistics), as `mudiff.training.predict` runs a
  model alone. (vmap refuses an in-place update of an unbatched tensor by a batched one: buffers
  shared by the group could not be updated, which is why functorch's "Patching Batch Norm" page
  suggests dropping running statistics; batched buffers need no patch.)
- `StackedMLP`: the fast path for a plain perceptron (Flatten, then Linear and ReLU alternating,
  ending in a Linear). A step is one `baddbmm` per layer forward and two `bmm` per layer
  backward, the backward written out by hand; the vmap graph adds biases separately, copies
  transposes and accumulates gradients op by op. The gradient is the same as autograd's (tests
  compare them). fp32 on every device: the perceptrons this fits are small, and their bank is
  cheap on a GPU anyway. Kept because it pays: the default study's bank (digits, K = 256 in
  groups of 26, batch 128) on two CPU cores, both engines alternating in one process, trained
  1.57x faster (ratio of median times over 9 rounds of 2 epochs: 2.02 s against 3.17 s; every
  round 1.34x-1.80x) and 1.51x over the whole 20 epochs (14.9 s against 22.4 s, 2 rounds).
  The two engines' banks agree to max |delta phi| 0.155 (float rounding), with identical
  correctness on every train and test sample.

Both are updated by `mudiff.training.SGD` (torch.optim.SGD's arithmetic) over the stacked tensors.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state

from mudiff.device import autocast


def _mean_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(G,) mean cross-entropy of each model over its own batch."""
    g = logits.shape[0]
    return F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="none").view(g, -1).mean(1)


class VmapEngine:
    """G models of any architecture, stacked and vmapped; autograd gradients. Parameters and buffers
    (BatchNorm's running statistics) are each model's own, leading dimension G."""

    def __init__(self, models: list[nn.Module], device: torch.device):
        params, buffers = stack_module_state(models)
        self.device = device
        self._names = list(params)
        self.params = [params[k].detach().to(device).requires_grad_() for k in self._names]
        self._buffer_names = list(buffers)
        # Updated in place by BatchNorm in train mode (through vmap's batched views of them).
        self.buffers = [buffers[k].detach().to(device) for k in self._buffer_names]
        self._base = copy.deepcopy(models[0]).to("meta")

        def one(p, b, x):
            state = (dict(zip(self._names, p)), dict(zip(self._buffer_names, b)))
            return functional_call(self._base, state, (x,))

        self._own = torch.vmap(one, in_dims=(0, 0, 0))  # each model on its own batch
        self._shared = torch.vmap(one, in_dims=(0, 0, None))  # every model on the same batch

    def gradients(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """x: (G, B, *image), y: (G, B). In train mode: BatchNorm normalises by each model's batch
        statistics and updates its running statistics, once per call."""
        self._base.train()
        with autocast(self.device):
            logits = self._own(self.params, self.buffers, x)
        return list(torch.autograd.grad(_mean_losses(logits, y).sum(), self.params))

    @torch.inference_mode()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(G, B, C) float32 logits of every model on one batch x: (B, *image), in eval mode
        (BatchNorm's running statistics; nothing is updated)."""
        self._base.eval()
        with autocast(self.device):
            return self._shared(self.params, self.buffers, x).float()

    def state_dict(self, k: int) -> dict[str, torch.Tensor]:
        """Model k's parameters and buffers, by name (views of the stacked tensors)."""
        names = self._names + self._buffer_names
        return {n: t[k].detach() for n, t in zip(names, self.params + self.buffers)}


def perceptron_layers(model: nn.Module) -> list[nn.Linear] | None:
    """The Linear layers of `model` when it is Flatten, then Linear and ReLU alternating, ending in a
    Linear (in module order), with biases; else None. Callers confirm the order on a batch."""
    leaves = [m for m in model.modules() if not list(m.children())]
    if leaves and isinstance(leaves[0], nn.Flatten):
        leaves = leaves[1:]
    linear = leaves[0::2]
    if not leaves or len(leaves) % 2 == 0 or not all(isinstance(m, nn.ReLU) for m in leaves[1::2]):
        return None
    if not all(isinstance(m, nn.Linear) and m.bias is not None for m in linear):
        return None
    return linear


class StackedMLP:
    """G perceptrons as stacked weights (G, out, in) and biases (G, out); the backward by hand."""

    def __init__(self, models: list[nn.Module], device: torch.device):
        layers = [perceptron_layers(m) for m in models]
        if any(ls is None for ls in layers):
            raise ValueError("StackedMLP needs Flatten -> (Linear -> ReLU)* -> Linear models")
        self.device = device
        self.params: list[torch.Tensor] = []
        for i in range(len(layers[0])):
            self.params.append(torch.stack([ls[i].weight.detach() for ls in layers]).to(device))
            self.params.append(torch.stack([ls[i].bias.detach() for ls in layers]).to(device))

    @classmethod
    def fits(cls, model: nn.Module, example: torch.Tensor) -> bool:
        """True when `model` is a perceptron this engine computes exactly (checked on `example`)."""
        if perceptron_layers(model) is None:
            return False
        try:
            with torch.no_grad():
                ours = cls([model], torch.device("cpu"))._forward(example.flatten(1)[None])[-1][0]
                theirs = model(example)
        except RuntimeError:  # the layers do not chain as listed, or the model wants other input
            return False
        return ours.shape == theirs.shape and torch.allclose(ours, theirs, atol=1e-5, rtol=1e-4)

    def _forward(self, h: torch.Tensor) -> list[torch.Tensor]:
        """Activations of every layer for h: (G, B, D) or (B, D); the last entry is the logits."""
        acts = [h]
        n = len(self.params) // 2
        for i in range(n):
            w, b = self.params[2 * i], self.params[2 * i + 1]
            if h.dim() == 2:  # one batch for every model
                h = torch.baddbmm(b[:, None], h.expand(len(b), *h.shape), w.transpose(1, 2))
            else:
                h = torch.baddbmm(b[:, None], h, w.transpose(1, 2))
            if i < n - 1:
                h = h.relu_()
            acts.append(h)
        return acts

    def gradients(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """x: (G, B, *image), y: (G, B). d(sum_k mean_i CE)/d params, in `params` order."""
        with torch.no_grad():
            acts = self._forward(x.flatten(2))
            logits = acts.pop()
            # d mean_i CE / d logits = (softmax - onehot) / B, per model. The softmax written out:
            # torch's kernel over a last dimension of ~10 classes is ~5x slower on the CPU.
            delta = logits.sub_(logits.amax(-1, keepdim=True)).exp_()
            delta.div_(delta.sum(-1, keepdim=True))
            delta.scatter_add_(-1, y[..., None], torch.full_like(delta[..., :1], -1.0)).div_(y.shape[1])
            grads: list[torch.Tensor] = []
            for i in reversed(range(len(self.params) // 2)):
                inputs = acts[i]
                grads += [delta.sum(1), torch.bmm(delta.transpose(1, 2), inputs)]  # bias, weight
                if i:
                    # through the ReLU: zero where its output is 0 (autograd's own kernel, no mask tensor)
                    delta = torch.ops.aten.threshold_backward(
                        torch.bmm(delta, self.params[2 * i]), inputs, 0.0
                    )
            return grads[::-1]

    @torch.inference_mode()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(G, B, C) logits of every model on one batch x: (B, *image)."""
        return self._forward(x.flatten(1))[-1]


ENGINES = {"stacked_mlp": StackedMLP, "vmap": VmapEngine}


def choose_engine(model: nn.Module, example: torch.Tensor, fast: bool = True) -> str:
    """'stacked_mlp' where that path computes `model` exactly (and `fast`), else 'vmap'."""
    return "stacked_mlp" if fast and StackedMLP.fits(model, example.cpu()) else "vmap"
