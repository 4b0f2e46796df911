# Reads "momentum" as the weight of the old value, as in an optimizer's momentum.
# expect: loses test_batchnorm_forward
# %% batchnorm_forward
def batchnorm_forward(x, gamma, beta, bn_param):
    eps, momentum = bn_param["eps"], bn_param["momentum"]
    dims = (0,) if x.dim() == 2 else (0, 2, 3)
    shape = (1, -1) if x.dim() == 2 else (1, -1, 1, 1)
    if bn_param["mode"] == "train":
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, unbiased=False)
        unbiased = x.var(dim=dims, unbiased=True)
        bn_param["running_mean"].copy_(momentum * bn_param["running_mean"] + (1 - momentum) * mean)
        bn_param["running_var"].copy_(momentum * bn_param["running_var"] + (1 - momentum) * unbiased)
    else:
        mean, var = bn_param["running_mean"], bn_param["running_var"]
    x_hat = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)
    return gamma.reshape(shape) * x_hat + beta.reshape(shape), (x_hat, var)
