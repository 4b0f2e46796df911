# Correct: loops over the output positions and takes the max of each window.
# expect: full marks
# %% maxpool_forward
import torch

def maxpool_forward(x, kernel_size, stride):
    N, C, H, W = x.shape
    Ho = (H - kernel_size) // stride + 1
    Wo = (W - kernel_size) // stride + 1
    out = torch.empty(N, C, Ho, Wo, dtype=x.dtype, device=x.device)
    for i in range(Ho):
        for j in range(Wo):
            window = x[:, :, i * stride:i * stride + kernel_size, j * stride:j * stride + kernel_size]
            out[:, :, i, j] = window.reshape(N, C, -1).max(dim=2).values
    return out
