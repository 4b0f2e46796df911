"""Weights: a convolution's kernels, scaled to [0, 1] so they can be shown as pictures.

First-layer kernels of an RGB network, (F, 3, kh, kw), are shown as F colour images;
deeper kernels, (F, C, kh, kw), as one grey image per (filter, input channel). Draw them
with `course_lib.visualize.plot_filters`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._common import layer_names, named_layer

NORMALIZATIONS = ("filter", "slice", "layer")


def filters(model: nn.Module, layer: str | None = None, *, normalize: str = "filter") -> Tensor:
    """The kernels of a Conv2d layer, min-max scaled to [0, 1] for display.

    layer: the conv layer's name; None takes the model's first nn.Conv2d.
    normalize: "filter" scales each filter (F, :, :, :) on its own, which keeps the balance
        between its colour channels (the usual picture of first-layer filters);
        "slice" scales every (filter, input channel) kernel on its own;
        "layer" uses one scale for the whole layer, so strong and weak filters compare.
        A constant group is shown as 0.5 grey.
    Returns a detached CPU tensor (F, C_in / groups, kh, kw) with values in [0, 1]:
    RGB pictures when C_in is 3 (the first layer), grey ones per channel otherwise.
    """
    weight = _conv_weight(model, layer).detach().to("cpu", torch.float64)  # (F, C, kh, kw)
    if normalize == "filter":
        dims = (1, 2, 3)
    elif normalize == "slice":
        dims = (2, 3)
    elif normalize == "layer":
        dims = (0, 1, 2, 3)
    else:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    low = weight.amin(dim=dims, keepdim=True)
    span = weight.amax(dim=dims, keepdim=True) - low
    scaled = torch.where(span > 0, (weight - low) / span.clamp_min(1e-300), torch.full_like(weight, 0.5))
    return scaled.float()


def _conv_weight(model: nn.Module, layer: str | None) -> Tensor:
    if layer is None:
        first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
        if first is None:
            raise ValueError("the model has no nn.Conv2d layer; filters() shows convolution kernels")
        return first.weight
    module = named_layer(model, layer)
    if not isinstance(module, nn.Conv2d):
        convs = [name for name in layer_names(model) if isinstance(named_layer(model, name), nn.Conv2d)]
        raise ValueError(
            f"layer {layer!r} is a {type(module).__name__}, not an nn.Conv2d; filters() shows "
            f"convolution kernels; the conv layers are: {', '.join(convs) or '(none)'}"
        )
    return module.weight
