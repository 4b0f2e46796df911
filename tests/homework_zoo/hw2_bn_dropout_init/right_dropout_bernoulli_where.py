# Correct: the mask from torch.bernoulli (keep probability 1 - p), applied with torch.where;
# backward recomputes the scale and applies it only where the unit was kept.
# expect: full marks
# %% dropout_forward
def dropout_forward(x, p, train, generator=None):
    if train:
        keep = torch.bernoulli(torch.full(x.shape, 1 - p, device=x.device), generator=generator).bool()
        return torch.where(keep, x / (1 - p), torch.zeros_like(x))
    return x.clone()

# %% dropout_backward
def dropout_backward(dout, mask, p, train):
    if train:
        return torch.where(mask, dout * (1.0 / (1.0 - p)), torch.zeros_like(dout))
    return dout.clone()
