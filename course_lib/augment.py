"""Data augmentation pipelines and test-time augmentation (TTA).

Training pipelines are `torchvision.transforms.v2` compositions chosen by name:

==============  ===================================================================
name            what it does (after resizing the shorter side to `size` and centre-cropping)
==============  ===================================================================
"none"          nothing else: the deterministic evaluation transform
"flip_crop"     random horizontal flip + a random crop: `crop="padded"` pads by
                `size // 8` pixels (reflect) and crops back (the CIFAR recipe);
                `crop="resized"` is `RandomResizedCrop(size, scale=(0.5, 1))`
"color"         `ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)`
                + `RandomAutocontrast(p=0.5)` (saturation and hue leave one-channel
                images unchanged)
"geometric"     `RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1),
                shear=10)` (rotation, translation, zoom, shear) + a stretch:
                `RandomResizedCrop(size, scale=(0.85, 1), ratio=(0.8, 1.25))`
"randaugment"   `RandAugment(num_ops=2, magnitude=9)`
==============  ===================================================================

Every pipeline takes a float image (C, H, W) in [0, 1] - or a batch (N, C, H, W) - and
returns a float image (C, size, size) in [0, 1]. Extra arguments pass through untouched,
so `image, label = pipe(image, label)` never changes a label. A batch gets ONE draw of
the random parameters (the whole batch is flipped or not); for independent draws apply
the pipeline per sample, as a `Dataset` transform does.

Test-time augmentation (`tta_predict`) runs the model on several views of each image
and merges the outputs; see its docstring for the views and what is returned.

torchvision is imported where a pipeline or a view needs it, not with this module: it
costs about 2.5 s of CPU (its `ops` import `torch._dynamo`), and homeworks 1, 2 and 4,
which import the checkers and through them this module, never use it.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

PIPELINES = ("none", "flip_crop", "color", "geometric", "randaugment")
TTA_VIEWS = ("flip", "multiscale", "tencrop")
TTA_MERGES = ("mean", "gmean")
#: Default scales of the "multiscale" view: resize by each factor, centre-crop back.
DEFAULT_SCALES = (1.0, 1.15, 1.3)
#: Default ten-crop size as a fraction of the shorter image side (224 / 256).
DEFAULT_CROP_FRACTION = 0.875


# ---------------------------------------------------------------------------------------
# Training pipelines
# ---------------------------------------------------------------------------------------


def pipeline(name: str, size: int, *, crop: str = "padded") -> nn.Module:
    """The named training augmentation pipeline (see the module docstring for each name).

    name: one of `PIPELINES`. size: side of the square output images.
    crop: for "flip_crop" only, "padded" (pad `size // 8`, random crop) or "resized"
    (`RandomResizedCrop`, scale (0.5, 1)).
    Returns a callable: image (C, H, W) or (N, C, H, W) float in [0, 1] ->
    (C, size, size) or (N, C, size, size); extra arguments (labels) pass through.
    """
    _check_choice("pipeline name", name, PIPELINES)
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    from torchvision.transforms import v2

    base = [v2.Resize(size, antialias=True), v2.CenterCrop(size)]
    if name == "none":
        extra = []
    elif name == "flip_crop":
        extra = [_random_crop(size, crop), v2.RandomHorizontalFlip(p=0.5)]
    elif name == "color":
        extra = [
            v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1),
            v2.RandomAutocontrast(p=0.5),
        ]
    elif name == "geometric":
        extra = [
            v2.RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=10),
            v2.RandomResizedCrop(size, scale=(0.85, 1.0), ratio=(0.8, 1.25), antialias=True),
        ]
    else:  # randaugment
        extra = [v2.RandAugment(num_ops=2, magnitude=9)]
    return v2.Compose(base + extra)


def _random_crop(size: int, crop: str) -> nn.Module:
    from torchvision.transforms import v2

    _check_choice("crop", crop, ("padded", "resized"))
    if crop == "resized":
        return v2.RandomResizedCrop(size, scale=(0.5, 1.0), antialias=True)
    return v2.RandomCrop(size, padding=max(1, size // 8), padding_mode="reflect")


def _check_choice(what: str, value: str, valid: Sequence[str]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(map(repr, valid))}")


# ---------------------------------------------------------------------------------------
# Grids for plotting
# ---------------------------------------------------------------------------------------


def augment_grid(
    image: torch.Tensor, name: str, n: int = 8, seed: int = 0, size: int | None = None
) -> torch.Tensor:
    """`n` augmented versions of one image, reproducible from `seed`.

    image: (C, H, W) float in [0, 1]. size: output side (default min(H, W)).
    Returns (n, C, size, size) on the image's device. The global random state is left
    as it was (the draws happen inside `torch.random.fork_rng`).
    """
    if image.dim() != 3:
        raise ValueError(f"expected one image of shape (C, H, W), got {tuple(image.shape)}")
    size = min(image.shape[-2:]) if size is None else size
    pipe = pipeline(name, size)
    with torch.random.fork_rng(devices=[]):  # v2 draws its parameters on the CPU generator
        torch.manual_seed(seed)
        return torch.stack([pipe(image) for _ in range(n)])  # (n, C, size, size)


def plot_augment_grid(images: torch.Tensor, ncols: int = 4, title: str | None = None):
    """Draw a grid of images (e.g. from `augment_grid`); returns the matplotlib Figure.

    images: (n, C, H, W) float in [0, 1], C = 1 (grey) or 3 (RGB). Only draws: uses a
    `matplotlib.figure.Figure` directly (no pyplot state), so it runs headless.
    """
    from matplotlib.figure import Figure

    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images of shape (n, 1 or 3, H, W), got {tuple(images.shape)}")
    n = images.shape[0]
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = Figure(figsize=(1.6 * ncols, 1.6 * nrows + (0.3 if title else 0)))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    pixels = images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()  # (n, H, W, C)
    for index, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if index < n:
            grey = pixels.shape[-1] == 1
            ax.imshow(pixels[index, ..., 0] if grey else pixels[index], cmap="gray" if grey else None,
                      vmin=0, vmax=1)
    if title:
        fig.suptitle(title)
    return fig


# ---------------------------------------------------------------------------------------
# Test-time augmentation
# ---------------------------------------------------------------------------------------


def tta_views(
    images: torch.Tensor,
    views: str = "flip",
    *,
    scales: Sequence[float] = DEFAULT_SCALES,
    crop_size: int | None = None,
) -> list[torch.Tensor]:
    """The views `tta_predict` feeds to the model, in order.

    images: (N, C, H, W).
    - "flip": [images, images flipped left-right]; each (N, C, H, W).
    - "multiscale": for each s in `scales` (default `DEFAULT_SCALES` = (1.0, 1.15, 1.3)):
      resize to (round(s H), round(s W)) (bilinear, antialiased), then centre-crop back
      to (H, W) (a scale below 1 is zero-padded back). Scale 1.0 is the original image.
    - "tencrop": torchvision's `v2.TenCrop(crop_size)` order - top-left, top-right,
      bottom-left, bottom-right, centre, then the same five of the flipped image; each
      (N, C, crop_size, crop_size). Default crop_size = round(0.875 min(H, W)).
    """
    _check_images(images)
    _check_choice("TTA views", views, TTA_VIEWS)
    if views == "flip":
        return [images, _mirrored(images)]
    height, width = images.shape[-2:]
    if views == "multiscale":
        if not scales or min(scales) <= 0:
            raise ValueError(f"scales must be positive numbers, got {tuple(scales)}")
        return [_rescale_and_crop(images, s) for s in scales]
    if crop_size is None:
        crop_size = round(DEFAULT_CROP_FRACTION * min(height, width))
    if not 1 <= crop_size <= min(height, width):
        raise ValueError(
            f"crop_size={crop_size} does not fit images of size {height}x{width}; "
            f"use 1 <= crop_size <= {min(height, width)}"
        )
    from torchvision.transforms import v2

    return list(v2.TenCrop(crop_size)(images))


def _mirrored(images: torch.Tensor) -> torch.Tensor:
    """images (N, C, H, W) -> their left-right mirror images (N, C, H, W): the "flip" view."""
    # BEGIN ANSWER hw3.Q2
    return images.flip(-1)
    # END ANSWER


def _rescale_and_crop(images: torch.Tensor, scale: float) -> torch.Tensor:
    height, width = images.shape[-2:]
    if scale == 1.0:
        return images
    from torchvision.transforms.v2 import functional as TF

    resized = TF.resize(
        images, [round(scale * height), round(scale * width)], antialias=True
    )
    return TF.center_crop(resized, [height, width])


@torch.no_grad()
def tta_predict(
    model: nn.Module,
    images: torch.Tensor,
    views: str = "flip",
    merge: str = "mean",
    *,
    scales: Sequence[float] = DEFAULT_SCALES,
    crop_size: int | None = None,
) -> torch.Tensor:
    """Test-time augmentation: run `model` on every view of `images` and merge.

    images: (N, C, H, W) on the model's device. views: "flip" | "multiscale" |
    "tencrop" (see `tta_views`; `scales` and `crop_size` configure them).
    The model is run once per view (V runs of N images), under `torch.no_grad()`, in
    whatever mode it is in (call `model.eval()` first; the mode is not changed).

    Returns (N, K):
    - merge="mean": the mean over views of the logits (still logits).
    - merge="gmean": the mean over views of `log_softmax(logits)`, i.e. the log of the
      geometric mean of the softmax probabilities. These are log-probabilities that are
      NOT renormalized (exp(out).sum(1) <= 1); `out.log_softmax(1)` renormalizes, and
      that equals `log_softmax` of the mean logits, so the two merges always predict the
      same class and differ only in calibration.
    """
    # BEGIN ANSWER hw3.Q2
    _check_choice("TTA merge", merge, TTA_MERGES)
    outputs = [model(view) for view in tta_views(images, views, scales=scales, crop_size=crop_size)]
    if merge == "gmean":
        outputs = [logits.log_softmax(dim=1) for logits in outputs]
    return torch.stack(outputs).mean(dim=0)  # (V, N, K) -> (N, K)
    # END ANSWER


def _check_images(images: torch.Tensor) -> None:
    if images.dim() != 4:
        raise ValueError(
            f"expected images of shape (N, C, H, W), got {tuple(images.shape)}; "
            "add a batch dimension with images.unsqueeze(0)"
        )
