# Correct: a mask of the window's first maximum, looped over windows, gradients added.
# expect: full marks
# %% maxpool_backward
import torch

def maxpool_backward(dout, x, kernel_size, stride):
    dx = torch.zeros_like(x)
    N, C, Ho, Wo = dout.shape
    for i in range(Ho):
        for j in range(Wo):
            h0, w0 = i * stride, j * stride
            window = x[:, :, h0:h0 + kernel_size, w0:w0 + kernel_size].reshape(N, C, -1)
            first = window.argmax(dim=2)
            mask = torch.nn.functional.one_hot(first, window.shape[2]).to(x.dtype)
            grad = mask * dout[:, :, i, j].unsqueeze(-1)
            dx[:, :, h0:h0 + kernel_size, w0:w0 + kernel_size] += grad.reshape(N, C, kernel_size, kernel_size)
    return dx
