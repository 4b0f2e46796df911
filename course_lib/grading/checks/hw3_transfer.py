"""Checkers for hw3_augment_transfer: a label-keeping augmentation (random shifts), flip
test-time augmentation, feature extraction with a linear classifier, LoRA for Linear and
Conv2d layers, fine-tuning the last blocks with batch norm frozen, and an experiment whose
effect is graded (augmentation with 20 labels per class).

Every checker draws its cases from `seed`: another seed gives other sizes, ranks, dtypes and
options, not the same cases in another order. Failure messages name the case and the size of
the error and point at the idea; they never print the reference's formula.
"""

from __future__ import annotations

import copy
import random

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from course_lib import augment, transfer
from course_lib.data import load_mnist, mnist_transfer_split, small_subset, train_val_split
from course_lib.grading.checks.compare import (
    CheckFailure,
    call_student,
    expect_close,
    grading_device,
    grading_dtype,
    one_thread,
    quiet_and_strict,
    random_tensor,
)
from course_lib.grading.checks.guard import forbid
from course_lib.models import SmallCNN, pretrained_backbone
from course_lib.replay import replayable

# what course_lib.grading re-exports
__all__ = [
    "check_augment", "check_tta_flip", "check_extract_features", "check_linear_classifier", "check_lora_linear",
    "check_fine_tuning", "check_lora_conv2d", "check_augmentation_experiment",
]

HINTS = {
    "Q1": "Which changes to a digit leave it the same digit? A small move does; a mirror image or a turn upside down "
          "does not. Every image gets its own random draw, and the pixels that move in from outside are empty "
          "(zero). Reread the lecture's slide on data augmentation (label-preserving transformations).",
    "Q2": "Test-time augmentation shows the model the same picture in ways that keep its meaning and combines the "
          "answers. Which axis of an (N, C, H, W) tensor is left-right? Which quantity does the question say to "
          "average? Reread the slide on test-time augmentation.",
    "Q3": "The CNN code is what the network computes just before its classifier. A feature extractor must give the "
          "same vector for the same image every time: think about which layers behave differently while training, "
          "and whether gradients are needed. Reread the transfer-learning slide 'CNN as a fixed feature extractor'.",
    "Q4": "The adapted layer must start exactly as the pretrained layer and still be able to learn: which of the two "
          "factors may start at zero, and which must not? The rank r and the strength alpha are separate knobs. "
          "After merging, the update lives in the weight. Reread the LoRA slide (Hu et al. 2021).",
    "Q5": "requires_grad decides which weights the optimizer changes; running statistics are not weights and change "
          "whenever a BatchNorm layer runs in training mode. A later switch of the whole model to training mode "
          "undoes a one-off switch to evaluation mode. "
          "Reread the slide on fine-tuning the last blocks.",
    "Q6": "B(A(x)) must have exactly the shape and the alignment of base(x) at every output position: A must look at "
          "the same window of the input as the base conv, B only mixes channels at one position (and respects "
          "the base's channel groups). Reread the LoRA slide, then the Conv2d parameters in the PyTorch docs.",
    "Q7": "Augmentation must produce a new random version of each training image every time it is drawn; augmenting "
          "the training set once gives just another fixed training set. Keep everything else (initialization, "
          "batches) the same between the two runs. Reread the slide on data augmentation and small data.",
}


def _rng(seed: int, salt: str) -> random.Random:
    """Python RNG for choosing a checker's cases: the seed changes the cases themselves."""
    return random.Random(f"hw3-{salt}-{seed}")


def _dtypes(device: torch.device) -> tuple[torch.dtype, torch.dtype]:
    """(float32, float64), or float32 twice where float64 does not exist (MPS)."""
    return torch.float32, grading_dtype(device)


def _tolerance(dtype: torch.dtype) -> tuple[float, float]:
    return (1e-5, 1e-4) if dtype == torch.float32 else (1e-10, 1e-8)


# -- Q1: an augmentation that keeps the label ---------------------------------------------------


def _shift_grid(max_shift: int) -> list[tuple[int, int]]:
    """Every (dy, dx) with |dy|, |dx| <= max_shift, dy slowest: the order of `_shift_sources`."""
    return [(dy, dx) for dy in range(-max_shift, max_shift + 1) for dx in range(-max_shift, max_shift + 1)]


def _shift_sources(height: int, width: int, max_shift: int) -> torch.Tensor:
    """(S, H, W) long, one map per shift (dy, dx) of `_shift_grid(max_shift)`: for each pixel
    of an H x W image moved down by dy and right by dx, the flat index (row * W + column) of
    the input pixel it shows, or -1 where nothing moved in (a zero)."""
    # BEGIN ANSWER hw3.Q1
    grid = torch.tensor(_shift_grid(max_shift))  # (S, 2)
    rows = torch.arange(height)[None, :, None] - grid[:, 0, None, None]  # (S, H, 1): the row each row shows
    cols = torch.arange(width)[None, None, :] - grid[:, 1, None, None]  # (S, 1, W)
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)  # (S, H, W)
    return torch.where(inside, rows * width + cols, -1)
    # END ANSWER


