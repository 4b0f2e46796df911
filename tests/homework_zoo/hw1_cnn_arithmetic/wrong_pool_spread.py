# Spreads each window's gradient evenly, as for average pooling.
# expect: loses test_maxpool_backward
# %% maxpool_backward
import torch

def maxpool_backward(dout, x, kernel_size, stride):
    dx = torch.zeros_like(x)
    Ho, Wo = dout.shape[2:]
    for i in range(Ho):
        for j in range(Wo):
            g = dout[:, :, i, j][:, :, None, None] / kernel_size ** 2
            dx[:, :, i * stride:i * stride + kernel_size, j * stride:j * stride + kernel_size] += g
    return dx
