# Normalizes with torch's default x.var(), the unbiased variance, in training.
# expect: loses test_batchnorm_forward
# %% batchnorm_forward
def batchnorm_forward(x, gamma, beta, bn_param):
    eps, momentum = bn_param["eps"], bn_param["momentum"]
    dims = (0,) if x.dim() == 2 else (0, 2, 3)
    shape = (1, -1) if x.dim() == 2 else (1, -1, 1, 1)
    if bn_param["mode"] == "train":
        mean = x.mean(dim=dims)
        var = x.var(dim=dims)
        bn_param["running_mean"].mul_(1 - momentum).add_(momentum * mean)
        bn_param["running_var"].mul_(1 - momentum).add_(momentum * var)
    else:
        mean, var = bn_param["running_mean"], bn_param["running_var"]
    out = gamma.reshape(shape) * (x - mean.reshape(shape)) / (var.reshape(shape) + eps).sqrt() + beta.reshape(shape)
    return out, None
