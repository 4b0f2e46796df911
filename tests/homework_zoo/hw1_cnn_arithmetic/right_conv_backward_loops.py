# Correct: loops over the output positions and adds each window's contribution, no im2col.
# expect: full marks
# %% conv_backward
import torch

def conv_backward(dout, x, w, stride=1, padding=0):
    N, C, H, W = x.shape
    Fn, _, kh, kw = w.shape
    xp = torch.zeros(N, C, H + 2 * padding, W + 2 * padding, dtype=x.dtype, device=x.device)
    xp[:, :, padding:padding + H, padding:padding + W] = x
    dxp, dw = torch.zeros_like(xp), torch.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]     # N, C, kh, kw
            g = dout[:, :, i, j]                                                          # N, F
            dw += torch.einsum("nf,nckl->fckl", g, patch)
            dxp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw] += torch.einsum("nf,fckl->nckl", g, w)
    return dxp[:, :, padding:padding + H, padding:padding + W], dw, dout.sum(dim=(0, 2, 3))
