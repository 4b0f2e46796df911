# Derives dx correctly but hard-codes eps = 1e-5 instead of using the argument.
# expect: loses test_batchnorm_backward
# %% batchnorm_backward
def batchnorm_backward(dout, x, gamma, eps=1e-5):
    dims = (0,) if x.dim() == 2 else (0, 2, 3)
    shape = (1, -1) if x.dim() == 2 else (1, -1, 1, 1)
    m = x.numel() // x.shape[1]
    inv_std = 1.0 / torch.sqrt(x.var(dim=dims, unbiased=False, keepdim=True) + 1e-5)
    x_hat = (x - x.mean(dim=dims, keepdim=True)) * inv_std
    dx_hat = dout * gamma.reshape(shape)
    dx = inv_std / m * (m * dx_hat - dx_hat.sum(dim=dims, keepdim=True)
                        - x_hat * (dx_hat * x_hat).sum(dim=dims, keepdim=True))
    return dx, (dout * x_hat).sum(dim=dims), dout.sum(dim=dims)
