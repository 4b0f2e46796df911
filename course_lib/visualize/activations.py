"""Activations: what each layer outputs for an input, and which ReLU channels never fire.

* `activations(model, x, layers)` -> {layer name: output}, recorded with forward hooks.
* `dead_channels(model, data, layer)` -> the fraction (and mask) of channels whose output
  is never > 0 on a whole data set ("dead ReLUs").

Draw one image's maps with `course_lib.visualize.plot_feature_maps`.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn

from ..device import eval_mode as evaluating  # `eval_mode` is this module's keyword
from ..device import module_device
from ._common import as_name_list, batches, check_batch, record


def activations(
    model: nn.Module, x: Tensor, layers: str | Sequence[str], *, eval_mode: bool = True
) -> dict[str, Tensor]:
    """Outputs of the named layers for the batch `x`, from one forward pass.

    x: (N, C, H, W) on the model's device (a single image needs `x.unsqueeze(0)`).
    layers: one name or a list of names from `model.named_modules()`, e.g. "features.3";
        an unknown name is a ValueError that lists the valid ones.
    eval_mode: run with dropout off and batch-norm running statistics (default); False
        runs the model in the mode it is in.
    Returns {name: output}, e.g. a conv layer's (N, C_out, H_out, W_out), detached copies
    (safe from later in-place ReLUs). Runs without gradients; the hooks are removed and
    every module is back in its previous train/eval mode afterwards, even on error.
    """
    check_batch(x)
    names = as_name_list(layers)
    with torch.no_grad():
        if eval_mode:
            with evaluating(model):
                return record(model, x, names)
        return record(model, x, names)


class DeadChannels(NamedTuple):
    """Result of `dead_channels`: unpack as `fraction, dead = dead_channels(...)`.

    fraction: dead channels / channels (a float in [0, 1]).
    dead: (C,) bool, True where the channel never fired.
    peak: (C,) the largest value each channel reached over the data set.
    """

    fraction: float
    dead: Tensor
    peak: Tensor


def dead_channels(model: nn.Module, data, layer: str) -> DeadChannels:
    """Which channels of `layer` never fire (output > 0) on any input of `data`.

    data: a DataLoader-like iterable of `x` or `(x, y)` batches, x: (N, C, H, W), or one
        tensor (N, C, H, W); batches are moved to the model's device.
    layer: usually a ReLU (its output is 0 where it does not fire); naming the conv before
        it gives the same answer, since ReLU(z) > 0 exactly where z > 0.
    A channel is dead when its value is <= 0 at every position of every input. The layer's
    output is (N, C, ...) with channels on dimension 1 (a Linear layer's units count as
    channels). Runs in eval mode without gradients; modes are restored afterwards.
    """
    device = module_device(model)
    peak = None
    for x, _ in batches(data):
        out = activations(model, x.to(device), layer)[layer]
        if out.dim() < 2:
            raise ValueError(f"layer {layer!r} gives shape {tuple(out.shape)}; need (N, C, ...) with channels on dim 1")
        batch_peak = out.transpose(0, 1).reshape(out.shape[1], -1).amax(dim=1)  # (C,)
        peak = batch_peak if peak is None else torch.maximum(peak, batch_peak)
    if peak is None:
        raise ValueError("data is empty; give at least one batch")
    dead = peak <= 0
    return DeadChannels(dead.float().mean().item(), dead, peak)
