"""Checkers for hw4_visualize: an occlusion map, the receptive-field box of a unit, t-SNE of
embeddings with a k-NN check, activation maximization with a natural-image prior, the
top-activating units of a channel, and the occlusion experiment (does the map sit on the
digit?).

Every case is drawn from the seed (sizes, windows, strides, layers, dtypes), so the hidden
tests are fresh inputs, not the visible ones reordered. Failure messages name the case and
the size of the error and point at the idea; they never print the reference's formula.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn

from course_lib import visualize
from course_lib.arithmetic import receptive_field
from course_lib.grading.checks.compare import (
    CheckFailure,
    call_student,
    expect_close,
    grading_device,
    one_thread,
    quiet_and_strict,
    random_tensor,
)
from course_lib.grading.checks.guard import forbid

# what course_lib.grading re-exports
__all__ = ["check_occlusion_map", "check_receptive_box", "check_knn_accuracy", "check_tsne_map",
           "check_maximize_activation", "check_top_patches", "check_occlusion_experiment"]

HINTS = {
    "Q1": "Occlusion asks the network a counterfactual: how much does the target's score fall when this patch is "
          "hidden? Every window position gives one number; spread it over the pixels the window hid, and remember a "
          "pixel hidden by several windows should get their average, not their sum. List the window positions along "
          "one dimension by hand for a small image whose size the stride does not divide. Batch norm and dropout "
          "behave differently while training. Slides: 'Occlusion experiments' (Zeiler & Fergus).",
    "Q2": "Work backwards from the unit: a unit of a layer sees a window of its layer's input, and each unit of "
          "that window sees a window of the layer before. Padding shifts where a window starts (into the border), "
          "strides spread the units apart, and every stride before a layer multiplies its spacing. Check yourself "
          "on two 3x3 convolutions (5x5) and on a 2x2 pool followed by a 3x3 conv. Slides: 'Receptive field'.",
    "Q3": "For each point, who are its k nearest neighbours if it is not allowed to vote for itself? Count the "
          "votes per label and settle ties toward the smallest label. For t-SNE, read scikit-learn's TSNE page: "
          "which initialization keeps the global layout, how many optimization steps it needs, and what perplexity "
          "means (about how many neighbours each point attends to; it must be smaller than the number of points). "
          "Slides: 't-SNE of CNN codes'.",
    "Q4": "Activation maximization is training with the roles swapped: the weights stay fixed and the image is the "
          "parameter, and you climb the unit's value instead of descending a loss. Left alone, the ascent finds "
          "high-frequency noise that no photo contains; the prior nudges it toward natural images: shift the image a "
          "little at random before every evaluation (a feature must survive small translations) and blur it a "
          "little after every step (no pixel-level noise). Keep the pixels in range after each step. Slides: "
          "'Visualizing a neuron: gradient ascent' and 'natural-image priors' (Yosinski et al.).",
    "Q5": "Run every image once, keep the channel's map, and for each image find its strongest unit and where it "
          "is; then rank the images by that value. The place is a (row, column) on the map, and the map need not "
          "be square. Slides: 'Maximally activating patches' (Girshick et al.).",
    "Q6": "Only the positive part of an occlusion map says 'the network used this'. For each digit, how much of "
          "that positive mass falls on the bright (ink) pixels? Compare it with how much of the image is ink at "
          "all: a map that ignored the digit would put about that share there. Use the occlusion function you "
          "are given, with the digit's own label as the target.",
}


def _occlusion_forbidden():
    forbidden = [visualize.occlusion_map, visualize.occlusion_probability]
    try:
        from captum.attr import FeatureAblation, Occlusion
        forbidden += [Occlusion.attribute, FeatureAblation.attribute]
    except ImportError:  # captum is a dev extra; students may not have it
        pass
    return forbidden


def _occlusion_model(channels: int, hidden: int, classes: int, dtype, device, generator) -> nn.Module:
    """A small classifier with batch norm, handed over in train mode with running statistics
    that differ from any one image's: an answer that forgets eval mode gets other logits."""
    model = nn.Sequential(nn.Conv2d(channels, hidden, 3, padding=1), nn.BatchNorm2d(hidden), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * hidden, classes))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(0.5 * torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
        model[1].running_mean.copy_(torch.randn(hidden, generator=generator, dtype=torch.float64))
        model[1].running_var.copy_(0.5 + torch.rand(hidden, generator=generator, dtype=torch.float64))
    return model.to(device=device, dtype=dtype).train()


def _occlusion_cases(rng: random.Random):
    """Three families per seed: overlapping windows on one channel (float64); windows that tile
    the image exactly, three channels (float32); a last window cut by the border on a
    non-square image (float64). The stride never exceeds the window, so every pixel is covered."""
    h, w = rng.randint(2, 4), rng.randint(2, 4)
    overlap = dict(channels=1, size=(rng.randint(7, 11), rng.randint(7, 11)), window=(h, w),
                   stride=(rng.randint(1, h - 1), rng.randint(1, w - 1)), dtype=torch.float64)
    h, w = rng.choice([2, 3]), rng.choice([2, 3])
    tiles = dict(channels=3, size=(h * rng.randint(3, 4), w * rng.randint(3, 4)), window=(h, w), stride=(h, w),
                 dtype=torch.float32)
    h, w = rng.randint(3, 4), rng.randint(3, 4)
    rows, cols = rng.choice([(9, 13), (11, 8), (10, 7)])
    cut = dict(channels=2, size=(rows, cols), window=(h, w), stride=(h - 1, w), dtype=torch.float64)
    return [overlap, tiles, cut]


def check_occlusion_map(occlusion_map, seed: int = 0):
    """occlusion_map(model, image (C, H, W), target, window (h, w), stride (sh, sw), baseline)
    -> (C, H, W), captum's occlusion for one image and the target's logit."""
    device = grading_device()
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    for number, family in enumerate(_occlusion_cases(rng)):
        dtype = family["dtype"] if device.type != "mps" else torch.float32
        classes = rng.randint(2, 5)
        model = _occlusion_model(family["channels"], rng.randint(3, 6), classes, dtype, device, generator)
        image = random_tensor(generator, family["channels"], *family["size"], device=device, dtype=dtype)
        target, baseline = rng.randrange(classes), round(rng.uniform(-0.5, 0.5), 2) if number else 0.0
        window, stride = family["window"], family["stride"]
        case = (f"image {tuple(image.shape)} {str(dtype).replace('torch.', '')}, target {target}, window {window}, "
                f"stride {stride}, baseline {baseline}, model in train mode when passed")
        expected = visualize.occlusion_map(model, image, target, window, stride, baseline=baseline)
        model.train()
        with quiet_and_strict(), forbid(_occlusion_forbidden(), "occlusion_map"):
            got = call_student(occlusion_map, (model, image.clone(), target, window, stride, baseline), case,
                               "occlusion_map")
        tolerance = dict(atol=1e-4, rtol=1e-3) if dtype == torch.float32 else {}
        expect_close(got, expected, case, "the occlusion map",
                     "Check which quantity is scored (the drop of the target's logit), which window positions exist "
                     "(the last one may hang over the border), how a pixel covered by several windows is scored, and "
                     "that the model runs as at test time. hint('hw4', 'Q1') says more.", **tolerance)


def _layers_case(rng: random.Random):
    """2-4 layers (kernel, stride, padding) with at least one stride above its kernel
    (a 1x1 layer with stride 2) and at least one padded layer."""
    layers = [(rng.choice([3, 5]), rng.randint(1, 2), rng.choice([1, 2]))]
    for _ in range(rng.randint(0, 2)):
        kernel = rng.randint(1, 4)
        layers.append((kernel, rng.randint(1, 2), rng.randint(0, kernel // 2)))
    layers.insert(rng.randrange(len(layers) + 1), (1, 2, 0))
    return layers


def check_receptive_box(receptive_box, seed: int = 0):
    """receptive_box(layers [(kernel, stride, padding), ...], position (row, col), input_size (H, W))
    -> ((row_first, row_stop), (col_first, col_stop)): the input pixels a unit of the last
    layer sees, clipped to the image, stop exclusive."""
    rng = random.Random(seed)
    cases = []
    while len(cases) < 6:
        layers = _layers_case(rng)
        size = (rng.randint(20, 40), rng.randint(20, 40))
        model = nn.Sequential(*(nn.Conv2d(1, 1, k, s, p) for k, s, p in layers))
        out = model(torch.zeros(1, 1, *size)).shape[2:]
        corner = [(0, 0), (out[0] - 1, out[1] - 1)][len(cases) % 2]  # clipped at the border
        inside = (rng.randrange(out[0]), rng.randrange(out[1]))
        cases.append((layers, corner if len(cases) < 2 else inside, size))
    with quiet_and_strict():
        for layers, position, size in cases:
            model = nn.Sequential(*(nn.Conv2d(1, 1, k, s, p) for k, s, p in layers))
            field = receptive_field(model, (1, *size))[str(len(layers) - 1)].field
            case = f"layers {layers} as (kernel, stride, padding), unit {position}, input {size}"
            got = call_student(receptive_box, (list(layers), position, size), case, "receptive_box")
            got = tuple(tuple(int(v) for v in pair) for pair in got) if isinstance(got, (tuple, list)) else got
            expected = field.box(position, size)
            if got == expected:
                continue
            if not (isinstance(got, tuple) and len(got) == 2 and all(len(pair) == 2 for pair in got)):
                raise CheckFailure(f"case {case}: the box should be ((row_first, row_stop), (col_first, col_stop)), "
                                   f"got {got!r}")
            off = [(g[0] - e[0], g[1] - e[1]) for g, e in zip(got, expected)]
            raise CheckFailure(
                f"case {case}: your box {got} is off by {off} (first, stop) per dimension. Trace the unit back one "
                "layer at a time on paper for this case: where does padding put the first input pixel, how far apart "
                "are neighbouring units in input pixels after each stride, is stop exclusive and clipped to the "
                "image? hint('hw4', 'Q2') says more.")


def _knn_cases(rng: np.random.Generator):
    """Clusters in 2-6 dimensions: k = 2 on overlapping clusters (many tied votes), k = 1,
    an odd k; float32 and float64."""
    odd = int(rng.choice([3, 5, 7]))
    for k, spread, dtype in ((2, 0.6, torch.float64), (1, 1.5, torch.float32), (odd, 1.5, torch.float64)):
        n, d, classes = int(rng.integers(40, 80)), int(rng.integers(2, 7)), int(rng.integers(3, 6))
        centres = rng.normal(size=(classes, d)) * spread
        labels = rng.integers(0, classes, n)
        yield centres[labels] + rng.normal(size=(n, d)), labels, k, dtype


def check_knn_accuracy(knn_accuracy, seed: int = 0):
    """knn_accuracy(points (N, D), labels (N,), k) -> float: leave-one-out k-NN accuracy
    (each point voted by its k nearest *other* points; a tied vote goes to the smallest label)."""
    rng = np.random.default_rng(seed)
    with quiet_and_strict():
        for points, labels, k, dtype in _knn_cases(rng):
            n, d = points.shape
            case = f"{n} points in {d}-D ({str(dtype).replace('torch.', '')}), {labels.max() + 1} classes, k={k}"
            got = call_student(knn_accuracy, (torch.tensor(points, dtype=dtype), torch.tensor(labels), k), case,
                               "knn_accuracy")
            expected = visualize.knn_accuracy(torch.tensor(points, dtype=dtype).double(), labels, k)
            if not isinstance(got, (float, int, np.floating)) or abs(float(got) - expected) > 1e-9:
                detail = (f"{float(got):.4f}, {abs(float(got) - expected) * n:.0f} of {n} points classified differently"
                          if isinstance(got, (float, int, np.floating)) else f"a {type(got).__name__}")
                raise CheckFailure(f"case {case}: your accuracy is {detail}. Who may vote for a point, and how is a "
                                   "tied vote settled? hint('hw4', 'Q3') says more.")


TSNE_POINTS = (320, 400)
TRUSTWORTHINESS = 0.9
KNN_DROP = 0.05     # the map's k-NN accuracy may be at most this much below the pixels'


def check_tsne_map(tsne_map, seed: int = 0):
    """tsne_map(features (N, D), seed) -> (N, 2): a t-SNE map of scikit-learn's digits that
    keeps neighbours (trustworthiness >= 0.9) and classes (k-NN accuracy at most 0.05
    below the pixels')."""
    from sklearn.datasets import load_digits
    from threadpoolctl import threadpool_limits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    count = int(rng.integers(*TSNE_POINTS))
    pick = rng.choice(len(digits.target), count, replace=False)
    dtype = (torch.float64, torch.float32)[seed % 2]
    features, labels = torch.tensor(digits.data[pick], dtype=dtype), digits.target[pick]
    case = f"{count} digits, 64 pixels each, {str(dtype).replace('torch.', '')}"
    with quiet_and_strict(), threadpool_limits(1), forbid([visualize.tsne], "tsne_map"):
        points = call_student(tsne_map, (features.clone(), seed), case, "tsne_map")
    points = np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points, dtype=float)
    if points.shape != (count, 2):
        raise CheckFailure(f"case {case}: tsne_map should return one 2-D point per digit, shape ({count}, 2); "
                           f"got {points.shape}")
    trust = visualize.trustworthiness(features, points, n_neighbors=5)
    on_map, on_pixels = visualize.knn_accuracy(points, labels, 5), visualize.knn_accuracy(features, labels, 5)
    if trust < TRUSTWORTHINESS or on_map < on_pixels - KNN_DROP:
        raise CheckFailure(f"case {case}: your map has trustworthiness {trust:.3f} (needs {TRUSTWORTHINESS}) and "
                           f"5-NN accuracy {on_map:.3f} (the pixels give {on_pixels:.3f}; needs at least "
                           f"{on_pixels - KNN_DROP:.3f}). Is it t-SNE, run long enough from a layout that keeps the "
                           "global structure, with a perplexity that suits this many points? hint('hw4', 'Q3').")


# ---------------------------------------------------------------------------------------
# Q4: activation maximization with a natural-image prior (graded by its effect)
# ---------------------------------------------------------------------------------------

SYNTHESIS_GAIN = 0.5   # the student's gain over random images must reach this share of the reference's
SMOOTHER = 0.5         # TV with the prior must be at most this share of TV without it
# Measured on the reference (seeds 0-4, both families, 40 steps): with the prior the gain over the best of 16
# random images was 0.82-1.07 times the gain without it, and the prior's total variation 0.0000-0.049 times
# the unregularized one; so both thresholds leave a wide margin for another blur kernel or other jitter draws.


def _synthesis_model(channels: int, dtype, device, generator) -> nn.Module:
    """Two convolutions, the last one's output pre-ReLU: units with a clear preferred pattern."""
    model = nn.Sequential(nn.Conv2d(channels, 4, 5, padding=2), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(0.5 * torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    return model.to(device=device, dtype=dtype).eval()


def _reference_synthesis(model, channel, image_size, steps, lr, jitter, blur_sigma, seed):
    return visualize.maximize_activation(
        model, str(len(model) - 1), channel, steps=steps, lr=lr, image_size=image_size, jitter=jitter,
        blur_every=1 if blur_sigma > 0 else 0, blur_sigma=blur_sigma, l2_weight=0.0, value_range=(-1.0, 1.0),
        seed=seed).image


def _channel_mean(model, images, channel) -> torch.Tensor:
    with torch.no_grad():
        return model(images)[:, channel].flatten(1).mean(dim=1)  # (N,)


def _total_variation(image: torch.Tensor) -> float:
    rows, cols = image[..., 1:, :] - image[..., :-1, :], image[..., 1:] - image[..., :-1]
    return float(rows.pow(2).mean() + cols.pow(2).mean())


def _synthesized(got, model, image_size, case) -> torch.Tensor:
    dtype = next(model.parameters()).dtype
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(image_size):
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise CheckFailure(f"case {case}: the image should be a tensor of shape {tuple(image_size)}, got {shape}")
    got = got.detach()
    if got.dtype != dtype or not bool(torch.isfinite(got).all()):
        raise CheckFailure(f"case {case}: the image should be finite and have the model's dtype {dtype}, "
                           f"got {got.dtype}")
    if float(got.abs().max()) > 1 + 1e-6:
        raise CheckFailure(f"case {case}: pixels must stay in [-1, 1]; yours reach {float(got.abs().max()):.3g}")
    return got


def check_maximize_activation(maximize_activation, seed: int = 0):
    """maximize_activation(model, channel, image_size (C, H, W), steps, lr, jitter, blur_sigma, seed)
    -> (C, H, W) in [-1, 1]: judged by its effect. The channel's mean must beat random images by at
    least half the reference's margin, with and without the prior, and the prior (jitter, blur) must
    make the image smoother: total variation at most half of that without it."""
    with one_thread():
        _check_maximize_activation(maximize_activation, seed)


def _check_maximize_activation(maximize_activation, seed):
    device = grading_device()
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    families = [(3, (rng.randint(20, 26),) * 2, torch.float64),
                (1, (rng.randint(16, 20), rng.randint(24, 30)), torch.float32)]
    for channels, size, dtype in families:
        model = _synthesis_model(channels, dtype, device, generator)
        channel, steps, lr = rng.randrange(4), rng.choice([30, 40]), rng.choice([0.08, 0.1])
        jitter, sigma, start = rng.randint(1, 2), rng.choice([0.5, 0.6]), rng.randrange(1000)
        image_size = (channels, *size)
        noise = torch.rand(16, *image_size, generator=generator, dtype=torch.float64) * 2 - 1
        best_random = float(_channel_mean(model, noise.to(device=device, dtype=dtype), channel).max())
        smoothness = []
        setting = (f"image {image_size} {str(dtype).replace('torch.', '')}, channel {channel}, {steps} steps, "
                   f"lr {lr}, seed {start}")
        for prior_jitter, prior_sigma in ((jitter, sigma), (0, 0.0)):
            args = (model, channel, image_size, steps, lr, prior_jitter, prior_sigma, start)
            case = f"{setting}, jitter {prior_jitter}, blur_sigma {prior_sigma}"
            # the reference first: an optimizer's first step imports torch._dynamo, which costs about
            # twice as much under the guard's profiler as outside it (2 s more on the course machine)
            reference = _reference_synthesis(*args)
            with quiet_and_strict(), forbid([visualize.maximize_activation], "maximize_activation"):
                got = _synthesized(call_student(maximize_activation, args, case, "maximize_activation"), model,
                                   image_size, case)
            gain = float(_channel_mean(model, got[None], channel)) - best_random
            needed = SYNTHESIS_GAIN * (float(_channel_mean(model, reference[None], channel)) - best_random)
            if gain < needed:
                raise CheckFailure(
                    f"case {case}: your image's channel mean is {gain:.3g} above the best of 16 random images "
                    f"(negative: below); it should be at least {needed:.3g} above. Are you climbing the channel's mean "
                    "(not descending it), and updating the image itself? hint('hw4', 'Q4').")
            smoothness.append(_total_variation(got))
        if smoothness[0] > SMOOTHER * smoothness[1]:
            raise CheckFailure(
                f"case {setting}: the prior should make the image smoother, but its total variation is "
                f"{smoothness[0]:.3g} with jitter {jitter} and blur_sigma {sigma} against {smoothness[1]:.3g} without "
                f"(needs at most {SMOOTHER} times). Do jitter and blur act at every step? hint('hw4', 'Q4').")


# ---------------------------------------------------------------------------------------
# Q5: the top-activating units of a channel
# ---------------------------------------------------------------------------------------


def _patches_model(channels: int, dtype, device, generator, pool: bool) -> nn.Module:
    pooling = [nn.MaxPool2d(2)] if pool else []
    model = nn.Sequential(nn.Conv2d(channels, 5, 3), nn.ReLU(), *pooling, nn.Conv2d(5, 4, 3, padding=1))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=torch.float64) * 0.4)
    return model.to(device=device, dtype=dtype).eval()


def check_top_patches(top_patches, seed: int = 0):
    """top_patches(model, images (N, C, H, W), channel, k) -> [(image_index, (row, col), activation), ...]:
    the k strongest units of `channel` in the model's output map, at most one per image (its
    strongest), strongest first; fewer than k when there are fewer images."""
    device = grading_device()
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    # (images, channels, (H, W), dtype, a pool before the last conv, k): a non-square map; a square one
    # on one channel in float32; a single image (fewer units than k)
    families = [(rng.randint(8, 14), 3, (rng.randint(12, 16), rng.randint(17, 22)), torch.float64, True,
                 rng.randint(3, 6)),
                (rng.randint(5, 8), 1, (rng.randint(9, 12),) * 2, torch.float32, False, rng.randint(2, 4)),
                (1, 2, (rng.randint(8, 10), rng.randint(11, 13)), torch.float64, False, rng.randint(2, 3))]
    for count, channels, size, dtype, pool, k in families:
        model = _patches_model(channels, dtype, device, generator, pool)
        images = random_tensor(generator, count, channels, *size, device=device, dtype=dtype)
        channel = rng.randrange(4)
        case = f"images {tuple(images.shape)} {str(dtype).replace('torch.', '')}, channel {channel}, k {k}"
        reference = visualize.top_activating_patches(model, images, str(len(model) - 1), channel, k, max_per_image=1)
        with quiet_and_strict(), forbid([visualize.top_activating_patches], "top_patches"):
            got = call_student(top_patches, (model, images.clone(), channel, k), case, "top_patches")
        try:
            got = [(int(i), tuple(int(v) for v in position), float(value)) for i, position, value in got]
        except (TypeError, ValueError):
            raise CheckFailure(f"case {case}: return a list of (image_index, (row, col), activation) triples, "
                               f"got {type(got).__name__}") from None
        if len(got) != len(reference):
            raise CheckFailure(f"case {case}: expected {len(reference)} units (one per image at most), got {len(got)}")
        values = torch.tensor([value for _, _, value in got], dtype=torch.float64)
        expected = torch.tensor([p.activation for p in reference], dtype=torch.float64)
        tolerance = 1e-4 if dtype == torch.float32 else 1e-9
        if not torch.allclose(values, expected, atol=tolerance, rtol=tolerance):
            raise CheckFailure(f"case {case}: your activations differ from the strongest units' by up to "
                               f"{float((values - expected).abs().max()):.3g}. Take each image's strongest unit of "
                               "the channel, then the k strongest images, strongest first. hint('hw4', 'Q5').")
        units = {(i, position) for i, position, _ in got}
        if units != {(p.image_index, p.position) for p in reference}:
            wrong = sorted(units - {(p.image_index, p.position) for p in reference})
            raise CheckFailure(f"case {case}: the activations are right but the units {wrong} (image, (row, col)) are "
                               "not where those values are; check how you turn a flat index back into a row and a "
                               "column on a map that is not square. hint('hw4', 'Q5').")


# ---------------------------------------------------------------------------------------
# Q6: the experiment - does the occlusion map sit on the digit?
# ---------------------------------------------------------------------------------------

INK = 0.5   # a pixel of scikit-learn's digits (scaled to [0, 1]) at least this bright is ink
# The concentration (share of the map's positive mass on ink / share of the pixels that are ink, mean over the
# first 12 held-out digits) of the reference, _digit_model seeds 0-4 (test accuracy 0.95-0.98), baseline 0.3:
#   SmallCNN(8, 16), window (2, 2) stride (1, 1): 1.76 1.75 1.70 1.54 1.76  mean 1.70  sd 0.094
#   SmallCNN(8, 16), window (3, 3) stride (2, 2): 1.60 1.56 1.50 1.45 1.52  mean 1.53  sd 0.056
#   SmallCNN(6, 12), window (2, 2) stride (1, 1): 1.66 1.74 1.60 1.62 1.73  mean 1.67  sd 0.064
#   SmallCNN(6, 12), window (3, 3) stride (2, 2): 1.42 1.56 1.45 1.44 1.50  mean 1.47  sd 0.054
# The student's concentration on the checker's own run must exceed 1 (the direction: the map prefers the ink)
# and lie within 3 of the largest sd of the reference's on the same run (the size).
CONCENTRATION_TOLERANCE = 3 * 0.094


def _digit_model(seed: int, channels: tuple[int, int]):
    """SmallCNN trained for 150 Adam steps on 1,300 of scikit-learn's digits (float64, one thread, about
    1 s of CPU); returns (model in eval mode, held-out images (M, 1, 8, 8), their labels (M,))."""
    from course_lib.data import load_digits
    from course_lib.models import SmallCNN

    digits = load_digits()
    images, labels = digits.images.double(), digits.targets
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    train, held_out = order[:1300], order[1300:]
    model = SmallCNN(1, 10, channels=channels, input_size=8).double()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(150):
        batch = train[torch.randint(len(train), (64,), generator=generator)]
        loss = nn.functional.cross_entropy(model(images[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), images[held_out], labels[held_out]


def reference_ink_share(occlusion, model, images, labels, window, stride, baseline) -> torch.Tensor:
    """(N,): per image, the share of its occlusion map's positive mass (for its label) on ink pixels."""
    # BEGIN ANSWER hw4.Q6
    shares = []
    for image, label in zip(images, labels):
        heat = occlusion(model, image, int(label), window, stride, baseline).clamp(min=0)  # (1, 8, 8)
        shares.append((heat * (image >= INK)).sum() / heat.sum())
    return torch.stack(shares)
    # END ANSWER


def _concentration(shares, images) -> float:
    return float((shares.double().cpu() / (images >= INK).double().flatten(1).mean(dim=1)).mean())


def check_occlusion_experiment(ink_share, seed: int = 0):
    """ink_share(occlusion, model, images (N, 1, 8, 8), labels (N,), window, stride, baseline) -> (N,):
    rerun on the checker's own trained digit models with the reference occlusion map (so a wrong Q1 costs
    nothing here). The map must concentrate on the ink, by about as much as the reference's does."""
    import functools

    with one_thread():
        for run in range(2):
            rng = random.Random(1000 * seed + run)
            channels = rng.choice([(8, 16), (6, 12)])
            model, held_out, labels = _digit_model(rng.randrange(10_000), channels)
            count = rng.randint(10, 12)
            pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(rng.randrange(10_000)))[:count]
            images, labels = held_out[pick], labels[pick]
            window, stride = [((2, 2), (1, 1)), ((3, 3), (2, 2))][(seed + run) % 2]
            baseline = round(rng.uniform(0.25, 0.35), 2)
            occlusion = functools.partial(visualize.occlusion_map, batch_size=rng.choice([16, 64]))
            case = (f"digit model {channels}, {count} held-out digits, window {window}, stride {stride}, "
                    f"baseline {baseline}")
            with quiet_and_strict():
                got = call_student(ink_share, (occlusion, model, images.clone(), labels.clone(), window, stride,
                                               baseline), case, "ink_share")
            if not isinstance(got, torch.Tensor) or tuple(got.shape) != (count,):
                shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
                raise CheckFailure(f"case {case}: ink_share should return a tensor of shape ({count},), got {shape}")
            if not bool(((got >= -1e-9) & (got <= 1 + 1e-9)).all()):
                raise CheckFailure(f"case {case}: a share lies between 0 and 1; yours range over "
                                   f"[{float(got.min()):.3g}, {float(got.max()):.3g}]")
            yours = _concentration(got, images)
            expected = _concentration(reference_ink_share(occlusion, model, images, labels, window, stride, baseline),
                                      images)
            if yours <= 1 or abs(yours - expected) > CONCENTRATION_TOLERANCE:
                raise CheckFailure(
                    f"case {case}: on average your maps put {yours:.2f} times more of their mass on the ink than the "
                    f"ink's share of the pixels; this run should give {expected:.2f} +- {CONCENTRATION_TOLERANCE:.2f}. "
                    "Count only where hiding the pixels lowered the label's score, and ink as the bright pixels. "
                    "hint('hw4', 'Q6').")
