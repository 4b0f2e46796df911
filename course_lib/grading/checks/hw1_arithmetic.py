"""Checkers for hw1_cnn_arithmetic: output sizes, parameter counts, conv forward and backward
through im2col/col2im, max-pool forward and backward, and the effective-receptive-field
experiment. Each takes the student's function and a seed: the visible tests use seed 0, the
hidden tests other seeds, and the seed draws the cases (sizes, channels, strides, dtypes),
not just their order. Every tensor checker covers the same case families: overlapping,
tiling and skipping windows (stride < = > kernel), non-square inputs, N = 1 and C = 1,
float32 and float64 (where the grading device has it), on the grading device.

Failure messages name the case and the size of the error and point at the idea; they
never print the formula or the code."""

from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F

from course_lib import arithmetic, layers
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
from course_lib.grading.checks.guard import AUTOGRAD, forbid

# what course_lib.grading re-exports
__all__ = [
    "check_conv_output_size", "check_conv_params", "check_vgg_params", "check_conv_forward", "check_conv_backward",
    "check_maxpool_forward", "check_maxpool_backward", "check_input_gradient",
]

HINTS = {
    "Q1": "Slide the window along one dimension and count the positions where it fits entirely: padding widens the "
          "input on both sides, and a window that would stick out past the end is not counted. Reread the "
          "'output size' slide (the 90x90 example).",
    "Q2": "A filter spans every input channel, not just a k x k patch, and there is one filter per output channel; "
          "the bias is a single number per filter. Reread the '5 filters of 3x3x10' slide.",
    "Q3": "Walk the config keeping track of the current number of channels: each conv's filters span the channels "
          "that come in. Then find what the first fully connected layer actually reads: how many channels the "
          "last conv leaves, and how small five 2x2 pools make a 224x224 image. Reread the VGG16 table.",
    "Q4": "A convolution is the same dot product at every window position: gather every window into a column, "
          "flatten every filter into a row in the same order, and one matrix product does all of them. Check the "
          "padding, the stride between windows and the bias. Reread the im2col slide.",
    "Q5": "Backprop through conv is matrix products: the forward pass was (filters as rows) times (windows as "
          "columns), so each gradient is a product with the other factor; the windows' gradient then has to go "
          "back to the pixels it was copied from, and a pixel copied into several windows collects all of them.",
    "Q6": "Each output is the largest value of its own window; windows start every `stride` pixels and a window "
          "that would stick out is dropped, exactly as for a convolution without padding.",
    "Q7": "Only the position that won the max influenced the output, so the window's gradient goes there alone; a "
          "pixel that won several overlapping windows collects all their gradients.",
    "Q8": "The gradient of one output pixel with respect to the input shows which pixels it depends on. Start "
          "backprop from a gradient that is 1 at the centre output pixel and 0 elsewhere, and pass it down "
          "through every layer, last to first, each layer's input gradient becoming the next one's dout.",
}

FLOAT32_TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}


# ---------------------------------------------------------------------------------------
# Plain numbers: output size, parameter counts
# ---------------------------------------------------------------------------------------


def _expect_count(got, expected: int, case: str, what: str, hint: str):
    """An int answer: the message gives the case and how far off it is, not the answer."""
    if isinstance(got, bool) or not isinstance(got, int) and not (isinstance(got, float) and got.is_integer()):
        raise CheckFailure(f"case {case}: {what} should be a whole number (an int), got {got!r}")
    if got != expected:
        direction = "too many" if got > expected else "too few"
        raise CheckFailure(f"case {case}: {what} is {got!r}, {abs(got - expected):,} {direction}. {hint}")


