"""Checkers for hw3_augment_transfer: a label-keeping augmentation, flip test-time
augmentation, feature extraction with a linear classifier, and a LoRA linear layer."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from course_lib import augment, transfer
from course_lib.data import mnist_transfer_split, small_subset, train_val_split
from course_lib.grading.checks.compare import (
    CheckFailure, call_student, expect_close, grading_device, quiet_and_strict, random_tensor,
)
from course_lib.grading.checks.guard import forbid
from course_lib.models import pretrained_backbone

# what course_lib.grading re-exports
__all__ = [
    "check_augment", "check_tta_flip", "check_extract_features", "check_linear_classifier", "check_lora_linear",
]


PAD = 2
PROBE_ACCURACY = 0.90      # the reference linear probe reaches about 0.95 with 20 labels per class
PROBE_LABELS_PER_CLASS = 20


# -- Q1: augmentation that keeps labels ---------------------------------------------------------


def _candidates(image: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Every allowed view of one (C, H, W) image: flipped or not, shifted by up to PAD pixels."""
    h, w = image.shape[-2:]
    padded = {flip: F.pad(image.flip(-1) if flip else image, (PAD,) * 4) for flip in (False, True)}
    views = []
    for flip, top, left in itertools.product((False, True), range(2 * PAD + 1), range(2 * PAD + 1)):
        views.append((f"flip={flip}, shift=({top - PAD}, {left - PAD})", padded[flip][..., top:top + h, left:left + w]))
    return views


def check_augment(augment_fn, seed: int = 0):
    """augment_fn(images (N, C, H, W), labels (N,), generator) -> (images, labels): a random
    horizontal flip (probability 0.5) and a random crop of the image padded by 2 zero pixels
    per side, drawn independently for each image; the labels come back unchanged."""
    device = grading_device()
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(64, 1, 12, 12, generator=generator, dtype=torch.float64).to(device)
    labels = torch.randint(0, 10, (64,), generator=generator).to(device)
    with quiet_and_strict():
        result = call_student(augment_fn, (images.clone(), labels.clone(), torch.Generator(device=device).manual_seed(seed)), "a batch of 64 images", "augment")
    if not isinstance(result, tuple) or len(result) != 2:
        raise CheckFailure("augment should return a pair (images, labels)")
    out, out_labels = result
    if not torch.equal(torch.as_tensor(out_labels).to(labels.device), labels):
        raise CheckFailure("augment changed the labels (or their order): an augmentation changes the image, never what it shows")
    if not isinstance(out, torch.Tensor) or out.shape != images.shape:
        raise CheckFailure(f"augment should return images shaped like its input {tuple(images.shape)}")
    chosen = [_matching_view(out[i], images[i], i) for i in range(len(images))]
    flips = {name.split(",")[0] for name in chosen}
    shifts = {name.split(", ", 1)[1] for name in chosen}
    if len(flips) < 2 or len(shifts) < 3:
        raise CheckFailure(f"over 64 images augment used flips {sorted(flips)} and {len(shifts)} different shifts: "
                           "draw the flip and the crop position at random for each image")


def _matching_view(output, image, index):
    for name, view in _candidates(image):
        if torch.allclose(output, view, atol=1e-6):
            return name
    raise CheckFailure(f"image {index}: the output is not a horizontal flip and/or a shift by at most {PAD} pixels "
                       "(with zero padding) of its input. Pad with zeros, crop back to the same size, flip along the width.")


# -- Q2: flip test-time augmentation ------------------------------------------------------------


def _small_cnn(generator) -> nn.Module:
    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 5))


def check_tta_flip(tta_flip, seed: int = 0):
    """tta_flip(model, images (N, C, H, W)) -> logits (N, K): the mean of the model's logits
    on the images and on their horizontal flips."""
    device = grading_device()
    generator = torch.Generator().manual_seed(seed)
    model = _small_cnn(generator).to(device=device, dtype=torch.float64).eval()
    images = random_tensor(generator, 6, 3, 16, 16, device=device)
    expected = augment.tta_predict(model, images, views="flip", merge="mean")
    with quiet_and_strict(), forbid([augment.tta_predict, augment.tta_views], "tta_flip"):
        got = call_student(tta_flip, (model, images.clone()), "6 images of 3x16x16", "tta_flip")
    expect_close(got, expected, "6 images of 3x16x16", "the averaged logits",
                 "Average the logits of the original batch and of the batch flipped along the width (the last dimension).")


# -- Q3: features and a linear classifier -------------------------------------------------------


def _similar_task(seed: int):
    """Digits 5-9 (which the backbone never saw): a few labels per class to train, the rest to test."""
    similar = mnist_transfer_split()["similar"]
    train, test = train_val_split(similar, val_fraction=0.5, seed=seed)
    train = small_subset(train, PROBE_LABELS_PER_CLASS, seed=seed)
    stack = lambda part, n: (torch.stack([part[i][0] for i in range(n)]), torch.tensor([part[i][1] for i in range(n)]))  # noqa: E731
    return stack(train, len(train)), stack(test, min(len(test), 1000))


