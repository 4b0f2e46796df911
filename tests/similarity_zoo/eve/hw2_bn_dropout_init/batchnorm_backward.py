def batchnorm_backward(dout, x, gamma, eps=1e-5):
    axes = [d for d in range(x.dim()) if d != 1]

    def per_channel(t):
        return t.reshape([1, -1] + [1] * (x.dim() - 2))

    mu = x.mean(dim=axes, keepdim=True)
    sigma = torch.sqrt(((x - mu) ** 2).mean(dim=axes, keepdim=True) + eps)
    xn = (x - mu) / sigma
    g = dout * per_channel(gamma)
    term1 = g.mean(dim=axes, keepdim=True)
    term2 = xn * (g * xn).mean(dim=axes, keepdim=True)
    return (g - term1 - term2) / sigma, (dout * xn).sum(dim=axes), dout.sum(dim=axes)