def _moved(images: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """images (N, C, H, W) rearranged by `sources` (N, H, W), flat input indices as made by
    `_shift_sources` (-1: zero): (N, C, H, W), the images' dtype and device."""
    n, c, h, w = images.shape
    index = sources.to(images.device).reshape(n, 1, h * w)  # (N, 1, H*W)
    picked = images.reshape(n, c, h * w).gather(2, index.clamp(min=0).expand(n, c, h * w))  # (N, C, H*W)
    return torch.where(index >= 0, picked, 0).reshape(n, c, h, w)


def _all_shifts(image: torch.Tensor, max_shift: int) -> torch.Tensor:
    """image (C, H, W) moved by every shift of `_shift_grid(max_shift)`: (S, C, H, W)."""
    sources = _shift_sources(*image.shape[-2:], max_shift)  # (S, H, W)
    return _moved(image.expand(len(sources), *image.shape), sources)


def _augment_cases(seed: int):
    """(n, c, h, w, max_shift, dtype) per case: a large batch to see the draws, N = 1, C = 1 and
    C = 3, non-square images, float32 and float64, shifts of 1 to 3 pixels."""
    rng = _rng(seed, "augment")
    float32, float64 = _dtypes(grading_device())
    shifts = rng.sample([1, 2, 3], 3)
    big_c = rng.choice([1, 3])
    return [
        (96, big_c, rng.randint(8, 12), rng.randint(13, 16), shifts[0], float64),
        (1, 4 - big_c, rng.randint(9, 14), rng.randint(6, 8), shifts[1], float32),
        (rng.randint(3, 7), 1, rng.randint(10, 12), rng.randint(10, 12), shifts[2], float32),
    ]


def check_augment(augment_fn, seed: int = 0):
    """augment_fn(images (N, C, H, W), labels (N,), generator, max_shift) -> (images, labels):
    every image moved by its own random whole-pixel shift of at most max_shift in each
    direction (zeros move in), drawn from the CPU `generator`; the labels unchanged."""
    device = grading_device()
    generator = torch.Generator().manual_seed(seed)
    for n, c, h, w, max_shift, dtype in _augment_cases(seed):
        case = f"{n} image(s) of {c}x{h}x{w} ({str(dtype).replace('torch.', '')}), max_shift={max_shift}"
        images = (0.1 + torch.rand(n, c, h, w, generator=generator, dtype=torch.float64)).to(device=device, dtype=dtype)
        labels = torch.randint(0, 10, (n,), generator=generator).to(device)
        out = _call_augment(augment_fn, images, labels, max_shift, seed, case)
        chosen = [_matching_shift(out[i], images[i], max_shift, i, case) for i in range(n)]
        if n >= 64:  # enough draws to see every shift
            _check_draws(chosen, max_shift, case)
        again = _call_augment(augment_fn, images, labels, max_shift, seed, case, global_seed=seed + 1)
        if not torch.equal(again, out):
            raise CheckFailure(f"case {case}: two calls with generators seeded alike gave different images. "
                               "Draw all the randomness from the generator argument.")


def _call_augment(augment_fn, images, labels, max_shift, seed, case, global_seed=None):
    with quiet_and_strict(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed if global_seed is None else global_seed)
        result = call_student(augment_fn, (images.clone(), labels.clone(), torch.Generator().manual_seed(seed + 7),
                                           max_shift), case, "augment")
    if not isinstance(result, tuple) or len(result) != 2:
        raise CheckFailure(f"case {case}: augment should return a pair (images, labels)")
    out, out_labels = result
    if not torch.equal(torch.as_tensor(out_labels).to(labels.device), labels):
        raise CheckFailure(f"case {case}: augment changed the labels (or their order): an augmentation changes the "
                           "picture, never what it shows")
    if not isinstance(out, torch.Tensor) or out.shape != images.shape or out.dtype != images.dtype \
            or out.device != images.device:
        got = f"{tuple(out.shape)}, {out.dtype}, {out.device}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise CheckFailure(f"case {case}: augment should return images of the input's shape, dtype and device "
                           f"({tuple(images.shape)}, {images.dtype}, {images.device}); got {got}")
    return out


def _matching_shift(output, image, max_shift, index, case):
    candidates = _all_shifts(image, max_shift)  # (S, C, H, W)
    for (dy, dx), candidate in zip(_shift_grid(max_shift), candidates):
        if torch.allclose(output, candidate, atol=1e-6, rtol=0):
            return dy, dx
    error = min(float((output - candidate).abs().max()) for candidate in candidates)
    raise CheckFailure(f"case {case}: image {index} is not its input moved by whole pixels, at most {max_shift} "
                       f"in each direction, with zeros moving in (closest such shift still differs by {error:.3g}). "
                       "Which transformations keep a digit the same digit?")