def _size_cases(seed: int):
    """(size, kernel, stride, padding): the slides' examples, then seeded ones with windows
    that overlap, tile and skip pixels, and sizes the last stride does not reach exactly."""
    rng = random.Random(seed)
    cases = [(90, 3, 1, 1), (224, 11, 4, 2), (32, 5, 1, 0), (7, 3, 2, 1)]
    for stride_vs_kernel in ("<", "=", ">") * 3:
        kernel = rng.randint(2, 7)
        stride = {"<": rng.randint(1, kernel - 1), "=": kernel, ">": kernel + rng.randint(1, 3)}[stride_vs_kernel]
        padding = rng.randint(0, 3)
        size = rng.randint(max(1, kernel - 2 * padding), 64)
        cases.append((size, kernel, stride, padding))
    return cases


def check_conv_output_size(conv_output_size, seed: int = 0):
    """conv_output_size(size, kernel_size, stride, padding) -> int."""
    with quiet_and_strict():
        for size, kernel, stride, padding in _size_cases(seed):
            case = f"size={size}, kernel_size={kernel}, stride={stride}, padding={padding}"
            got = call_student(conv_output_size, (size, kernel, stride, padding), case, "conv_output_size")
            _expect_count(got, arithmetic.conv_output_size(size, kernel, stride, padding), case, "the output size",
                          "Count the window positions that fit: how much does padding add, and what happens to "
                          "a window that would stick out past the end?")


def check_conv_params(conv_params, seed: int = 0):
    """conv_params(in_channels, out_channels, kernel_size, bias=True) -> int."""
    rng = random.Random(seed)
    cases = [(10, 5, 3, True), (3, 64, 3, True), (64, 128, 1, False)]
    cases += [(rng.randint(1, 512), rng.randint(1, 512), rng.choice([1, 3, 5, 7]), bias) for bias in (True, False) * 3]
    with quiet_and_strict():
        for cin, cout, kernel, bias in cases:
            case = f"in_channels={cin}, out_channels={cout}, kernel_size={kernel}, bias={bias}"
            got = call_student(conv_params, (cin, cout, kernel, bias), case, "conv_params")
            _expect_count(got, arithmetic.conv_params(cin, cout, kernel, bias=bias), case, "the parameter count",
                          "What does one filter span, how many filters are there, and what does bias add?")


VGG_CONFIGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def vgg_reference(config, in_channels=3, num_classes=1000) -> int:
    """Parameters of a VGG at 224x224: 3x3 convs (padding 1, bias) and 2x2 pools from
    `config` (five pools, so 7x7 maps at the end), then FC layers to 4096, 4096 and
    num_classes, all with biases (torchvision's VGG when the last width is 512)."""
    # BEGIN ANSWER hw1.Q3
    total, channels = 0, in_channels
    for layer in config:
        if layer != "M":
            total, channels = total + arithmetic.conv_params(channels, layer, 3), layer
    side = 224 // 2 ** config.count("M")
    widths = [channels * side * side, 4096, 4096, num_classes]
    return total + sum(arithmetic.linear_params(a, b) for a, b in zip(widths, widths[1:]))
    # END ANSWER


