"""Checkers for hw4_visualize: an occlusion map, the receptive-field box of a unit, and
t-SNE of embeddings with a k-NN check."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn

from course_lib import visualize
from course_lib.arithmetic import receptive_field
from course_lib.grading.checks.compare import (
    CheckFailure, call_student, expect_close, expect_equal, grading_device, quiet_and_strict, random_tensor,
)
from course_lib.grading.checks.guard import forbid

# what course_lib.grading re-exports
__all__ = ["check_occlusion_map", "check_receptive_box", "check_knn_accuracy", "check_tsne_map"]


TSNE_POINTS = 400
TRUSTWORTHINESS = 0.9
KNN_DROP = 0.05     # the map's k-NN accuracy may be at most this much below the pixels'


def _occlusion_forbidden():
    forbidden = [visualize.occlusion_map, visualize.occlusion_probability]
    try:
        from captum.attr import FeatureAblation, Occlusion
        forbidden += [Occlusion.attribute, FeatureAblation.attribute]
    except ImportError:  # captum is a dev extra; students may not have it
        pass
    return forbidden


def check_occlusion_map(occlusion_map, seed: int = 0):
    """occlusion_map(model, image (C, H, W), target, window (h, w), stride (sh, sw), baseline)
    -> (C, H, W): each pixel's mean, over the windows covering it, of
    logit(image) - logit(image occluded), windows at 0, s, 2s, ... (the last may be cut)."""
    device = grading_device()
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3))
    model = model.to(device=device, dtype=torch.float64).eval()
    cases = [((2, 10, 10), (4, 4), (2, 2), 0.0), ((2, 9, 11), (3, 4), (3, 3), 0.5)]  # the second does not tile
    window = (rng.randint(2, 4), rng.randint(2, 4))
    stride = (rng.randint(1, window[0]), rng.randint(1, window[1]))  # no pixel left unoccluded
    cases.append(((2, rng.randint(6, 12), rng.randint(6, 12)), window, stride, -0.3))
    for shape, window, stride, baseline in cases:
        image = random_tensor(generator, *shape, device=device)
        target = rng.randrange(3)
        case = f"image {shape}, target {target}, window {window}, stride {stride}, baseline {baseline}"
        expected = visualize.occlusion_map(model, image, target, window, stride, baseline=baseline)
        with quiet_and_strict(), forbid(_occlusion_forbidden(), "occlusion_map"):
            got = call_student(occlusion_map, (model, image.clone(), target, window, stride, baseline), case, "occlusion_map")
        expect_close(got, expected, case, "the occlusion map",
                     "Slide the window from 0 in steps of stride until it passes the last pixel (the last window may be cut), "
                     "and divide each pixel's sum by the number of windows that covered it.")


def _layers_case(rng):
    layers = []
    for _ in range(rng.randint(2, 4)):
        kernel = rng.randint(1, 5)
        layers.append((kernel, rng.randint(1, 2), rng.randint(0, kernel // 2)))
    return layers


def check_receptive_box(receptive_box, seed: int = 0):
    """receptive_box(layers [(kernel, stride, padding), ...], position (row, col), input_size (H, W))
    -> ((row_first, row_stop), (col_first, col_stop)): the input pixels a unit of the last
    layer sees, clipped to the image."""
    rng = random.Random(seed)
    cases = [([(3, 1, 1), (2, 2, 0), (3, 1, 1)], (4, 4), (32, 32)), ([(5, 2, 2), (3, 2, 1)], (0, 0), (20, 20))]
    while len(cases) < 6:
        layers, size = _layers_case(rng), (rng.randint(24, 40), rng.randint(24, 40))
        model = nn.Sequential(*(nn.Conv2d(1, 1, k, s, p) for k, s, p in layers))
        out = model(torch.zeros(1, 1, *size)).shape[2:]
        cases.append((layers, (rng.randrange(out[0]), rng.randrange(out[1])), size))
    with quiet_and_strict():
        for layers, position, size in cases:
            model = nn.Sequential(*(nn.Conv2d(1, 1, k, s, p) for k, s, p in layers))
            field = receptive_field(model, (1, *size))[str(len(layers) - 1)].field
            case = f"layers {layers}, unit {position}, input {size}"
            got = call_student(receptive_box, (list(layers), position, size), case, "receptive_box")
            got = tuple(tuple(int(v) for v in pair) for pair in got) if isinstance(got, (tuple, list)) else got
            expect_equal(got, field.box(position, size), case, "the box",
                         "Grow the field layer by layer: r += (k - 1) * jump, jump *= stride, start += ((k - 1) / 2 - padding) * jump "
                         "(with the jump before the layer); the unit's centre is start + index * jump.")


def check_knn_accuracy(knn_accuracy, seed: int = 0):
    """knn_accuracy(points (N, D), labels (N,), k) -> float: leave-one-out k-NN accuracy
    (each point voted by its k nearest *other* points; a tied vote goes to the smallest label)."""
    rng = np.random.default_rng(seed)
    with quiet_and_strict():
        for n, d, classes, k in ((60, 2, 3, 5), (80, 5, 4, 1), (50, 3, 2, 3)):
            centres = rng.normal(size=(classes, d)) * 2
            labels = rng.integers(0, classes, n)
            points = centres[labels] + rng.normal(size=(n, d))
            case = f"{n} points in {d}-D, {classes} classes, k={k}"
            got = call_student(knn_accuracy, (torch.tensor(points), torch.tensor(labels), k), case, "knn_accuracy")
            expected = visualize.knn_accuracy(points, labels, k)
            if not isinstance(got, (float, int, np.floating)) or abs(float(got) - expected) > 1e-9:
                raise CheckFailure(f"case {case}: the accuracy should be {expected:.4f}, got {got!r}. "
                                   "Leave each point out: its own distance 0 must not vote for itself.")


def check_tsne_map(tsne_map, seed: int = 0):
    """tsne_map(features (N, D), seed) -> (N, 2): a t-SNE map of scikit-learn's digits that
    keeps neighbours (trustworthiness >= 0.9) and classes (k-NN accuracy at most 0.05
    below the pixels')."""
    from sklearn.datasets import load_digits
    from threadpoolctl import threadpool_limits

    digits = load_digits()
    pick = np.random.default_rng(seed).choice(len(digits.target), TSNE_POINTS, replace=False)
    features, labels = torch.tensor(digits.data[pick]), digits.target[pick]
    with quiet_and_strict(), threadpool_limits(1):
        points = call_student(tsne_map, (features.clone(), seed), f"{TSNE_POINTS} digits", "tsne_map")
    points = np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points, dtype=float)
    if points.shape != (TSNE_POINTS, 2):
        raise CheckFailure(f"tsne_map should return one 2-D point per digit, shape ({TSNE_POINTS}, 2); got {points.shape}")
    trust = visualize.trustworthiness(features, points, n_neighbors=5)
    on_map, on_pixels = visualize.knn_accuracy(points, labels, 5), visualize.knn_accuracy(features, labels, 5)
    if trust < TRUSTWORTHINESS or on_map < on_pixels - KNN_DROP:
        raise CheckFailure(f"your map has trustworthiness {trust:.3f} (needs {TRUSTWORTHINESS}) and 5-NN accuracy {on_map:.3f} "
                           f"(the pixels give {on_pixels:.3f}; needs at least {on_pixels - KNN_DROP:.3f}). "
                           "Use scikit-learn's TSNE with init='pca' and enough iterations (max_iter), and a perplexity below N.")