def _check_draws(chosen, max_shift, case):
    values = range(-max_shift, max_shift + 1)
    for axis, name in ((0, "vertical"), (1, "horizontal")):
        seen = {shift[axis] for shift in chosen}
        if seen != set(values):
            raise CheckFailure(f"case {case}: over {len(chosen)} images the {name} shifts took the values "
                               f"{sorted(seen)}; every whole shift from -{max_shift} to {max_shift} should occur")
    possible = len(values) ** 2
    if len(set(chosen)) < 0.6 * possible:
        raise CheckFailure(f"case {case}: over {len(chosen)} images only {len(set(chosen))} of the {possible} "
                           "possible (vertical, horizontal) shifts occurred: draw both shifts independently, "
                           "for each image")


# -- Q2: flip test-time augmentation ------------------------------------------------------------


def _tta_cases(seed: int):
    """(n, c, h, w, classes, dtype): N = 1, C = 1 and 3, non-square, float32 and float64."""
    rng = _rng(seed, "tta")
    float32, float64 = _dtypes(grading_device())
    c = rng.choice([1, 3])
    return [(1, c, rng.randint(5, 9), rng.randint(10, 14), rng.randint(2, 4), float64),
            (rng.randint(2, 8), 4 - c, rng.randint(10, 14), rng.randint(5, 9), rng.randint(5, 9), float32)]


def _tta_model(c, h, w, classes, generator, device, dtype) -> nn.Module:
    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
    model = nn.Sequential(nn.Conv2d(c, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * h * w, classes))
    return model.to(device=device, dtype=dtype).eval()


def check_tta_flip(tta_flip, seed: int = 0):
    """tta_flip(model, images (N, C, H, W)) -> logits (N, K): the mean of the model's logits
    on the images and on their left-right mirror images, without gradients."""
    device = grading_device()
    generator = torch.Generator().manual_seed(seed)
    for n, c, h, w, classes, dtype in _tta_cases(seed):
        case = f"{n} image(s) of {c}x{h}x{w}, {classes} classes ({str(dtype).replace('torch.', '')})"
        model = _tta_model(c, h, w, classes, generator, device, dtype)
        images = random_tensor(generator, n, c, h, w, device=device, dtype=dtype)
        with quiet_and_strict():
            expected = augment.tta_predict(model, images, views="flip", merge="mean")
            with forbid([augment.tta_predict, augment.tta_views], "tta_flip"):
                got = call_student(tta_flip, (model, images.clone()), case, "tta_flip")
        atol, rtol = _tolerance(dtype)
        expect_close(got, expected, case, "the merged logits",
                     "Which axis is left-right, and which quantity does the question average?", atol=atol, rtol=rtol)
        if got.requires_grad:
            raise CheckFailure(f"case {case}: the result carries gradient history; predicting needs no gradients")


# -- Q3: features and a linear classifier -------------------------------------------------------


def _feature_cases(seed: int, device):
    """(name, backbone in train mode, images): the pretrained backbone (float32, 1 to 16 images)
    and a random SmallCNN with batch norm and dropout (float64, other channels and size)."""
    rng = _rng(seed, "features")
    generator = torch.Generator().manual_seed(seed)
    float32, float64 = _dtypes(device)
    n = rng.choice([1, rng.randint(5, 16)])
    pretrained = pretrained_backbone(map_location=device)
    yield "the pretrained backbone", pretrained.train(), torch.rand(n, 1, 28, 28, generator=generator).to(device)
    c, size, widths = rng.choice([1, 3]), rng.choice([12, 16, 20]), (rng.randint(3, 6), rng.randint(4, 8))
    torch.manual_seed(rng.randint(0, 2**31 - 1))
    model = SmallCNN(in_channels=c, num_classes=rng.randint(3, 7), channels=widths, batch_norm=True,
                     dropout=0.5, input_size=size)
    for layer in model.modules():
        if isinstance(layer, _BatchNorm):  # statistics unlike any batch's, so train mode shows
            layer.running_mean.uniform_(-1, 1, generator=generator)
            layer.running_var.uniform_(0.5, 2, generator=generator)
    images = random_tensor(generator, 1 + n % 7, c, size, size, device=device, dtype=float64)
    name = f"SmallCNN(in_channels={c}, channels={widths}, batch_norm=True, dropout=0.5, input_size={size})"
    yield name, model.to(device=device, dtype=float64).train(), images


