"""Checkers for hw1_cnn_arithmetic: output sizes, parameter counts, conv via im2col,
max-pool backward. Each takes the student's function and a seed (the visible tests use
seed 0; the hidden tests use other seeds and therefore other cases)."""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
import torchvision.models as tvm

from course_lib import arithmetic, layers
from course_lib.grading.checks.compare import (
    call_student, expect_close, expect_equal, grading_device, quiet_and_strict, random_tensor,
)
from course_lib.grading.checks.guard import AUTOGRAD, forbid

# what course_lib.grading re-exports
__all__ = [
    "check_conv_output_size", "check_conv_params", "check_vgg_params", "check_conv_forward", "check_maxpool_backward",
]



def _size_cases(seed: int):
    """(size, kernel, stride, padding) cases: the slides' example, then seeded random ones."""
    rng = random.Random(seed)
    cases = [(90, 3, 1, 1), (224, 11, 4, 2), (32, 5, 1, 0), (7, 3, 2, 1)]
    while len(cases) < 12:
        kernel, stride, padding = rng.randint(1, 7), rng.randint(1, 4), rng.randint(0, 3)
        size = rng.randint(max(1, kernel - 2 * padding), 64)
        cases.append((size, kernel, stride, padding))
    return cases


def check_conv_output_size(conv_output_size, seed: int = 0):
    """conv_output_size(size, kernel_size, stride, padding) -> int."""
    with quiet_and_strict():
        for size, kernel, stride, padding in _size_cases(seed):
            case = f"size={size}, kernel_size={kernel}, stride={stride}, padding={padding}"
            got = call_student(conv_output_size, (size, kernel, stride, padding), case, "conv_output_size")
            expect_equal(got, arithmetic.conv_output_size(size, kernel, stride, padding), case, "the output size",
                         "Use (size + 2*padding - kernel_size) // stride + 1: padding adds to both sides, and the division rounds down.")


def check_conv_params(conv_params, seed: int = 0):
    """conv_params(in_channels, out_channels, kernel_size, bias=True) -> int."""
    rng = random.Random(seed)
    cases = [(10, 5, 3, True), (3, 64, 3, True), (64, 128, 1, False)]
    cases += [(rng.randint(1, 512), rng.randint(1, 512), rng.choice([1, 3, 5, 7]), rng.random() < 0.5) for _ in range(6)]
    with quiet_and_strict():
        for cin, cout, kernel, bias in cases:
            case = f"in_channels={cin}, out_channels={cout}, kernel_size={kernel}, bias={bias}"
            got = call_student(conv_params, (cin, cout, kernel, bias), case, "conv_params")
            expect_equal(got, arithmetic.conv_params(cin, cout, kernel, bias=bias), case, "the parameter count",
                         "Each of the out_channels filters has in_channels * k * k weights, plus one bias when bias=True.")


def check_vgg_params(vgg_params, seed: int = 0):
    """vgg_params(config, in_channels=3, num_classes=1000) -> int, the total of a VGG net
    at 224x224 (conv layers from config, then 512*7*7 -> 4096 -> 4096 -> num_classes)."""
    configs = {"vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
               "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]}
    names = ["vgg16", "vgg11"] if seed == 0 else ["vgg11", "vgg16"]
    with quiet_and_strict():
        for name in names:
            expected = sum(p.numel() for p in getattr(tvm, name)(weights=None).parameters())
            got = call_student(vgg_params, (list(configs[name]), 3, 1000), name, "vgg_params")
            expect_equal(got, expected, name, "the total parameter count (torchvision's figure)",
                         "Count every 3x3 conv (weights and biases) in the config, then the three fully connected layers; 'M' has no parameters.")


def _conv_cases(seed: int):
    rng = random.Random(seed)
    cases = [((2, 3, 7, 7), (4, 3, 3, 3), 1, 1), ((1, 2, 9, 6), (3, 2, 3, 2), 2, 0)]
    for _ in range(3):
        c, f, k = rng.randint(1, 4), rng.randint(1, 5), rng.randint(1, 4)
        stride, padding = rng.randint(1, 3), rng.randint(0, 2)
        h, w = rng.randint(k, 12), rng.randint(k, 12)
        cases.append(((rng.randint(1, 3), c, h, w), (f, c, k, k), stride, padding))
    return cases


CONV_FORBIDDEN = [F.conv2d, torch.conv2d, F.unfold, F.fold, torch.nn.Unfold.forward, layers.conv2d_forward, layers.im2col]


def check_conv_forward(conv_forward, seed: int = 0):
    """conv_forward(x, w, b, stride, padding) -> out (N, F, H', W'), through im2col."""
    device = grading_device()
    generator = torch.Generator().manual_seed(seed)
    with quiet_and_strict():
        for x_shape, w_shape, stride, padding in _conv_cases(seed):
            x, w = random_tensor(generator, *x_shape, device=device), random_tensor(generator, *w_shape, device=device)
            b = random_tensor(generator, w_shape[0], device=device)
            case = f"x {x_shape}, w {w_shape}, stride={stride}, padding={padding}"
            with forbid(CONV_FORBIDDEN, "conv_forward"):
                got = call_student(conv_forward, (x.clone(), w.clone(), b.clone(), stride, padding), case, "conv_forward")
            expect_close(got, layers.conv2d_forward(x, w, b, stride, padding)[0], case, "the output",
                         "Check the zero padding, the stride between windows, and that each filter is flattened in (C, kh, kw) order like the columns.")


def _pool_cases(seed: int):
    rng = random.Random(seed)
    cases = [((2, 3, 8, 8), 2, 2), ((1, 2, 7, 9), 3, 2)]
    for _ in range(3):
        k = rng.randint(2, 3)
        cases.append(((rng.randint(1, 2), rng.randint(1, 3), rng.randint(k, 10), rng.randint(k, 10)), k, rng.randint(1, k)))
    return cases


POOL_FORBIDDEN = [F.max_pool2d, torch.max_pool2d, F.max_pool2d_with_indices, torch._C._nn.max_pool2d_with_indices,
                  F.max_unpool2d, layers.maxpool2d_forward, layers.maxpool2d_backward]


def check_maxpool_backward(maxpool_backward, seed: int = 0):
    """maxpool_backward(dout, x, kernel_size, stride) -> dx, the gradient routed to each window's max."""
    device = grading_device()
    generator = torch.Generator().manual_seed(seed + 1)
    with quiet_and_strict():
        for x_shape, kernel, stride in _pool_cases(seed):
            x = random_tensor(generator, *x_shape, device=device)
            out, cache = layers.maxpool2d_forward(x, kernel, stride)
            dout = random_tensor(generator, *out.shape, device=device)
            case = f"x {x_shape}, kernel_size={kernel}, stride={stride}"
            with forbid(POOL_FORBIDDEN + AUTOGRAD, "maxpool_backward"):
                got = call_student(maxpool_backward, (dout.clone(), x.clone(), kernel, stride), case, "maxpool_backward")
            hint = ("Each window sends its whole gradient to the position of its maximum; where windows overlap "
                    "(stride < kernel) a pixel collects the sum." if stride < kernel else
                    "Each window sends its whole gradient to the position of its maximum and nothing to the others.")
            expect_close(got, layers.maxpool2d_backward(dout, cache), case, "dx", hint)