def _random_vgg(rng: random.Random, last_width: int):
    """A VGG-style config: five blocks of 1-3 convs, widths doubling up to `last_width`."""
    config, width = [], max(8, last_width // 8)
    for block in range(5):
        width = last_width if block >= 3 else min(last_width, width * (2 if block else 1))
        config += [width] * rng.randint(1, 3) + ["M"]
    return config


def _vgg_cases(seed: int):
    """(name, config, in_channels, num_classes): a torchvision VGG as published, the same
    with other inputs and classes, and VGG-style nets whose last conv is not 512 wide."""
    rng = random.Random(seed)
    names = sorted(VGG_CONFIGS)
    published = names[seed % len(names)] if seed else "vgg16"
    other = rng.choice([n for n in names if n != published])
    return [
        (published, VGG_CONFIGS[published], 3, 1000),
        (other, VGG_CONFIGS[other], rng.choice([1, 4]), rng.choice([10, 100, rng.randint(2, 999)])),
        ("a VGG-style net", _random_vgg(rng, rng.choice([64, 128, 256])), rng.choice([1, 3]), rng.choice([10, 1000])),
        ("a VGG-style net", _random_vgg(rng, rng.choice([96, 384, 1024])), rng.choice([2, 3]),
         rng.choice([1000, rng.randint(2, 500)])),
    ]


def check_vgg_params(vgg_params, seed: int = 0):
    """vgg_params(config, in_channels=3, num_classes=1000) -> int, the total of a VGG net at
    224x224. The reference is `vgg_reference` (tests hold it against torchvision's VGGs)."""
    with quiet_and_strict():
        for name, config, in_channels, num_classes in _vgg_cases(seed):
            case = f"{name} {config}, in_channels={in_channels}, num_classes={num_classes}"
            got = call_student(vgg_params, (list(config), in_channels, num_classes), case, "vgg_params")
            _expect_count(got, vgg_reference(config, in_channels, num_classes), case, "the total parameter count",
                          "Which numbers in your count come from this config and these arguments, and which did "
                          "you take from the slide? Follow the channels through the convs and the size of the map "
                          "the first fully connected layer reads.")


# ---------------------------------------------------------------------------------------
# Tensors: the case families every layer checker runs
# ---------------------------------------------------------------------------------------


def _dtypes(device: torch.device):
    return [torch.float32, grading_dtype(device)]


def _tolerance(dtype: torch.dtype) -> dict:
    return FLOAT32_TOLERANCE if dtype == torch.float32 else {}


def _window_cases(seed: int, fixed):
    """(N, C, H, W, kh, kw, stride, padding, dtype_index) cases: `fixed` first, then one
    seeded case per family: overlapping, tiling and skipping windows, a single image with
    a single channel, and padding larger than 1 (for padded layers), non-square throughout."""
    rng = random.Random(seed)
    cases = list(fixed)
    for family in ("overlap", "tile", "skip", "single", "skip"):
        kh, kw = rng.randint(2, 4), rng.randint(1, 4)
        k = max(kh, kw)
        stride = {"overlap": rng.randint(1, k - 1), "tile": k, "skip": k + rng.randint(1, 2),
                  "single": rng.randint(1, 3)}[family]
        n, c = (1, 1) if family == "single" else (rng.randint(1, 3), rng.randint(1, 4))
        h = rng.randint(k + 1, 13)
        w = rng.choice([v for v in range(k + 1, 14) if v != h])
        cases.append((n, c, h, w, kh, kw, stride, rng.randint(0, 2), rng.randint(0, 1)))
    return cases


def _case_text(x_shape, extra: str, dtype) -> str:
    return f"x {tuple(x_shape)}, {extra}, {str(dtype).replace('torch.', '')}"


def _expect_tensor(got, expected, dtype, case: str, what: str, hint: str):
    """The answer is a tensor of the input's dtype, close to the float64 reference."""
    if isinstance(got, torch.Tensor) and got.dtype != dtype:
        raise CheckFailure(f"case {case}: {what} should keep the input's dtype {dtype}, got {got.dtype}. "
                           "Create new tensors with the input's dtype and device (zeros_like, new_zeros).")
    expect_close(got, expected, case, what, hint, **_tolerance(dtype))


# ---------------------------------------------------------------------------------------
# Convolution forward and backward
# ---------------------------------------------------------------------------------------

CONV_FORBIDDEN = [F.conv2d, torch.conv2d, torch.convolution, F.conv_transpose2d, torch.conv_transpose2d,
                  F.unfold, F.fold, torch.nn.Unfold.forward, torch.nn.Fold.forward,
                  torch.nn.grad.conv2d_input, torch.nn.grad.conv2d_weight,
                  layers.conv2d_forward, layers.conv2d_backward, layers.im2col, layers.col2im]

# the slides' example, then a non-square input and kernel with stride 2
_CONV_FIXED = [(2, 3, 7, 7, 3, 3, 1, 1, 1), (1, 2, 9, 6, 3, 2, 2, 0, 0)]


def _conv_inputs(seed: int, generator: torch.Generator, device):
    """Yield (case, x, w, b, stride, padding, dtype) for each conv case of `seed`."""
    for n, c, h, w, kh, kw, stride, padding, dtype_index in _window_cases(seed, _CONV_FIXED):
        dtype = _dtypes(device)[dtype_index]
        filters = c + 1
        x = random_tensor(generator, n, c, h, w, device=device, dtype=dtype)
        weight = random_tensor(generator, filters, c, kh, kw, device=device, dtype=dtype)
        bias = random_tensor(generator, filters, device=device, dtype=dtype)
        case = _case_text(x.shape, f"w {tuple(weight.shape)}, stride={stride}, padding={padding}", dtype)
        yield case, x, weight, bias, stride, padding, dtype


def _float64(*tensors):
    return [t.to(torch.float64) if t.device.type != "mps" else t for t in tensors]


def check_conv_forward(conv_forward, seed: int = 0):
    """conv_forward(x, w, b, stride, padding) -> out (N, F, H', W'), through im2col."""
    device = grading_device()
    generator = torch.Generator().manual_seed(seed)
    with quiet_and_strict():
        for case, x, w, b, stride, padding, dtype in _conv_inputs(seed, generator, device):
            with forbid(CONV_FORBIDDEN, "conv_forward"):
                args = (x.clone(), w.clone(), b.clone(), stride, padding)
                got = call_student(conv_forward, args, case, "conv_forward")
            expected = layers.conv2d_forward(*_float64(x, w, b), stride, padding)[0]
            _expect_tensor(got, expected, dtype, case, "the output",
                           "Check the zero padding, the stride between windows, the bias, and that filters and "
                           "windows are flattened in the same order.")


def _unpack_gradients(got, case: str):
    if not (isinstance(got, (tuple, list)) and len(got) == 3):
        raise CheckFailure(f"case {case}: conv_backward should return a tuple (dx, dw, db), got {type(got).__name__}"
                           + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else ""))
    return got


