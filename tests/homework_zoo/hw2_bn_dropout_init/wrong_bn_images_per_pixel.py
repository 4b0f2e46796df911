# For images, takes statistics over the batch only (per channel AND pixel), like the (N, D) case.
# expect: loses test_batchnorm_forward
# %% batchnorm_forward
def batchnorm_forward(x, gamma, beta, bn_param):
    eps, momentum = bn_param["eps"], bn_param["momentum"]
    shape = (1, -1) if x.dim() == 2 else (1, -1, 1, 1)
    if bn_param["mode"] == "train":
        mean = x.mean(dim=0)
        var = x.var(dim=0, unbiased=False)
        n = x.shape[0]
        stat_mean = mean if x.dim() == 2 else mean.mean(dim=(1, 2))
        stat_var = var if x.dim() == 2 else var.mean(dim=(1, 2))
        bn_param["running_mean"].mul_(1 - momentum).add_(momentum * stat_mean)
        bn_param["running_var"].mul_(1 - momentum).add_(momentum * stat_var * n / max(n - 1, 1))
    else:
        mean, var = bn_param["running_mean"].reshape(shape)[0], bn_param["running_var"].reshape(shape)[0]
    x_hat = (x - mean) / torch.sqrt(var + eps)
    return gamma.reshape(shape) * x_hat + beta.reshape(shape), None
