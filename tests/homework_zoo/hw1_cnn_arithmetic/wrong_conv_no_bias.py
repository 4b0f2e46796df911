# Forgets the bias (the visible test passes zeros, so it looks right).
# expect: loses test_conv_forward
# %% conv_forward
import torch.nn.functional as F

def conv_forward(x, w, b, stride=1, padding=0):
    N, C, H, W = x.shape
    Fn, _, kh, kw = w.shape
    Ho = (H + 2 * padding - kh) // stride + 1
    Wo = (W + 2 * padding - kw) // stride + 1
    xp = F.pad(x, (padding, padding, padding, padding))
    cols = xp.unfold(2, kh, stride).unfold(3, kw, stride)
    cols = cols.permute(0, 1, 4, 5, 2, 3).reshape(N, C * kh * kw, Ho * Wo)
    return (w.reshape(Fn, -1) @ cols).reshape(N, Fn, Ho, Wo)