_BACKWARD_HINTS = {
    "dx": "The windows' gradient goes back to the pixels each window was copied from: where windows overlap a "
          "pixel collects several contributions, where the stride skips pixels they get none, and the padding "
          "is cut off at the end.",
    "dw": "Each filter entry multiplied one input pixel per window and image: its gradient collects all of them "
          "(a matrix product with the windows, summed over the batch).",
    "db": "The bias was added at every output position of every image.",
}


def check_conv_backward(conv_backward, seed: int = 0):
    """conv_backward(dout, x, w, stride, padding) -> (dx, dw, db) for out = conv(x, w) + b,
    with matrix products and col2im (no autograd, no library conv or fold)."""
    device = grading_device()
    generator = torch.Generator().manual_seed(seed + 7)
    with quiet_and_strict():
        for case, x, w, b, stride, padding, dtype in _conv_inputs(seed, generator, device):
            out, cache = layers.conv2d_forward(*_float64(x, w, b), stride, padding)
            dout = random_tensor(generator, *out.shape, device=device, dtype=dtype)
            with forbid(CONV_FORBIDDEN + AUTOGRAD, "conv_backward"):
                got = call_student(conv_backward, (dout.clone(), x.clone(), w.clone(), stride, padding), case,
                                   "conv_backward")
            expected = layers.conv2d_backward(*_float64(dout), cache)
            for name, mine, reference in zip(("dx", "dw", "db"), _unpack_gradients(got, case), expected):
                _expect_tensor(mine, reference, dtype, case, name, _BACKWARD_HINTS[name])


# ---------------------------------------------------------------------------------------
# Max pooling forward and backward
# ---------------------------------------------------------------------------------------

POOL_FORBIDDEN = [F.max_pool2d, torch.max_pool2d, F.max_pool2d_with_indices, torch._C._nn.max_pool2d_with_indices,
                  F.max_unpool2d, F.adaptive_max_pool2d, F.unfold, F.fold, torch.nn.Unfold.forward,
                  layers.maxpool2d_forward, layers.maxpool2d_backward, layers.col2im]

