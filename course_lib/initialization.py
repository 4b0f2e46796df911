"""Weight initialization schemes and the activation statistics that explain them.

`init_(module, scheme)` initializes every Conv and Linear layer of a module:

| scheme           | weight                                   | std                        |
|------------------|------------------------------------------|----------------------------|
| "zero"           | all zeros (symmetry is never broken)     | 0                          |
| "normal"         | N(0, std^2) with a fixed small std       | std (default 0.01)         |
| "xavier_uniform" | U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))                     |
| "xavier_normal"  | N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out))                    |
| "kaiming_uniform"| U(-a, a), a = gain * sqrt(3 / fan_in)                                 |
| "kaiming_normal" | N(0, s^2), s = gain / sqrt(fan_in)  (He et al. 2015; gain sqrt(2) for ReLU) |

Xavier uses gain 1 by default, its paper's choice for tanh-like units. Kaiming uses the
gain of `nonlinearity` (sqrt(2) for ReLU): each ReLU halves the variance, and the gain
doubles it back, so activations keep their scale through any depth. Biases start at zero.
PyTorch's own default for Conv/Linear is *not* He init (it is kaiming_uniform with
a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

SCHEMES = ("zero", "normal", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal")
_GAINS = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 0.75}
_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "linear": nn.Identity}


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a Linear (out, in) or Conv (out, in/groups, *kernel) weight."""
    if weight.dim() < 2:
        raise ValueError(
            f"fans need a weight with at least 2 dimensions (out, in, ...), got shape {tuple(weight.shape)}"
        )
    receptive = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def gain(nonlinearity: str) -> float:
    """The gain that keeps the variance of activations after `nonlinearity`."""
    if nonlinearity not in _GAINS:
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}; use one of {sorted(_GAINS)}")
    return _GAINS[nonlinearity]


def init_weight_(weight: torch.Tensor, scheme: str, std=0.01, nonlinearity="relu", generator=None) -> torch.Tensor:
    """Fill one weight tensor in place with `scheme` (see the module docstring)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; use one of {SCHEMES}")
    fan_in, fan_out = fans(weight)
    with torch.no_grad():
        if scheme == "zero":
            return weight.zero_()
        if scheme == "normal":
            return weight.normal_(0.0, std, generator=generator)
        # BEGIN ANSWER hw2.Q5
        if scheme.startswith("xavier"):
            scale = math.sqrt(2.0 / (fan_in + fan_out))  # gain 1
        else:
            scale = gain(nonlinearity) / math.sqrt(fan_in)
        # END ANSWER
        if scheme.endswith("uniform"):
            bound = math.sqrt(3.0) * scale  # U(-a, a) has std a / sqrt(3)
            return weight.uniform_(-bound, bound, generator=generator)
        return weight.normal_(0.0, scale, generator=generator)


def init_(module: nn.Module, scheme: str, std=0.01, nonlinearity="relu", generator=None) -> nn.Module:
    """Initialize every Conv and Linear layer inside `module` in place; biases to zero.

    scheme: one of SCHEMES; std: for "normal"; nonlinearity: the gain for kaiming_*
    ("relu", "tanh", "sigmoid", "linear", "selu"); generator: a torch.Generator on the
    weights' device, for reproducible draws. Returns the module.
    """
    layers = [m for m in module.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    if not layers:
        raise ValueError(f"{type(module).__name__} has no Linear or Conv layer to initialize")
    for layer in layers:
        init_weight_(layer.weight, scheme, std, nonlinearity, generator)
        if layer.bias is not None:
            with torch.no_grad():
                layer.bias.zero_()
    return module


def deep_mlp(depth: int, width: int, activation="relu", in_features=None, out_features=None,
             batch_norm=False) -> nn.Sequential:
    """A deep fully connected network for initialization experiments.

    depth Linear layers of `width` units, each followed by [BatchNorm1d] and the
    activation ("relu", "tanh", "sigmoid", "linear"); `in_features` defaults to width;
    `out_features` adds a final Linear classifier. Layers are named fc1, act1, fc2, ...
    so activation statistics read by depth. Input (N, in_features).
    """
    if depth < 1 or width < 1:
        raise ValueError(f"depth and width must be >= 1, got depth={depth}, width={width}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; use one of {sorted(_ACTIVATIONS)}")
    layers = []
    for i in range(1, depth + 1):
        layers.append((f"fc{i}", nn.Linear(in_features or width if i == 1 else width, width)))
        if batch_norm:
            layers.append((f"bn{i}", nn.BatchNorm1d(width)))
        layers.append((f"act{i}", _ACTIVATIONS[activation]()))
    if out_features:
        layers.append(("out", nn.Linear(width, out_features)))
    return nn.Sequential(OrderedDict(layers))


def weight_gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Frobenius norm of the gradient of the mean cross-entropy with respect to the weight of
    every Linear layer of `model`, input side first (biases left out).

    x: (N, in_features); y: (N,) class indices. Returns (L,) for L Linear layers, on x's
    device. Gradients come from `torch.autograd.grad`: the parameters' `.grad` are untouched.
    """
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    if not weights:
        raise ValueError(f"{type(model).__name__} has no Linear layer")
    # BEGIN ANSWER hw2.Q6
    loss = nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, weights)
    return torch.stack([g.norm() for g in grads])
    # END ANSWER


