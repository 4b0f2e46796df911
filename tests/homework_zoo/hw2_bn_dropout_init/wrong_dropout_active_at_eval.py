# Ignores `train`: drops units at test time too.
# expect: loses test_dropout_forward
# %% dropout_forward
def dropout_forward(x, p, train, generator=None):
    mask = torch.rand(x.shape, generator=generator, device=x.device) >= p
    return x * mask / (1 - p)
