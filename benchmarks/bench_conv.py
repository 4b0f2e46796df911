"""From-scratch conv2d_forward (im2col + one matrix product) against F.conv2d on the CPU.

Prints `name: value` lines; `conv_ratio_<case>` is our time divided by PyTorch's
(above 1 means slower), both measured in this one process.
"""

import torch
import torch.nn.functional as F

from _timing import median_seconds
from course_lib.layers import conv2d_forward

CASES = {  # name: (x shape, w shape, stride, padding)
    "mnist_3x3": ((64, 1, 28, 28), (16, 1, 3, 3), 1, 1),
    "cifar_3x3": ((32, 32, 32, 32), (64, 32, 3, 3), 1, 1),
    "vgg_block": ((8, 64, 56, 56), (64, 64, 3, 3), 1, 1),
    "alexnet_conv1": ((8, 3, 224, 224), (64, 3, 11, 11), 4, 2),
}


def main():
    torch.manual_seed(0)
    print(f"torch_threads: {torch.get_num_threads()}")
    with torch.no_grad():
        for name, (x_shape, w_shape, stride, padding) in CASES.items():
            x, w, b = torch.randn(x_shape), torch.randn(w_shape), torch.randn(w_shape[0])
            ours = median_seconds(lambda: conv2d_forward(x, w, b, stride, padding))
            theirs = median_seconds(lambda: F.conv2d(x, w, b, stride=stride, padding=padding))
            print(f"conv_ms_ours_{name}: {ours * 1e3:.2f}")
            print(f"conv_ms_torch_{name}: {theirs * 1e3:.2f}")
            print(f"conv_ratio_{name}: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
