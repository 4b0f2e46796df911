# Reads p as the keep probability (the 2014 paper's convention).
# expect: loses test_dropout_forward
# %% dropout_forward
def dropout_forward(x, p, train, generator=None):
    if not train:
        return x
    keep = torch.rand(x.shape, generator=generator, device=x.device) < p
    return torch.where(keep, x / max(p, 1e-12), torch.zeros_like(x))
