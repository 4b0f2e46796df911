"""From-scratch conv2d_forward (im2col + one matrix product) against F.conv2d.

    python benchmarks/bench_conv.py [--device cuda] [--quick]

Prints `name: value` lines; `conv_ratio_<case>` is our time divided by PyTorch's
(above 1 means slower), both measured in this one process on the same device, and
`conv_max_abs_difference_<case>` how far the two outputs are apart. PyTorch's default
TF32 settings apply (printed): on a GPU, cuDNN convolutions may use TF32 while matrix
products do not.
"""

import argparse
import functools

import torch
import torch.nn.functional as F
from _timing import add_device_arguments, checked_device, median_seconds, print_device

from course_lib.layers import conv2d_forward

CASES = {  # name: (x shape, w shape, stride, padding)
    "mnist_3x3": ((64, 1, 28, 28), (16, 1, 3, 3), 1, 1),
    "cifar_3x3": ((32, 32, 32, 32), (64, 32, 3, 3), 1, 1),
    "vgg_block": ((8, 64, 56, 56), (64, 64, 3, 3), 1, 1),
    "alexnet_conv1": ((8, 3, 224, 224), (64, 3, 11, 11), 4, 2),
}
QUICK_CASES = ("mnist_3x3",)


def main(argv=None):
    parser = argparse.ArgumentParser(description="conv2d_forward (im2col) against F.conv2d")
    add_device_arguments(parser, "only the smallest case, 2 repeats (a smoke run, not a measurement)")
    args = parser.parse_args(argv)
    device = checked_device(args.device)
    repeats, warmup = (2, 1) if args.quick else (7, 2)
    torch.manual_seed(0)
    print_device(device)
    print(f"cudnn_allow_tf32: {torch.backends.cudnn.allow_tf32}")
    print(f"matmul_allow_tf32: {torch.backends.cuda.matmul.allow_tf32}")
    with torch.no_grad():
        for name, (x_shape, w_shape, stride, padding) in CASES.items():
            if args.quick and name not in QUICK_CASES:
                continue
            x, w, b = (torch.randn(shape).to(device) for shape in (x_shape, w_shape, w_shape[:1]))
            ours_fn = functools.partial(lambda *args: conv2d_forward(*args)[0], x, w, b, stride, padding)
            theirs_fn = functools.partial(F.conv2d, x, w, b, stride=stride, padding=padding)
            ours = median_seconds(ours_fn, repeats, warmup, device)
            theirs = median_seconds(theirs_fn, repeats, warmup, device)
            print(f"conv_ms_ours_{name}: {ours * 1e3:.3f}")
            print(f"conv_ms_torch_{name}: {theirs * 1e3:.3f}")
            print(f"conv_ratio_{name}: {ours / theirs:.2f}")
            print(f"conv_max_abs_difference_{name}: {(ours_fn() - theirs_fn()).abs().max().item():.2e}")


if __name__ == "__main__":
    main()