def check_extract_features(extract_features, seed: int = 0):
    """extract_features(backbone, images (N, C, H, W)) -> (N, D): the backbone's penultimate
    activations (the input of its last Linear layer), the same whatever mode the backbone
    was left in, without gradient history."""
    device = grading_device()
    for name, backbone, images in _feature_cases(seed, device):
        case = f"{name}, {len(images)} image(s) of {'x'.join(map(str, images.shape[1:]))}"
        with quiet_and_strict():
            expected, _ = transfer.extract_features(backbone, [(images, torch.zeros(len(images)))])
            with forbid([transfer.extract_features], "extract_features"):
                got = call_student(extract_features, (backbone, images.clone()), case, "extract_features")
        if isinstance(got, torch.Tensor) and got.requires_grad:
            raise CheckFailure(f"case {case}: the features carry gradient history; extracting features needs none")
        if isinstance(got, torch.Tensor):
            got = got.detach().cpu().double()
        atol, rtol = _tolerance(images.dtype)
        expect_close(got, expected.double(), case, "the features (N, D)",
                     "Which layer's input is the CNN code? Do dropout and batch norm behave the same in both modes?",
                     atol=max(atol, 1e-5), rtol=max(rtol, 1e-4))


PROBE_ACCURACY = 0.90  # the reference probe: 0.95 (20 per class), 0.96 (30 per class) on held-out 5-9


def _similar_task(seed: int, per_class: int):
    """Digits 5-9 (which the backbone never saw): `per_class` labels per class to train, up to
    1000 of the others to test."""
    train, test = train_val_split(mnist_transfer_split()["similar"], val_fraction=0.5, seed=seed)
    train = small_subset(train, per_class, seed=seed)
    stack = lambda part, n: (torch.stack([part[i][0] for i in range(n)]), torch.tensor([part[i][1] for i in range(n)]))  # noqa: E731
    return stack(train, len(train)), stack(test, min(len(test), 1000))


def check_linear_classifier(train_classifier, seed: int = 0):
    """train_classifier(features (N, D), labels (N,)) -> a fitted classifier with
    .predict(features) -> labels; on digits 5-9 with 20 or 30 labels per class (by seed) it
    must reach PROBE_ACCURACY on held-out digits."""
    per_class = (20, 30)[seed % 2]
    (train_x, train_y), (test_x, test_y) = _similar_task(seed, per_class)
    backbone = pretrained_backbone()
    with quiet_and_strict():
        train_f, _ = transfer.extract_features(backbone, [(train_x, train_y)])
        test_f, _ = transfer.extract_features(backbone, [(test_x, test_y)])
        case = f"{per_class} labels per class"
        classifier = call_student(train_classifier, (train_f.clone(), train_y.clone()), case, "train_classifier")
        predict = getattr(classifier, "predict", None)
        if not callable(predict):
            raise CheckFailure("train_classifier should return a fitted classifier with a .predict(features) method")
        predicted = torch.as_tensor(call_student(predict, (test_f.clone(),), case, "classifier.predict")).reshape(-1)
    accuracy = (predicted.cpu().long() == test_y).double().mean().item()
    if accuracy < PROBE_ACCURACY:
        raise CheckFailure(f"case {case}: your classifier reaches {accuracy:.3f} on {len(test_y)} held-out digits; "
                           f"it needs {PROBE_ACCURACY}. Are the features on a common scale, and has the fit converged?")


# -- Q4: LoRA for Linear ------------------------------------------------------------------------


def _lora_linear_cases(seed: int):
    """(in, out, r, alpha, bias, input shape without the last axis, dtype): 2-D and 3-D inputs,
    N = 1, r = 1 and r = min(in, out), with and without bias, float32 and float64."""
    rng = _rng(seed, "lora-linear")
    float32, float64 = _dtypes(grading_device())
    cases = []
    for index, dtype in enumerate((float64, float32, float64)):
        fan_in, fan_out = rng.randint(2, 20), rng.randint(2, 20)
        r = (1, min(fan_in, fan_out), rng.randint(1, min(fan_in, fan_out)))[index]
        batch = ((1,), (rng.randint(2, 4), rng.randint(2, 5)), (rng.randint(2, 10),))[index]
        cases.append((fan_in, fan_out, r, rng.choice([0.5, 1.0, 2.0, 8.0, 16.0]), index != 1, batch, dtype))
    return cases


