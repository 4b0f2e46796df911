"""Plots for the visualizations. Each function only draws what a compute function returned
and returns a new `matplotlib.figure.Figure`.

Figures are made without pyplot, so they work on any backend (Agg included), do not pile
up in pyplot's figure list, and show once in Jupyter when returned from a cell. Save one
with `fig.savefig(path)`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:  # matplotlib is imported when the first plot is drawn, not at import time
    from matplotlib.figure import Figure

# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def to_display(image) -> np.ndarray:
    """An image tensor (C, H, W) or (H, W) as an array for `imshow`, min-max scaled to [0, 1]:
    (H, W) for one channel (or any count other than 3), (H, W, 3) for three. Channels
    other than 1 or 3 are averaged to grey."""
    array = _numpy(image).astype(np.float64)
    if array.ndim == 3:
        array = array.transpose(1, 2, 0) if array.shape[0] == 3 else array.mean(axis=0)
    elif array.ndim != 2:
        raise ValueError(f"expected an image of shape (C, H, W) or (H, W), got {array.shape}")
    low, high = array.min(), array.max()
    return (array - low) / (high - low) if high > low else np.full_like(array, 0.5)


def _numpy(values) -> np.ndarray:
    if isinstance(values, Tensor):
        return values.detach().to("cpu", torch.float64 if values.is_floating_point() else values.dtype).numpy()
    return np.asarray(values)


def _figure(**kwargs) -> Figure:
    from matplotlib.figure import Figure

    return Figure(layout="constrained", **kwargs)


def _grid(count: int, ncols: int | None, size: float = 1.2, extra_height: float = 0.0):
    ncols = ncols or min(count, 8)
    nrows = math.ceil(count / ncols)
    fig = _figure(figsize=(size * ncols, size * nrows + extra_height))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    return fig, axes


def _image_axes_off(ax):
    ax.set_xticks([])
    ax.set_yticks([])


# ---------------------------------------------------------------------------------------
# Activations and weights
# ---------------------------------------------------------------------------------------


def plot_feature_maps(
    maps, *, max_maps: int = 32, ncols: int = 8, cmap: str = "viridis", title: str | None = None
) -> Figure:
    """One image's feature maps, one panel per channel (each scaled on its own).

    maps: (C, H, W) or (1, C, H, W), e.g. `activations(model, x[:1], name)[name]`.
    Shows the first `max_maps` channels, titled with their index.
    """
    array = _numpy(maps)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3:
        raise ValueError(
            f"expected one image's maps (C, H, W) or (1, C, H, W), got {array.shape}; pick one image, e.g. maps[0]"
        )
    count = min(len(array), max_maps)
    fig, axes = _grid(count, min(ncols, count), extra_height=0.4 if title else 0.0)
    for channel, ax in zip(range(count), axes):
        ax.imshow(array[channel], cmap=cmap)
        ax.set_title(str(channel), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_filters(weights, *, max_filters: int = 64, max_channels: int = 8, ncols: int | None = None,
                 title: str | None = None) -> Figure:
    """Kernels from `filters(...)` (F, C, kh, kw), values in [0, 1].

    C == 3: one RGB picture per filter (first layers). Otherwise one row per filter and
    one grey picture per input channel (the first `max_channels`). At most `max_filters`
    filters are drawn.
    """
    array = _numpy(weights)
    if array.ndim != 4:
        raise ValueError(f"expected kernels of shape (F, C, kh, kw), got {array.shape}")
    array = array[:max_filters]
    extra = 0.4 if title else 0.0
    if array.shape[1] in (1, 3):
        fig, axes = _grid(len(array), ncols or min(len(array), 8), size=0.9, extra_height=extra)
        for kernel, ax in zip(array, axes):
            picture = kernel.transpose(1, 2, 0) if kernel.shape[0] == 3 else kernel[0]
            ax.imshow(picture, cmap=None if kernel.shape[0] == 3 else "gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        channels = min(array.shape[1], max_channels)
        fig = _figure(figsize=(0.7 * channels + 0.6, 0.7 * len(array) + extra))
        axes = fig.subplots(len(array), channels, squeeze=False)
        for f, row in enumerate(axes):
            for c, ax in enumerate(row):
                ax.imshow(array[f, c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                _image_axes_off(ax)
                if c == 0:
                    ax.set_ylabel(str(f), fontsize=7, rotation=0, labelpad=8)
                if f == 0:
                    ax.set_title(f"in {c}", fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


# ---------------------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------------------


def plot_embedding(points, labels=None, images=None, *, class_names: Sequence[str] | None = None,
                   min_distance: float = 0.05, zoom: float = 1.5, title: str | None = None) -> Figure:
    """A 2-D map (N, 2) with one colour per class and, optionally, image thumbnails.

    labels: (N,) integer classes (or None for one colour). images: (N, H, W) or
    (N, C, H, W) thumbnails: one is drawn at a point when it is at least `min_distance`
    (a fraction of the map's extent) from every thumbnail already drawn, the classic
    t-SNE picture. `zoom` scales the thumbnails.
    """
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    xy = _numpy(points).astype(np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"expected points of shape (N, 2), got {xy.shape}")
    fig = _figure(figsize=(7, 6))
    ax = fig.subplots()
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=6)
    else:
        y = _numpy(labels).reshape(-1)
        classes = np.unique(y)
        colours = _colours(len(classes))
        for colour, cls in zip(colours, classes):
            name = class_names[int(cls)] if class_names is not None else str(cls)
            chosen = y == cls
            ax.scatter(xy[chosen, 0], xy[chosen, 1], s=6, color=colour, label=name)
        ax.legend(markerscale=3, fontsize=8, loc="best", ncols=2 if len(classes) > 10 else 1)
    if images is not None:
        thumbs = _numpy(images)
        if len(thumbs) != len(xy):
            raise ValueError(f"got {len(thumbs)} images for {len(xy)} points; give one image per point")
        scale = np.ptp(xy, axis=0).max() or 1.0
        shown = np.empty((0, 2))
        for point, thumb in zip(xy, thumbs):
            if len(shown) and np.min(np.linalg.norm(shown - point, axis=1)) < min_distance * scale:
                continue
            shown = np.vstack([shown, point])
            picture = to_display(thumb)
            box = OffsetImage(picture, zoom=zoom, cmap="gray_r" if picture.ndim == 2 else None)
            ax.add_artist(AnnotationBbox(box, point, frameon=False, pad=0.0))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return fig


def _colours(count: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


# ---------------------------------------------------------------------------------------
# Occlusion
# ---------------------------------------------------------------------------------------


def plot_occlusion(image, attribution, *, alpha: float = 0.6, title: str | None = None) -> Figure:
    """The image, its occlusion map (summed over channels), and the map over the image.

    image, attribution: (C, H, W) (or (1, C, H, W)), as given to / returned by
    `occlusion_map`. Red: hiding the pixel lowers the class score; blue: raises it.
    """
    picture = to_display(_drop_batch(image))
    heat = _numpy(_drop_batch(attribution)).sum(axis=0)
    limit = np.abs(heat).max() or 1.0
    fig = _figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 3)
    axes[0].imshow(picture, cmap="gray" if picture.ndim == 2 else None)
    axes[0].set_title("image")
    shown = axes[1].imshow(heat, cmap="bwr", vmin=-limit, vmax=limit)
    axes[1].set_title("occlusion attribution")
    axes[2].imshow(picture, cmap="gray" if picture.ndim == 2 else None)
    axes[2].imshow(heat, cmap="bwr", vmin=-limit, vmax=limit, alpha=alpha)
    axes[2].set_title("overlay")
    return _finish_overlay(fig, axes, shown, title)


def plot_occlusion_probability(image, probability, window: Sequence[int], stride: int | Sequence[int], *,
                               alpha: float = 0.6, title: str | None = None) -> Figure:
    """The image, the class probability per occluder position (h', w'), and that map laid
    over the image with each cell at its occluder's centre (window and stride as given
    to `occlusion_probability`; low = the occluder hides what the class needs)."""
    picture = to_display(_drop_batch(image))
    grid = _numpy(probability)
    if grid.ndim != 2:
        raise ValueError(f"expected a probability map (h', w'), got {grid.shape}")
    h, w = tuple(window)[-2:]
    sh, sw = (stride, stride) if isinstance(stride, int) else tuple(stride)[-2:]
    rows, cols = grid.shape
    # pixel centres are integers; the occluder at (i sh, j sw) is centred at i sh + (h - 1) / 2
    extent = (-sw / 2 + (w - 1) / 2, (cols - 0.5) * sw + (w - 1) / 2,
              (rows - 0.5) * sh + (h - 1) / 2, -sh / 2 + (h - 1) / 2)
    fig = _figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 3)
    axes[0].imshow(picture, cmap="gray" if picture.ndim == 2 else None)
    axes[0].set_title("image")
    shown = axes[1].imshow(grid, cmap="viridis", vmin=0, vmax=1)
    axes[1].set_title("p(class) by occluder position")
    axes[2].imshow(picture, cmap="gray" if picture.ndim == 2 else None)
    axes[2].imshow(grid, cmap="viridis", vmin=0, vmax=1, alpha=alpha, extent=extent, interpolation="nearest")
    axes[2].set_xlim(-0.5, picture.shape[1] - 0.5)
    axes[2].set_ylim(picture.shape[0] - 0.5, -0.5)
    axes[2].set_title("overlay (occluder centres)")
    return _finish_overlay(fig, axes, shown, title)


def _drop_batch(image):
    return image[0] if getattr(image, "ndim", 0) == 4 and image.shape[0] == 1 else image


# ---------------------------------------------------------------------------------------
# Synthesized images and top patches
# ---------------------------------------------------------------------------------------


def plot_synthesis(image, history=None, *, title: str | None = None) -> Figure:
    """A synthesized image (C, H, W) and, when given, its objective per step (steps,).
    `plot_synthesis(*maximize_activation(...))` draws a result directly."""
    picture = to_display(_drop_batch(image))
    panels = 1 if history is None else 2
    fig = _figure(figsize=(3.6 * panels + 0.4, 3.4))
    axes = fig.subplots(1, panels, squeeze=False).ravel()
    axes[0].imshow(picture, cmap="gray" if picture.ndim == 2 else None)
    _image_axes_off(axes[0])
    axes[0].set_title("synthesized input")
    if history is not None:
        values = _numpy(history)
        axes[1].plot(np.arange(1, len(values) + 1), values)
        axes[1].set_xlabel("step")
        axes[1].set_ylabel("activation")
        axes[1].set_title("objective")
    if title:
        fig.suptitle(title)
    return fig


def plot_top_patches(images, patches, *, ncols: int | None = None, title: str | None = None) -> Figure:
    """The input crops of `top_activating_patches(...)`, strongest first, titled with the
    image index and activation. images: the (N, C, H, W) tensor the patches came from."""
    if not patches:
        raise ValueError("no patches to draw")
    fig, axes = _grid(len(patches), ncols or min(len(patches), 5), size=1.6, extra_height=0.4 if title else 0.0)
    for patch, ax in zip(patches, axes):
        (r0, r1), (c0, c1) = patch.box[-2:] if len(patch.box) >= 2 else ((0, images.shape[2]), (0, images.shape[3]))
        crop = to_display(images[patch.image_index][:, r0:r1, c0:c1])
        ax.imshow(crop, cmap="gray" if crop.ndim == 2 else None, interpolation="nearest")
        ax.set_title(f"#{patch.image_index}: {patch.activation:.2f}", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def _finish_overlay(fig, axes, shown, title):
    """Shared ending of the occlusion plots: no ticks, one colour bar, an optional title."""
    for ax in axes:
        _image_axes_off(ax)
    fig.colorbar(shown, ax=axes[1:], shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig
