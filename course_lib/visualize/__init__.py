"""Visualizing CNNs: each look is a function that computes tensors or arrays, plus a
`plot_*` function that only draws them (returns a matplotlib Figure).

=====================  =====================================  ===========================
look                   compute                                draw
=====================  =====================================  ===========================
feature maps           `activations`, `dead_channels`         `plot_feature_maps`
weights                `filters`                              `plot_filters`
embeddings             `embed`, `tsne`, `knn_accuracy`,       `plot_embedding`
                       `trustworthiness`
occlusion              `occlusion_map`,                       `plot_occlusion`,
                       `occlusion_probability`                `plot_occlusion_probability`
synthesized images     `maximize_activation`,                 `plot_synthesis`
                       `channel_objective`
top patches            `top_activating_patches`               `plot_top_patches`
=====================  =====================================  ===========================

Layers are named as in `model.named_modules()` ("features.3"); an unknown name lists the
valid ones. Batches are (N, C, H, W); functions that look at one image take (C, H, W) or
(1, C, H, W). Models run in eval mode without gradients and every module gets its mode
back afterwards - except the occlusion functions, which leave the model in eval mode.
"""

from .activations import DeadChannels, activations, dead_channels
from .embeddings import embed, knn_accuracy, trustworthiness, tsne
from .filters import filters
from .occlusion import occlusion_map, occlusion_probability, window_starts
from .patches import Patch, top_activating_patches
from .plotting import (
    plot_embedding,
    plot_feature_maps,
    plot_filters,
    plot_occlusion,
    plot_occlusion_probability,
    plot_synthesis,
    plot_top_patches,
    to_display,
)
from .synthesis import Synthesis, channel_objective, maximize_activation

__all__ = [
    "activations", "dead_channels", "DeadChannels",
    "filters",
    "embed", "tsne", "knn_accuracy", "trustworthiness",
    "occlusion_map", "occlusion_probability", "window_starts",
    "maximize_activation", "channel_objective", "Synthesis",
    "top_activating_patches", "Patch",
    "plot_feature_maps", "plot_filters", "plot_embedding", "plot_occlusion",
    "plot_occlusion_probability", "plot_synthesis", "plot_top_patches", "to_display",
]