def check_lora_linear(LoRALinear, seed: int = 0):
    """LoRALinear(base: nn.Linear, r, alpha): frozen base, trainable A (r, in) and B (out, r)
    (nn.Parameters) with the adapted layer equal to the base at the start and able to learn,
    the LoRA output with scaling alpha / r, and merge()."""
    device = grading_device()
    generator = torch.Generator().manual_seed(seed)
    for fan_in, fan_out, r, alpha, bias, batch, dtype in _lora_linear_cases(seed):
        case = (f"nn.Linear({fan_in}, {fan_out}, bias={bias}), r={r}, alpha={alpha}, x {(*batch, fan_in)} "
                f"({str(dtype).replace('torch.', '')})")
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        base = nn.Linear(fan_in, fan_out, bias=bias).to(device=device, dtype=dtype)
        pristine = copy.deepcopy(base)
        reference = _lora_reference(pristine, r, alpha)
        x = random_tensor(generator, *batch, fan_in, device=device, dtype=dtype)
        atol, rtol = _tolerance(dtype)
        with quiet_and_strict():
            layer = call_student(LoRALinear, (base, r, alpha), case, "LoRALinear")
            _check_lora_parameters(layer, reference, pristine, case, kind="nn.Parameter")
            _check_lora_start(layer, pristine, x, case, atol, rtol)
            with torch.no_grad():
                layer.A.copy_(random_tensor(generator, r, fan_in, device=device, dtype=dtype))
                layer.B.copy_(random_tensor(generator, fan_out, r, device=device, dtype=dtype))
            expected = _lora_reference_output(pristine, r, alpha, layer.A.detach(), layer.B.detach(), x)
            expect_close(call_student(layer, (x,), case, "LoRALinear.forward"), expected, case,
                         "the output with A and B set", "How do r and alpha enter the update's strength?",
                         atol=atol, rtol=rtol)
            call_student(getattr(layer, "merge", None), (), case, "LoRALinear.merge")
            expect_close(call_student(layer, (x,), case, "LoRALinear.forward after merge()"), expected, case,
                         "the output after merge()", "After merging, the whole update is in the weight, counted once.",
                         atol=atol, rtol=rtol)


@replayable("hw3")
def _lora_reference(base: nn.Module, r: int, alpha: float) -> dict:
    """The reference LoRA layer around a copy of `base` (nn.Linear or nn.Conv2d): the shapes
    of its A and B weights and its number of trainable parameters."""
    reference = _reference_lora_layer(base, r, alpha)
    return {"A": tuple(reference.lora_A.weight.shape), "B": tuple(reference.lora_B.weight.shape),
            "trainable": transfer.trainable_parameters(reference)}


@replayable("hw3")
def _lora_reference_output(base: nn.Module, r: int, alpha: float, a: torch.Tensor, b: torch.Tensor,
                           x: torch.Tensor) -> torch.Tensor:
    """The reference LoRA layer's output on x with its A and B weights set to `a` and `b`."""
    reference = _reference_lora_layer(base, r, alpha)
    with torch.no_grad():
        reference.lora_A.weight.copy_(a)
        reference.lora_B.weight.copy_(b)
        return reference(x)


def _reference_lora_layer(base: nn.Module, r: int, alpha: float) -> nn.Module:
    kind = transfer.LoRALinear if isinstance(base, nn.Linear) else transfer.LoRAConv2d
    return kind(copy.deepcopy(base), r, alpha)


def _check_lora_start(layer, pristine, x, case, atol, rtol):
    """At the start: the output is the base's (`pristine`, an untouched copy), and the adapter
    gets a gradient (can learn)."""
    before = pristine(x).detach()
    out = call_student(layer, (x,), case, "forward")
    expect_close(out, before, case, "the output at the start",
                 "The adapted layer must start equal to the pretrained layer.", atol=atol, rtol=rtol)
    if not out.requires_grad:
        raise CheckFailure(f"case {case}: the output at the start has no gradient: the adapter cannot learn")
    (out * torch.randn_like(out)).sum().backward()
    grads = [p.grad for p in layer.parameters() if p.requires_grad and p.grad is not None]
    if not any(bool(g.abs().sum() > 0) for g in grads):
        raise CheckFailure(f"case {case}: after one backward pass at the start, every gradient of the adapter is "
                           "zero, so training would never move it. Can both factors start at zero?")
    layer.zero_grad(set_to_none=True)


def _check_lora_parameters(layer, reference, pristine, case, kind):
    """A and B of the reference's shapes (`_lora_reference`), with the base weight's dtype and
    device, the base frozen, as many trainable numbers as the reference."""
    base_weight = pristine.weight
    for name in ("A", "B"):
        part = getattr(layer, name, None)
        weight = part if kind == "nn.Parameter" else getattr(part, "weight", None)
        ok_type = isinstance(part, nn.Parameter) if kind == "nn.Parameter" else isinstance(part, nn.Conv2d)
        if not ok_type or not isinstance(weight, torch.Tensor):
            raise CheckFailure(f"case {case}: {name} should be an {kind}, got {type(part).__name__}")
        if tuple(weight.shape) != tuple(reference[name]):
            raise CheckFailure(f"case {case}: {name} has {'weight ' if kind != 'nn.Parameter' else ''}shape "
                               f"{tuple(weight.shape)}, which does not fit this layer")
        if weight.dtype != base_weight.dtype or weight.device != base_weight.device:
            raise CheckFailure(f"case {case}: {name} is {weight.dtype} on {weight.device}; make it like the base "
                               f"weight ({base_weight.dtype} on {base_weight.device})")
    base = getattr(layer, "base", None)
    if not isinstance(base, nn.Module) or any(p.requires_grad for p in base.parameters()):
        raise CheckFailure(f"case {case}: the base layer (self.base) must be kept and frozen (requires_grad=False)")
    trainable = sum(p.numel() for p in layer.parameters() if p.requires_grad)
    wanted = reference["trainable"]
    if trainable != wanted:
        raise CheckFailure(f"case {case}: {trainable} trainable parameters, expected {wanted}")


