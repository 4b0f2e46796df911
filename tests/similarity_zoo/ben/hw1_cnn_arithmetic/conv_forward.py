import torch.nn.functional as F

def conv_forward(x, w, b, stride=1, padding=0):
    # columns of all windows times the flattened filters
    N, _, H, W = x.shape
    F_, _, KH, KW = w.shape
    Ho, Wo = (H + 2 * padding - KH) // stride + 1, (W + 2 * padding - KW) // stride + 1
    columns = to_columns(x, (KH, KW), stride, padding)   # N, C*KH*KW, Ho*Wo
    y = w.reshape(F_, -1) @ columns
    if b is not None:
        y = y + b.reshape(1, -1, 1)
    return y.reshape(N, F_, Ho, Wo)


def sliding(x, kernel, stride, padding):
    kh, kw = kernel
    if padding:
        big = x.new_full((x.shape[0], x.shape[1], x.shape[2] + 2 * padding, x.shape[3] + 2 * padding), 0.0)
        big[:, :, padding:padding + x.shape[2], padding:padding + x.shape[3]] = x
        x = big
    return x.unfold(2, kh, stride).unfold(3, kw, stride)


def to_columns(x, kernel, stride, padding):
    win = sliding(x, kernel, stride, padding)   # a view, no copy yet
    n, c, oh, ow, kh, kw = win.shape
    return win.permute(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, oh * ow)