# the slides' 2x2 stride-2 pool, then overlapping 3x3 windows with stride 2 on a non-square input
_POOL_FIXED = [(2, 3, 8, 8, 2, 2, 2, 0, 1), (1, 2, 7, 9, 3, 3, 2, 0, 0)]


def _pool_inputs(seed: int, generator: torch.Generator, device):
    """Yield (case, x, kernel, stride, dtype) for each pooling case of `seed` (square windows,
    no padding)."""
    for n, c, h, w, kh, _, stride, _, dtype_index in _window_cases(seed, _POOL_FIXED):
        dtype = _dtypes(device)[dtype_index]
        x = random_tensor(generator, n, c, h, w, device=device, dtype=dtype)
        yield _case_text(x.shape, f"kernel_size={kh}, stride={stride}", dtype), x, kh, stride, dtype


def check_maxpool_forward(maxpool_forward, seed: int = 0):
    """maxpool_forward(x, kernel_size, stride) -> out (N, C, H', W'), no padding."""
    device = grading_device()
    generator = torch.Generator().manual_seed(seed + 2)
    with quiet_and_strict():
        for case, x, kernel, stride, dtype in _pool_inputs(seed, generator, device):
            with forbid(POOL_FORBIDDEN, "maxpool_forward"):
                got = call_student(maxpool_forward, (x.clone(), kernel, stride), case, "maxpool_forward")
            expected = layers.maxpool2d_forward(*_float64(x), kernel, stride)[0]
            _expect_tensor(got, expected, dtype, case, "the pooled output",
                           "Where does each window start, how many windows fit along each side, and is each output "
                           "the maximum of its own window?")


def check_maxpool_backward(maxpool_backward, seed: int = 0):
    """maxpool_backward(dout, x, kernel_size, stride) -> dx, the gradient routed to each window's max."""
    device = grading_device()
    generator = torch.Generator().manual_seed(seed + 1)
    with quiet_and_strict():
        for case, x, kernel, stride, dtype in _pool_inputs(seed, generator, device):
            out, cache = layers.maxpool2d_forward(*_float64(x), kernel, stride)
            dout = random_tensor(generator, *out.shape, device=device, dtype=dtype)
            with forbid(POOL_FORBIDDEN + AUTOGRAD, "maxpool_backward"):
                args = (dout.clone(), x.clone(), kernel, stride)
                got = call_student(maxpool_backward, args, case, "maxpool_backward")
            hint = ("Only the winner of each window gets its gradient; where windows overlap (stride < kernel) a "
                    "pixel can win several." if stride < kernel else
                    "Only the winner of each window gets its gradient; the other pixels get none.")
            _expect_tensor(got, layers.maxpool2d_backward(*_float64(dout), cache), dtype, case, "dx", hint)


# ---------------------------------------------------------------------------------------
# The experiment: the effective receptive field of a stack of 3x3 convolutions
# ---------------------------------------------------------------------------------------

# The reference (layers.input_gradient on random N(0, 1) 3x3 filters), measured as the check
# measures it (`_erf_runs`: depth sets from 2 to 16, inputs 35 to 41 wide) on check seeds 0-39:
# the slope of log(effective radius) against log(depth) is 0.546 +- 0.113 (sd) per run (240
# runs, min 0.16, max 0.86), and its mean over a check's 6 runs 0.546 +- 0.057 (sd over 40
# checks, min 0.43, max 0.66). The theoretical field grows with slope 1. The check allows
# 0.55 +- 0.23, four standard deviations of the 6-run mean.
ERF_SLOPE, ERF_TOLERANCE, ERF_SEEDS = 0.55, 0.23, 6

ERF_FORBIDDEN = [F.conv2d, torch.conv2d, torch.convolution, F.conv_transpose2d, torch.conv_transpose2d,
                 torch.nn.grad.conv2d_input, torch.nn.grad.conv2d_weight, F.unfold, F.fold]


