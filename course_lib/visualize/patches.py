"""Images that activate a neuron: the k strongest units of one channel over a set of
images, each with the input box its receptive field covers (Zeiler & Fergus 2014;
Girshick et al. 2014). Draw the crops with `course_lib.visualize.plot_top_patches`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..arithmetic import receptive_field
from ..device import eval_mode
from ._common import check_batch, check_channel, named_layer, record


@dataclass(frozen=True)
class Patch:
    """One strong unit: `images[image_index]` cropped to `box` made it fire `activation`.

    position: the unit's (row, col) in the layer's output map (() for a Linear unit).
    box: ((row_first, row_stop), (col_first, col_stop)), the input pixels the unit sees,
         clipped to the image: crop with `image[:, r0:r1, c0:c1]`.
    """

    image_index: int
    position: tuple[int, ...]
    activation: float
    box: tuple[tuple[int, int], ...]


def top_activating_patches(
    model: nn.Module,
    images: Tensor,
    layer: str,
    channel: int,
    k: int = 9,
    *,
    max_per_image: int | None = 1,
    batch_size: int = 64,
) -> list[Patch]:
    """The k units of `channel` in `layer` with the largest activations over `images`.

    images: (N, C, H, W) on the model's device (one image needs `unsqueeze(0)`).
    layer: a leaf module's name (a conv, ReLU or pool; its receptive field comes from
        `course_lib.arithmetic.receptive_field`). A Linear layer's unit sees the whole image.
    max_per_image: at most this many units per image (1: k different images, as on the
        slides; None: no limit, so neighbouring units of one image may fill the list).
    Returns up to k `Patch`es, strongest first (fewer when there are fewer units). Runs in
    eval mode without gradients; modes are restored afterwards.
    """
    check_batch(images, "images")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if max_per_image is not None and max_per_image < 1:
        raise ValueError(f"max_per_image must be >= 1 or None, got {max_per_image}")
    field = _field(model, images, layer)
    values, image_index, positions = _candidates(model, images, layer, channel, k, max_per_image, batch_size)
    order = _strongest_first(values, k)
    size = tuple(images.shape[2:])
    patches = []
    for i in order.tolist():
        position = tuple(positions[i].tolist())
        patches.append(Patch(int(image_index[i]), position, float(values[i]), field.box(position, size)))
    return patches


def _strongest_first(values: Tensor, k: int) -> Tensor:
    """Indices (at most k,) of the k largest of `values` (M,), largest first; a tie keeps
    the candidates' order."""
    # BEGIN ANSWER hw4.Q5
    return values.argsort(descending=True, stable=True)[:k]
    # END ANSWER


def _field(model, images, layer):
    fields = receptive_field(model, tuple(images.shape[1:]))
    if layer not in fields:
        named_layer(model, layer)  # an unknown name lists the valid ones
        raise ValueError(
            f"layer {layer!r} is not a leaf module, so its receptive field is not tracked; "
            f"name a leaf module: {', '.join(fields)}"
        )
    if fields[layer].field is None:
        raise ValueError(
            f"the receptive field of layer {layer!r} is unknown (see arithmetic.summarize(...).uncounted); "
            "name a layer of convolutions, pools and pointwise modules"
        )
    return fields[layer].field


def _candidates(model, images, layer, channel, k, max_per_image, batch_size):
    """The strongest units per batch (enough to hold the overall top k): values (M,),
    image indices (M,), positions (M, spatial dims)."""
    # BEGIN ANSWER hw4.Q5
    values, indices, positions = [], [], []
    with torch.no_grad(), eval_mode(model):
        for first in range(0, len(images), batch_size):
            out = record(model, images[first:first + batch_size], [layer])[layer]  # (B, C', ...)
            if out.dim() < 2:
                raise ValueError(f"layer {layer!r} gives shape {tuple(out.shape)}; need (N, C, ...)")
            maps = out[:, check_channel(channel, out.shape[1], layer)]  # (B, ...)
            spatial = tuple(maps.shape[1:])
            flat = maps.reshape(len(maps), -1)  # (B, units)
            per_image = flat.shape[1] if max_per_image is None else min(max_per_image, flat.shape[1])
            top_values, top_units = flat.topk(per_image, dim=1)  # (B, per_image)
            batch_values, order = top_values.reshape(-1).topk(min(k, top_values.numel()))
            rows = order // per_image
            units = top_units.reshape(-1)[order]
            values.append(batch_values.cpu())
            indices.append((rows + first).cpu())
            positions.append(_unravel(units.cpu(), spatial))
    # END ANSWER
    return torch.cat(values), torch.cat(indices), torch.cat(positions)


def _unravel(units: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Flat indices (M,) -> positions (M, len(shape)) in a map of `shape` (row-major)."""
    coords = []
    for size in reversed(shape):
        coords.append(units % size)
        units = units // size
    return torch.stack(coords[::-1], dim=1) if coords else torch.zeros(len(units), 0, dtype=torch.long)
