def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    mom = bn_param.get("momentum", 0.1)
    was_4d = x.dim() == 4
    if was_4d:
        N, C, H, W = x.shape
        x = x.permute(1, 0, 2, 3).reshape(C, -1).t()
    if mode == "train":
        count = x.shape[0]
        mu = x.mean(0)
        sq = ((x - mu) ** 2).sum(0)
        var = sq / count
        rm, rv = bn_param["running_mean"], bn_param["running_var"]
        rm.copy_(rm + mom * (mu - rm))
        rv.copy_(rv + mom * (sq / (count - 1) - rv))
    else:
        mu, var = bn_param["running_mean"], bn_param["running_var"]
    normed = (x - mu) * torch.rsqrt(var + eps)
    y = normed * gamma + beta
    if was_4d:
        y = y.t().reshape(C, N, H, W).permute(1, 0, 2, 3)
    return y, (normed, var)
