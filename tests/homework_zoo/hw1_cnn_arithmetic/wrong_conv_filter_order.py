# Builds the columns in (C, kh, kw) order but flattens each filter in (kh, kw, C) order.
# expect: loses test_conv_forward
# %% conv_forward
import torch.nn.functional as F

def conv_forward(x, w, b, stride=1, padding=0):
    N, C, H, W = x.shape
    Fn, _, kh, kw = w.shape
    Ho = (H + 2 * padding - kh) // stride + 1
    Wo = (W + 2 * padding - kw) // stride + 1
    xp = F.pad(x, (padding,) * 4)
    cols = xp.unfold(2, kh, stride).unfold(3, kw, stride)          # N, C, Ho, Wo, kh, kw
    cols = cols.permute(0, 1, 4, 5, 2, 3).reshape(N, C * kh * kw, Ho * Wo)
    rows = w.permute(0, 2, 3, 1).reshape(Fn, -1)
    out = rows @ cols + b.view(1, -1, 1)
    return out.view(N, Fn, Ho, Wo)