# -- Q5: fine-tuning the last blocks ------------------------------------------------------------


def _fine_tuning_model(rng: random.Random, device, dtype):
    """A conv net of 2-4 blocks, batch norm in some (one nested a level deeper), a head with
    BatchNorm1d or not; returns (model, blocks) with random running statistics."""
    c, widths = rng.choice([1, 3]), [rng.randint(2, 5) for _ in range(rng.randint(2, 4))]
    layers, channels = [], c
    for index, width in enumerate(widths):
        block = [nn.Conv2d(channels, width, 3, padding=1)]
        if index == 0 or rng.random() < 0.6:
            norm = nn.BatchNorm2d(width)
            block.append(nn.Sequential(norm, nn.ReLU()) if index == 1 else norm)
        layers.append(nn.Sequential(*block, nn.ReLU()))
        channels = width
    head = [nn.AdaptiveAvgPool2d(2), nn.Flatten()] + ([nn.BatchNorm1d(4 * channels)] if rng.random() < 0.5 else [])
    head.append(nn.Linear(4 * channels, rng.randint(2, 6)))
    torch.manual_seed(rng.randint(0, 2**31 - 1))
    model = nn.Sequential(nn.Sequential(*layers), nn.Sequential(*head))
    for layer in model.modules():
        if isinstance(layer, _BatchNorm):
            layer.running_mean.uniform_(-1, 1)
            layer.running_var.uniform_(0.5, 2)
    model.to(device=device, dtype=dtype)
    return model, [*model[0], model[1]], c


def _fine_tuning_cases(seed: int):
    """(model, blocks, train_last, in channels): train_last 0 (nothing), all blocks (the whole
    network) and one in between, float32 and float64."""
    rng = _rng(seed, "fine-tuning")
    device = grading_device()
    float32, float64 = _dtypes(device)
    for index, dtype in enumerate((float64, float32, float32)):
        model, blocks, c = _fine_tuning_model(rng, device, dtype)
        train_last = (0, len(blocks), rng.randint(1, len(blocks) - 1))[index]
        yield model, blocks, train_last, c


def check_fine_tuning(prepare_fine_tuning, seed: int = 0):
    """prepare_fine_tuning(model, blocks, train_last): only the parameters of the last
    `train_last` of `blocks` stay trainable, and every BatchNorm layer of the model keeps
    normalizing with (and never updates) its running statistics, even after model.train()."""
    generator = torch.Generator().manual_seed(seed)
    for model, blocks, train_last, c in _fine_tuning_cases(seed):
        dtype = next(model.parameters()).dtype
        case = f"{len(blocks)} blocks, train_last={train_last} ({str(dtype).replace('torch.', '')})"
        inputs = [random_tensor(generator, 6, c, 7, 9, device=module_device(model), dtype=dtype) * 2 + 1
                  for _ in range(2)]
        with quiet_and_strict():  # strict numerics for the reference too (no TF32 on a GPU)
            reference = _fine_tuned_reference(model, train_last, inputs)
        model.requires_grad_(True)
        with quiet_and_strict():
            call_student(prepare_fine_tuning, (model, list(blocks), train_last), case, "prepare_fine_tuning")
        wrong = [(name, should) for (name, p), should in zip(model.named_parameters(), reference["trainable"])
                 if p.requires_grad != should]
        if wrong:
            name, should = wrong[0]
            raise CheckFailure(f"case {case}: parameter {name} (and {len(wrong) - 1} more) should be "
                               f"{'trainable' if should else 'frozen'}")
        _check_statistics_kept(model, inputs, reference["outputs"][-1], case)


@replayable("hw3")
def _fine_tuned_reference(model: nn.Module, train_last: int, inputs: list[torch.Tensor]) -> dict:
    """The reference preparation of a copy of `model` (blocks: its first part's children, then
    its head): which parameters stay trainable (in `parameters()` order), and its outputs in
    train mode on each of `inputs`, one after the other."""
    reference = copy.deepcopy(model)
    transfer.freeze(reference, train_last, blocks=[*reference[0], reference[1]])
    transfer.freeze_bn(reference)
    reference.train()
    return {"trainable": [p.requires_grad for p in reference.parameters()],
            "outputs": [reference(x).detach() for x in inputs]}


