# Averages the filter gradient over the batch ("the gradient of the mean loss"), although dout is
# already the gradient of the loss and every image adds its own contribution.
# expect: loses test_conv_backward
# %% conv_backward
import torch
import torch.nn.functional as F

def conv_backward(dout, x, w, stride=1, padding=0):
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh, ow = dout.shape[-2:]
    xp = F.pad(x, [padding] * 4)
    cols = xp.unfold(2, kh, stride).unfold(3, kw, stride).permute(0, 1, 4, 5, 2, 3).reshape(n, -1, oh * ow)
    g = dout.reshape(n, f, -1)
    dw = (g @ cols.transpose(1, 2)).mean(dim=0).reshape(w.shape)
    db = dout.sum(dim=(0, 2, 3))
    dcols = w.reshape(f, -1).t() @ g
    dxp = torch.zeros_like(xp)
    for p in range(oh * ow):
        r, s = divmod(p, ow)
        dxp[:, :, r * stride:r * stride + kh, s * stride:s * stride + kw] += dcols[:, :, p].reshape(n, c, kh, kw)
    return dxp[:, :, padding:padding + h, padding:padding + wd], dw, db
