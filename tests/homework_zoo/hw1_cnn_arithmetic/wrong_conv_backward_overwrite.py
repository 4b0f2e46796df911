# col2im that assigns each kernel offset's gradient instead of adding it: where windows overlap,
# a pixel keeps only the last window's contribution.
# expect: loses test_conv_backward
# %% conv_backward
import torch
import torch.nn.functional as F

def conv_backward(dout, x, w, stride=1, padding=0):
    N, C, H, W = x.shape
    Fn, _, kh, kw = w.shape
    Ho, Wo = dout.shape[2], dout.shape[3]
    xp = F.pad(x, (padding, padding, padding, padding))
    cols = xp.unfold(2, kh, stride).unfold(3, kw, stride).permute(0, 1, 4, 5, 2, 3).reshape(N, C * kh * kw, Ho * Wo)
    d = dout.reshape(N, Fn, -1)
    dw = torch.einsum("nfp,nkp->fk", d, cols).reshape(w.shape)
    db = dout.sum(dim=(0, 2, 3))
    dcols = (w.reshape(Fn, -1).T @ d).reshape(N, C, kh, kw, Ho, Wo)
    dxp = torch.zeros_like(xp)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + stride * Ho:stride, j:j + stride * Wo:stride] = dcols[:, :, i, j]
    return dxp[:, :, padding:padding + H, padding:padding + W], dw, db