def _check_statistics_kept(model, inputs, expected, case):
    """Train mode, a forward pass on each of `inputs`: running statistics unchanged, and the
    last output equals `expected`, the reference's (which normalizes with the running statistics)."""
    statistics = {name: b.clone() for name, b in model.named_buffers()}
    model.train()
    with quiet_and_strict():
        for x in inputs:
            got = call_student(model, (x,), case, "the prepared model")
    changed = [name for name, b in model.named_buffers() if not torch.equal(b, statistics[name])]
    if changed:
        raise CheckFailure(f"case {case}: after model.train() and two batches, the BatchNorm statistics "
                           f"{changed[0]} changed (and {len(changed) - 1} more): fine-tuning would drift them")
    atol, rtol = _tolerance(next(model.parameters()).dtype)
    expect_close(got, expected, case, "the output after model.train()",
                 "Which statistics does a BatchNorm layer normalize with in training mode?", atol=atol, rtol=rtol)


def module_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


# -- Q6: LoRA for Conv2d ------------------------------------------------------------------------


def _lora_conv_cases(seed: int):
    """Conv2d settings and inputs: square and non-square kernels, stride 1, 2 and larger than
    the kernel, padding 0 and more, dilation 1 and 2, groups 1 and 2, with and without bias,
    N = 1, C = 1, non-square images, float32 and float64."""
    rng = _rng(seed, "lora-conv")
    float32, float64 = _dtypes(grading_device())
    kernels = rng.sample([(3, 3), (1, 3), (3, 2), (2, 2)], 2)
    return [
        dict(in_channels=1, out_channels=rng.randint(2, 6), kernel_size=kernels[0], stride=1,
             padding=rng.choice([0, 1]), dilation=rng.choice([1, 2]), groups=1, bias=True, r=1,
             alpha=rng.choice([1.0, 4.0]), n=1, size=(rng.randint(7, 9), rng.randint(10, 12)), dtype=float64),
        dict(in_channels=2 * rng.randint(1, 3), out_channels=2 * rng.randint(2, 4), kernel_size=kernels[1],
             stride=rng.choice([1, 2]), padding=(rng.randint(0, 2), rng.randint(0, 1)), dilation=2, groups=2,
             bias=False, r=2 * rng.randint(1, 2), alpha=rng.choice([2.0, 8.0]), n=rng.randint(2, 4),
             size=(rng.randint(9, 12), rng.randint(7, 10)), dtype=float32),
        dict(in_channels=rng.randint(2, 4), out_channels=rng.randint(3, 6), kernel_size=1, stride=rng.choice([2, 3]),
             padding=rng.choice([0, 1]), dilation=1, groups=1, bias=rng.choice([True, False]), r=rng.randint(1, 2),
             alpha=rng.choice([0.5, 3.0]), n=rng.randint(2, 3), size=(rng.randint(8, 11), rng.randint(8, 11)),
             dtype=float64),
    ]


def check_lora_conv2d(LoRAConv2d, seed: int = 0):
    """LoRAConv2d(base: nn.Conv2d, r, alpha): frozen base, trainable nn.Conv2d submodules A
    and B whose composition lines up with the base conv for every kernel, stride, padding,
    dilation and groups setting, equal to the base at the start, scaling alpha / r."""
    device = grading_device()
    generator = torch.Generator().manual_seed(seed)
    for settings in _lora_conv_cases(seed):
        settings = dict(settings)
        r, alpha, n, size, dtype = (settings.pop(k) for k in ("r", "alpha", "n", "size", "dtype"))
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        base = nn.Conv2d(**settings).to(device=device, dtype=dtype)
        case = f"{base}, r={r}, alpha={alpha}, x ({n}, {settings['in_channels']}, {size[0]}, {size[1]})"
        pristine = copy.deepcopy(base)
        reference = _lora_reference(pristine, r, alpha)
        x = random_tensor(generator, n, settings["in_channels"], *size, device=device, dtype=dtype)
        atol, rtol = _tolerance(dtype)
        with quiet_and_strict():
            layer = call_student(LoRAConv2d, (base, r, alpha), case, "LoRAConv2d")
            _check_lora_parameters(layer, reference, pristine, case, kind="nn.Conv2d")
            _check_lora_start(layer, pristine, x, case, atol, rtol)
            with torch.no_grad():
                for part in (layer.A, layer.B):
                    part.weight.copy_(random_tensor(generator, *part.weight.shape, device=device, dtype=dtype))
            expected = _lora_reference_output(pristine, r, alpha, layer.A.weight.detach(), layer.B.weight.detach(), x)
            expect_close(call_student(layer, (x,), case, "LoRAConv2d.forward"), expected, case,
                         "the output with A and B set",
                         "Does A see the same window of the input as the base conv, at the same positions?",
                         atol=atol, rtol=rtol)


# -- Q7: the experiment: augmentation with 20 labels per class ----------------------------------

