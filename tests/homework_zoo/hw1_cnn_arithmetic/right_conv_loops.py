# Correct: builds the columns with explicit loops over the output positions.
# expect: full marks
# %% conv_forward
import torch

def conv_forward(x, w, b, stride=1, padding=0):
    N, C, H, W = x.shape
    Fn, _, kh, kw = w.shape
    xp = torch.zeros(N, C, H + 2 * padding, W + 2 * padding, dtype=x.dtype, device=x.device)
    xp[:, :, padding:padding + H, padding:padding + W] = x
    Ho = (H + 2 * padding - kh) // stride + 1
    Wo = (W + 2 * padding - kw) // stride + 1
    columns = []
    for i in range(Ho):
        for j in range(Wo):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            columns.append(patch.reshape(N, -1))
    cols = torch.stack(columns, dim=2)                       # N, C*kh*kw, Ho*Wo
    out = w.reshape(Fn, -1) @ cols + b.reshape(1, Fn, 1)
    return out.reshape(N, Fn, Ho, Wo)
