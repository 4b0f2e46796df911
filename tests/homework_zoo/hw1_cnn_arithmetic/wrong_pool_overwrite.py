# Assigns the gradient instead of adding it, so overlapping windows overwrite each other.
# expect: loses test_maxpool_backward
# %% maxpool_backward
import torch

def maxpool_backward(dout, x, kernel_size, stride):
    dx = torch.zeros_like(x)
    N, C, Ho, Wo = dout.shape
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    win = x[n, c, i * stride:i * stride + kernel_size, j * stride:j * stride + kernel_size]
                    r, s = divmod(int(win.argmax()), kernel_size)
                    dx[n, c, i * stride + r, j * stride + s] = dout[n, c, i, j]
    return dx
