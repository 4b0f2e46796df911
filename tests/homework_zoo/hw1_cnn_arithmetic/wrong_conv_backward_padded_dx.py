# Scatters the columns back into the padded image and returns it as dx, forgetting that the
# padding is not part of x.
# expect: loses test_conv_backward
# %% conv_backward
import torch
import torch.nn.functional as F

def conv_backward(dout, x, w, stride=1, padding=0):
    N, C, H, W = x.shape
    Fn, _, kh, kw = w.shape
    Ho, Wo = dout.shape[2:]
    xp = F.pad(x, (padding,) * 4)
    cols = xp.unfold(2, kh, stride).unfold(3, kw, stride).permute(0, 1, 4, 5, 2, 3).reshape(N, C * kh * kw, -1)
    d = dout.reshape(N, Fn, -1)
    dw = (d @ cols.transpose(1, 2)).sum(0).view(w.shape)
    dcols = (w.view(Fn, -1).t() @ d).view(N, C, kh, kw, Ho, Wo)
    dx = torch.zeros_like(xp)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride] += dcols[:, :, i, j]
    return dx, dw, dout.sum((0, 2, 3))