EXPERIMENT_PER_CLASS = 20
EXPERIMENT_STEPS = 300
EXPERIMENT_SEEDS = 3
EXPERIMENT_TEST_SIZE = 1000
# Measured 2026-11-30 (2-core CPU, one thread: 4 s per seed for both runs) with the solution's
# train_with_augmentation and reference_shift (max_shift=2): 20 MNIST images per class, 300 Adam
# steps of 20, SmallCNN(8, 16), 1000 test images. Gain = test accuracy with minus without, seeds 0-13:
#   .051 .082 .047 .023 .051 .012 .062 .057 .023 .033 .047 .046 .058 .031 -> mean 0.0445, sd 0.0185
# accuracy without augmentation: mean 0.833, sd 0.012 (0.816 .. 0.855).
# Augmenting the training set once instead (a wrong answer), seeds 0-5: -.054 -.068 -.040 -.006
# -.050 -.049. The checker averages EXPERIMENT_SEEDS = 3 seeds: the mean gain has sd
# 0.0185 / sqrt(3) = 0.0107, and must lie within mean +- 3 sd = [0.012, 0.077]; the accuracy without
# augmentation must reach 0.78 (7 sd below the reference's 3-seed mean, room for other valid loops).
EXPERIMENT_GAIN = (0.012, 0.077)
EXPERIMENT_MIN_ACCURACY = 0.78


def reference_shift(images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator, max_shift: int = 2):
    """Q1's augmentation, for the experiment (so a wrong Q1 costs Q1 only): (images, labels),
    each image (N, C, H, W) moved by its own (dy, dx), drawn from `generator`."""
    shifts = torch.randint(-max_shift, max_shift + 1, (len(images), 2), generator=generator)  # (N, 2)
    which = (shifts[:, 0] + max_shift) * (2 * max_shift + 1) + shifts[:, 1] + max_shift  # place in _shift_grid
    return _moved(images, _shift_sources(*images.shape[-2:], max_shift)[which]), labels


def _experiment_data(seed: int):
    """20 images per class drawn with `seed` from a fixed 70% of the bundled MNIST test set, and
    a fixed test set from the other 30%."""
    pool, test = train_val_split(load_mnist("test"), val_fraction=0.3, seed=0)
    train = small_subset(pool, EXPERIMENT_PER_CLASS, seed=seed)
    stack = lambda part, n: (torch.stack([part[i][0] for i in range(n)]), torch.tensor([part[i][1] for i in range(n)]))  # noqa: E731
    return stack(train, len(train)), stack(test, EXPERIMENT_TEST_SIZE)


def _accuracy(model, x, y) -> float:
    if not isinstance(model, nn.Module):
        raise CheckFailure(f"train_with_augmentation should return the trained model, got {type(model).__name__}")
    model.eval()
    with torch.no_grad():
        return float((model(x.to(module_device(model))).argmax(1).cpu() == y).double().mean())


def check_augmentation_experiment(train_with_augmentation, seed: int = 0):
    """train_with_augmentation(images, labels, augment_fn, steps, seed) -> trained SmallCNN;
    rerun on EXPERIMENT_SEEDS seeds with and without the reference shift: the mean gain in
    test accuracy must lie in EXPERIMENT_GAIN (measured from the reference's spread)."""
    gains, plain = [], []
    for run_seed in range(seed * EXPERIMENT_SEEDS, (seed + 1) * EXPERIMENT_SEEDS):
        (x, y), (test_x, test_y) = _experiment_data(run_seed)
        accuracy = {}
        for name, fn in (("without", None), ("with", reference_shift)):
            case = f"seed {run_seed}, {name} augmentation"
            with quiet_and_strict(), torch.random.fork_rng(devices=[]), one_thread():
                model = call_student(train_with_augmentation, (x.clone(), y.clone(), fn, EXPERIMENT_STEPS, run_seed),
                                     case, "train_with_augmentation")
                accuracy[name] = _accuracy(model, test_x, test_y)
        gains.append(accuracy["with"] - accuracy["without"])
        plain.append(accuracy["without"])
    mean_gain, mean_plain = sum(gains) / len(gains), sum(plain) / len(plain)
    runs = f"seeds {seed * EXPERIMENT_SEEDS}..{(seed + 1) * EXPERIMENT_SEEDS - 1}"
    if mean_plain < EXPERIMENT_MIN_ACCURACY:
        raise CheckFailure(f"{runs}: without augmentation your training reaches {mean_plain:.3f} test accuracy, "
                           f"the reference about 0.83 (at least {EXPERIMENT_MIN_ACCURACY} needed): check the model, "
                           "optimizer, learning rate, batch size and number of steps the question fixes")
    low, high = EXPERIMENT_GAIN
    if not low <= mean_gain <= high:
        raise CheckFailure(f"{runs}: augmentation changed test accuracy by {mean_gain:+.3f} on average "
                           f"(per seed {', '.join(f'{g:+.3f}' for g in gains)}); the reference gains "
                           f"{low:.3f} to {high:.3f}. Is every drawn batch augmented afresh, and is the rest "
                           "of the run (initialization, batches) the same with and without?")
