# Correct: moves channels last and works on rows for both cases; backward node by node
# through the computational graph (mean, centred x, variance, inverse std), as in the slides.
# expect: full marks
# %% batchnorm_forward
def to_rows(x):
    return x if x.dim() == 2 else x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])

def from_rows(rows, like):
    if like.dim() == 2:
        return rows
    n, c, h, w = like.shape
    return rows.reshape(n, h, w, c).permute(0, 3, 1, 2)

def batchnorm_forward(x, gamma, beta, bn_param):
    rows = to_rows(x)
    if bn_param["mode"] == "train":
        mu = rows.mean(0)
        var = rows.var(0, unbiased=False)
        a = bn_param["momentum"]
        bn_param["running_mean"][:] = (1 - a) * bn_param["running_mean"] + a * mu
        bn_param["running_var"][:] = (1 - a) * bn_param["running_var"] + a * rows.var(0, unbiased=True)
    else:
        mu, var = bn_param["running_mean"], bn_param["running_var"]
    out = (rows - mu) / torch.sqrt(var + bn_param["eps"]) * gamma + beta
    return from_rows(out, x), (rows, mu, var)

# %% batchnorm_backward
def batchnorm_backward(dout, x, gamma, eps=1e-5):
    rows, drows = to_rows(x), to_rows(dout)
    m = rows.shape[0]
    mu = rows.sum(0) / m
    xc = rows - mu
    var = (xc * xc).sum(0) / m
    std = torch.sqrt(var + eps)
    inv = 1 / std
    x_hat = xc * inv
    dbeta = drows.sum(0)
    dgamma = (drows * x_hat).sum(0)
    dx_hat = drows * gamma
    dinv = (dx_hat * xc).sum(0)
    dxc = dx_hat * inv
    dstd = -dinv / std ** 2
    dvar = dstd / (2 * std)
    dxc = dxc + 2 * xc * dvar / m
    dmu = -dxc.sum(0)
    drows_in = dxc + dmu / m
    return from_rows(drows_in, x), dgamma, dbeta