# the initializations the lecture compares, as `init_` schemes ("small" is N(0, 0.01^2))
INIT_COMPARISON = {"zero": "zero", "small": "normal", "xavier": "xavier_normal", "he": "kaiming_normal"}


def gradient_norms_by_init(depth: int, seed: int, width=64, batch=128, classes=10, small_std=0.01) -> dict:
    """Weight-gradient norms by depth of one ReLU MLP under each initialization of
    `INIT_COMPARISON` ("W = 0 may be bad"; "magnitudes of gradients").

    The model is `deep_mlp(depth, width, "relu", out_features=classes)`, every Linear layer
    initialized with the scheme (biases zero); the batch is x ~ N(0, 1) of shape (batch,
    width) with uniform random labels, all drawn from `torch.Generator().manual_seed(seed)`.
    Returns {name: (depth + 1,) tensor of `weight_gradient_norms`}.
    """
    # BEGIN ANSWER hw2.Q7
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, width, generator=generator)
    y = torch.randint(classes, (batch,), generator=generator)
    norms = {}
    for name, scheme in INIT_COMPARISON.items():
        model = init_(deep_mlp(depth, width, "relu", out_features=classes), scheme, std=small_std, generator=generator)
        norms[name] = weight_gradient_norms(model, x, y)
    return norms
    # END ANSWER


@dataclass
class LayerStats:
    """Statistics of one layer's output over a batch: mean, std and (optionally) values."""

    name: str
    type: str
    mean: float
    std: float
    values: torch.Tensor | None = None


def activation_stats(model: nn.Module, x: torch.Tensor, layers=None, keep_values=False) -> list[LayerStats]:
    """Mean and standard deviation of the output of every leaf layer (or the named ones).

    x: a batch for the model, e.g. (N, D) for `deep_mlp`. Forward hooks are removed
    afterwards; the model runs without gradients in the mode it is in. keep_values keeps
    each output (flattened, on the CPU) for histograms.
    """
    modules = dict(model.named_modules())
    names = layers if layers is not None else [n for n, m in modules.items() if n and not list(m.children())]
    missing = [n for n in names if n not in modules]
    if missing:
        raise ValueError(f"no layer named {missing}; valid names: {[n for n in modules if n]}")
    stats: list[LayerStats] = []

    def record(name):
        def hook(module, inputs, output):
            out = output.detach().float()
            stats.append(LayerStats(name, type(module).__name__, out.mean().item(), out.std().item(),
                                    out.flatten().cpu() if keep_values else None))
        return hook

    with contextlib.ExitStack() as hooks, torch.no_grad():  # every hook is removed on exit, even on error
        for n in names:
            hooks.enter_context(modules[n].register_forward_hook(record(n)))
        model(x)
    return stats