def check_extract_features(extract_features, seed: int = 0):
    """extract_features(backbone, images (N, 1, 28, 28)) -> (N, D): the backbone's penultimate
    activations (the input of its last Linear layer)."""
    device = grading_device()
    backbone = pretrained_backbone(map_location=device)
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(16, 1, 28, 28, generator=generator).to(device)
    expected, _ = transfer.extract_features(backbone, [(images, torch.zeros(16))])
    with quiet_and_strict(), forbid([transfer.extract_features], "extract_features"):
        got = call_student(extract_features, (backbone, images.clone()), "16 images", "extract_features")
    if isinstance(got, torch.Tensor):
        got = got.detach().cpu().double()
    expect_close(got, expected.double(), "16 images", "the features (N, D)",
                 "Run every layer except the last Linear (model.features then the head without its last layer), in eval mode, and flatten to (N, D).",
                 atol=1e-4, rtol=1e-4)


def check_linear_classifier(train_classifier, seed: int = 0):
    """train_classifier(features (N, D), labels (N,)) -> a fitted classifier with
    .predict(features) -> labels; on digits 5-9 with 20 labels per class it must reach
    PROBE_ACCURACY on held-out digits."""
    (train_x, train_y), (test_x, test_y) = _similar_task(seed)
    backbone = pretrained_backbone()
    train_f, _ = transfer.extract_features(backbone, [(train_x, train_y)])
    test_f, _ = transfer.extract_features(backbone, [(test_x, test_y)])
    with quiet_and_strict():
        classifier = call_student(train_classifier, (train_f.clone(), train_y.clone()), "20 labels per class", "train_classifier")
        predict = getattr(classifier, "predict", None)
        if not callable(predict):
            raise CheckFailure("train_classifier should return a fitted classifier with a .predict(features) method")
        predicted = torch.as_tensor(call_student(predict, (test_f.clone(),), "held-out digits", "classifier.predict")).reshape(-1)
    accuracy = (predicted.cpu().long() == test_y).double().mean().item()
    if accuracy < PROBE_ACCURACY:
        raise CheckFailure(f"your classifier reaches {accuracy:.3f} on {len(test_y)} held-out digits; it needs "
                           f"{PROBE_ACCURACY} (a standardized logistic regression reaches about 0.95). "
                           "Standardize the features and fit a linear classifier until it converges.")


# -- Q4: LoRA -----------------------------------------------------------------------------------


def check_lora_linear(LoRALinear, seed: int = 0):
    """LoRALinear(base: nn.Linear, r, alpha): frozen base, trainable A (r, in) and B (out, r)
    with B zero at the start, output base(x) + (alpha / r) x A^T B^T, and merge()."""
    device = grading_device()
    generator = torch.Generator().manual_seed(seed)
    for fan_in, fan_out, r, alpha in ((12, 7, 3, 6.0), (5, 9, 2, 2.0), (16, 16, 4, 1.0)):
        case = f"nn.Linear({fan_in}, {fan_out}), r={r}, alpha={alpha}"
        base = nn.Linear(fan_in, fan_out).to(device=device, dtype=torch.float64)
        x = random_tensor(generator, 10, fan_in, device=device)
        before = base(x).detach()
        with quiet_and_strict():
            layer = call_student(LoRALinear, (base, r, alpha), case, "LoRALinear")
            expect_close(call_student(layer, (x,), case, "LoRALinear.forward"), before, case, "the output at initialization",
                         "B starts at zero so that the adapted layer starts equal to the base layer.", atol=1e-12, rtol=0)
            _check_trainable(layer, base, fan_in, fan_out, r, case)
            with torch.no_grad():
                layer.A.copy_(random_tensor(generator, r, fan_in, device=device))
                layer.B.copy_(random_tensor(generator, fan_out, r, device=device))
            expected = before + (alpha / r) * x @ layer.A.detach().T @ layer.B.detach().T
            unmerged = call_student(layer, (x,), case, "LoRALinear.forward")
            expect_close(unmerged, expected, case, "the output with A and B set", "y = base(x) + (alpha / r) * x A^T B^T.")
            call_student(getattr(layer, "merge", None), (), case, "LoRALinear.merge")
            expect_close(call_student(layer, (x,), case, "LoRALinear.forward after merge()"), expected, case,
                         "the output after merge()", "merge() adds (alpha / r) B A to base.weight; forward must then not add it again.")


def _check_trainable(layer, base, fan_in, fan_out, r, case):
    for name, shape in (("A", (r, fan_in)), ("B", (fan_out, r))):
        tensor = getattr(layer, name, None)
        if not isinstance(tensor, nn.Parameter) or tuple(tensor.shape) != shape:
            raise CheckFailure(f"case {case}: LoRALinear.{name} should be an nn.Parameter of shape {shape}")
    if base.weight.requires_grad or (base.bias is not None and base.bias.requires_grad):
        raise CheckFailure(f"case {case}: the base layer's weight and bias must be frozen (requires_grad=False)")
    trainable = sum(p.numel() for p in layer.parameters() if p.requires_grad)
    if trainable != r * (fan_in + fan_out):
        raise CheckFailure(f"case {case}: {trainable} trainable parameters, expected r * (in + out) = {r * (fan_in + fan_out)}")
