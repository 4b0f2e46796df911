"""Occlusion: slide a grey (baseline) window over the image and watch the class score.

* `occlusion_map` is captum's `Occlusion.attribute` for one image: each pixel's score is
  the mean, over the windows that cover it, of f(x) - f(x with that window occluded),
  where f is the target's logit. It returns one value per input value, (C, H, W).
* `occlusion_probability` is the lecture slides' picture (Zeiler & Fergus 2014): the
  softmax probability of the target class with the occluder at each position, (h', w').

Window positions follow captum: along each dimension of size n, a window w with stride
s starts at 0, s, 2s, ... for ceil((n - w) / s) + 1 positions, so the last window may be
cut by the border. The stride may not exceed the window (where the window is smaller than
the image), so every pixel is covered. Occluded images are built and evaluated in batches.

Both functions put the model in eval mode and leave it there (dropout and batch-norm
updates would make the map random and change the model). Draw the results with
`plot_occlusion` and `plot_occlusion_probability`.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch
from torch import Tensor, nn

from ._common import single_image


def occlusion_map(
    model: nn.Module,
    image: Tensor,
    target: int,
    window: Sequence[int],
    stride: int | Sequence[int],
    baseline: float | Tensor = 0.0,
    batch_size: int = 64,
) -> Tensor:
    """Occlusion attribution of one image for the target's logit (captum's semantics).

    image: one image, (C, H, W) or (1, C, H, W), on the model's device.
    target: class index, 0 <= target < the number of logits.
    window: (c, h, w) occluder shape, as captum's `sliding_window_shapes` (c = C occludes
        all channels at once); an (h, w) pair is short for (C, h, w).
    stride: (sc, sh, sw), as captum's `strides`, or one int for every dimension; an
        (sh, sw) pair is short for (C, sh, sw).
    baseline: the value occluded pixels take: a number, or a tensor broadcastable to
        (C, H, W) (e.g. the data set's mean image).
    batch_size: occluded images per forward pass.
    Returns attributions with the image's shape and dtype ((C, H, W) or (1, C, H, W));
    positive where hiding the pixel lowers the target's logit.
    """
    # BEGIN ANSWER hw4.Q1
    x = single_image(image)  # (1, C, H, W)
    shape = tuple(x.shape[1:])
    window, stride = _window_and_stride(window, stride, shape)
    covers = [_coverage(n, w, s, x.device) for n, w, s in zip(shape, window, stride)]  # (P_d, n_d) each
    fill = _baseline(baseline, x)
    model.eval()
    with torch.no_grad():
        reference = _target_scores(model(x), target)  # (1,)
        diffs = torch.cat([reference - _target_scores(model(batch), target)
                           for batch in _occluded(x, fill, covers, batch_size)])  # (P,)
    diffs = diffs.reshape(*(len(c) for c in covers)).to(x.dtype)  # (P_c, P_h, P_w)
    cover_c, cover_h, cover_w = (c.to(x.dtype) for c in covers)
    total = torch.einsum("abc,ai,bj,ck->ijk", diffs, cover_c, cover_h, cover_w)  # (C, H, W)
    count = torch.einsum("ai,bj,ck->ijk", cover_c, cover_h, cover_w)  # windows per pixel
    return (total / count).reshape(image.shape)
    # END ANSWER


def occlusion_probability(
    model: nn.Module,
    image: Tensor,
    target: int,
    window: Sequence[int],
    stride: int | Sequence[int],
    baseline: float | Tensor = 0.0,
    batch_size: int = 64,
) -> Tensor:
    """Softmax probability of `target` with the occluder at each position (the slides' map).

    image: one image, (C, H, W) or (1, C, H, W). window: (h, w), or (C, h, w) covering all
    C channels. stride: (sh, sw), (C, sh, sw) or one int. Positions as in `occlusion_map`.
    Returns (h', w') in the image's dtype: entry [i, j] is the probability with the window's
    top-left corner at (i * sh, j * sw); h' = ceil((H - h) / sh) + 1, likewise w'.
    """
    # BEGIN ANSWER hw4.Q1
    x = single_image(image)
    shape = tuple(x.shape[1:])
    window, stride = _window_and_stride(window, stride, shape)
    if window[0] != shape[0]:
        raise ValueError(
            f"occlusion_probability occludes all {shape[0]} channels at once; got a window of "
            f"{window[0]} channels; give window=(h, w) or ({shape[0]}, h, w)"
        )
    covers = [_coverage(n, w, s, x.device) for n, w, s in zip(shape, window, stride)]
    fill = _baseline(baseline, x)
    model.eval()
    with torch.no_grad():
        _target_scores(model(x), target)  # validates the target before the long part
        probabilities = torch.cat([
            _target_scores(model(batch).softmax(dim=1), target)
            for batch in _occluded(x, fill, covers, batch_size)
        ])
    return probabilities.reshape(len(covers[1]), len(covers[2])).to(x.dtype)
    # END ANSWER


# ---------------------------------------------------------------------------------------
# Window positions
# ---------------------------------------------------------------------------------------


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Captum's window positions along one dimension: 0, s, 2s, ... (ceil((n - w) / s) + 1)."""
    # BEGIN ANSWER hw4.Q1
    return [i * stride for i in range(math.ceil((size - window) / stride) + 1)]
    # END ANSWER


def _coverage(size: int, window: int, stride: int, device) -> Tensor:
    """(P, size) bool: entry [p, i] says whether window position p covers pixel i."""
    starts = torch.tensor(window_starts(size, window, stride), device=device)[:, None]  # (P, 1)
    pixels = torch.arange(size, device=device)[None, :]  # (1, size)
    return (pixels >= starts) & (pixels < starts + window)


def _window_and_stride(window, stride, shape) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Check and complete window and stride to one int per image dimension (C, H, W)."""
    channels = shape[0]
    window = _ints(window, "window")
    if len(window) == 2:
        window = (channels, *window)
    if isinstance(stride, int) and not isinstance(stride, bool):
        stride = (stride,) * 3
    stride = _ints(stride, "stride")
    if len(stride) == 2:
        stride = (channels, *stride)
    if len(window) != 3 or len(stride) != 3:
        raise ValueError(
            f"window and stride need 3 entries (c, h, w) or 2 (h, w); got window={window}, stride={stride}"
        )
    if any(v < 1 for v in (*window, *stride)):
        raise ValueError(f"window and stride entries must be >= 1; got window={window}, stride={stride}")
    if any(w > n for w, n in zip(window, shape)):
        raise ValueError(
            f"window {window} is larger than the image {shape} (C, H, W); use a window no larger than the image"
        )
    for w, s, n, dim in zip(window, stride, shape, "CHW"):
        if w < n and s > w:
            raise ValueError(
                f"stride {s} along {dim} exceeds the window {w}: pixels between windows would never be "
                "occluded (captum refuses this too); use a stride no larger than the window"
            )
    return window, stride


def _ints(values, name: str) -> tuple[int, ...]:
    if isinstance(values, int) and not isinstance(values, bool):
        raise ValueError(f"{name} must be a tuple such as (3, 8, 8), got {values!r}")
    try:
        values = tuple(values)
    except TypeError:
        raise ValueError(f"{name} must be a tuple of ints, got {values!r}") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{name} must hold ints, got {values!r}")
    return values


# ---------------------------------------------------------------------------------------
# Occluded batches and scores
# ---------------------------------------------------------------------------------------


def _baseline(baseline, x: Tensor) -> Tensor:
    """The occluder's fill as a tensor broadcastable to x (1, C, H, W)."""
    if isinstance(baseline, Tensor):
        fill = baseline.to(device=x.device, dtype=x.dtype)
        try:
            torch.broadcast_shapes(fill.shape, x.shape)
        except RuntimeError:
            raise ValueError(
                f"baseline of shape {tuple(baseline.shape)} does not broadcast to the image {tuple(x.shape[1:])}; "
                "give a number or a tensor of shape (C, H, W)"
            ) from None
        return fill
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return torch.tensor(float(baseline), device=x.device, dtype=x.dtype)
    raise ValueError(f"baseline must be a number or a tensor, got {type(baseline).__name__}")


def _occluded(x: Tensor, fill: Tensor, covers: list[Tensor], batch_size: int) -> Iterator[Tensor]:
    """Batches (B, C, H, W) of x with one window replaced by `fill` each, in the order of
    positions (channel position slowest, column position fastest)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    cover_c, cover_h, cover_w = covers
    counts = (len(cover_c), len(cover_h), len(cover_w))
    total = math.prod(counts)
    for first in range(0, total, batch_size):
        index = torch.arange(first, min(first + batch_size, total), device=x.device)
        pc, rest = index // (counts[1] * counts[2]), index % (counts[1] * counts[2])
        ph, pw = rest // counts[2], rest % counts[2]
        mask = (cover_c[pc][:, :, None, None] & cover_h[ph][:, None, :, None]
                & cover_w[pw][:, None, None, :])  # (B, C, H, W)
        yield torch.where(mask, fill, x)


def _target_scores(output: Tensor, target) -> Tensor:
    """output[:, target] for a (N, K) model output; a bad target is a ValueError."""
    if not isinstance(output, Tensor) or output.dim() != 2:
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise ValueError(f"expected the model to return logits of shape (N, K), got {shape}")
    if isinstance(target, Tensor) and target.numel() == 1:
        target = int(target.item())
    classes = output.shape[1]
    if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < classes:
        raise ValueError(f"target {target!r} is out of range: the model has {classes} classes (0..{classes - 1})")
    return output[:, target]
