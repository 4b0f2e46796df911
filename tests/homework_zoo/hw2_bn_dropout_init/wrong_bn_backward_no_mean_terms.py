# Treats the batch mean and variance as constants: only the direct path to x.
# expect: loses test_batchnorm_backward
# %% batchnorm_backward
def batchnorm_backward(dout, x, gamma, eps=1e-5):
    dims = (0,) if x.dim() == 2 else (0, 2, 3)
    shape = (1, -1) if x.dim() == 2 else (1, -1, 1, 1)
    std = torch.sqrt(x.var(dim=dims, unbiased=False, keepdim=True) + eps)
    x_hat = (x - x.mean(dim=dims, keepdim=True)) / std
    dx = dout * gamma.reshape(shape) / std
    return dx, (dout * x_hat).sum(dim=dims), dout.sum(dim=dims)