def _extent(grad: torch.Tensor) -> int:
    """How many columns (= rows, for these symmetric fields) of the map are not all zero."""
    return int((grad[0, 0].abs().sum(dim=0) > 0).sum())


def _erf_runs(seed: int):
    """(depths, size, dtype_index, run_seed) for each run the check makes."""
    rng = random.Random(seed)
    depth_sets = [[2, 4, 8, 16], [2, 5, 10, 15], [3, 6, 12, 16], [2, 6, 9, 14]]
    return [(rng.choice(depth_sets), rng.choice([35, 37, 39, 41]), run % 2, rng.randint(0, 10**6))
            for run in range(ERF_SEEDS)]


def check_input_gradient(input_gradient, seed: int = 0):
    """input_gradient(weights, size, forward, backward) -> (1, 1, size, size), run inside the
    experiment with the reference conv passes: the gradient reaches exactly the theoretical
    receptive field, and the effective radius grows like depth ** 0.5 (within the reference's
    spread), not like the theoretical field."""
    device = grading_device()
    slopes = []
    with quiet_and_strict(), one_thread():
        for depths, size, dtype_index, run_seed in _erf_runs(seed):
            dtype = _dtypes(device)[dtype_index]
            generator = torch.Generator().manual_seed(run_seed)
            weights = [random_tensor(generator, 1, 1, 3, 3, device=device, dtype=dtype) for _ in range(max(depths))]
            radii = []
            for depth in depths:
                case = f"{depth} layers of random 3x3 filters, size={size}, {str(dtype).replace('torch.', '')}"
                with forbid(ERF_FORBIDDEN + AUTOGRAD, "input_gradient"):
                    args = ([w.clone() for w in weights[:depth]], size, layers.conv2d_output, layers.conv2d_gradients)
                    grad = call_student(input_gradient, args, case, "input_gradient")
                _check_map(grad, depth, size, case)
                radii.append(layers.effective_radius(grad))
            slopes.append(_slope(depths, radii))
    _check_effect(sum(slopes) / len(slopes))


def _check_map(grad, depth: int, size: int, case: str):
    if not isinstance(grad, torch.Tensor) or tuple(grad.shape) != (1, 1, size, size):
        shape = tuple(grad.shape) if isinstance(grad, torch.Tensor) else type(grad).__name__
        raise CheckFailure(f"case {case}: the gradient should be a tensor shaped like the input "
                           f"(1, 1, {size}, {size}), got {shape}")
    if not bool(torch.isfinite(grad).all()) or not bool((grad != 0).any()):
        raise CheckFailure(f"case {case}: the gradient is all zero or not finite; start from a gradient of 1 at the "
                           "centre output pixel")
    if _extent(grad) != 2 * depth + 1:
        raise CheckFailure(f"case {case}: your gradient reaches {_extent(grad)} pixels across; the receptive field of "
                           "this stack is different. Does the gradient pass through every layer, last to first?")


def _slope(depths, radii) -> float:
    """Least-squares slope of log(radius) against log(depth)."""
    xs, ys = [math.log(d) for d in depths], [math.log(r) for r in radii]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((a - mean_x) * (b - mean_y) for a, b in zip(xs, ys)) / sum((a - mean_x) ** 2 for a in xs)


def _check_effect(slope: float):
    if not 0 < slope < 1:
        raise CheckFailure(f"the effective radius of your gradient maps grows with depth at a log-log slope of "
                           f"{slope:.2f}: it should grow, but more slowly than the theoretical receptive field "
                           "(slope 1). Is the gradient that of the centre output pixel alone?")
    if abs(slope - ERF_SLOPE) > ERF_TOLERANCE:
        raise CheckFailure(f"the effective radius of your gradient maps grows with depth at a log-log slope of "
                           f"{slope:.2f}, outside the range the reference reaches on random filters "
                           f"({ERF_SLOPE - ERF_TOLERANCE:.2f} to {ERF_SLOPE + ERF_TOLERANCE:.2f}). Is the gradient "
                           "that of the centre output pixel alone, passed through every layer?")
