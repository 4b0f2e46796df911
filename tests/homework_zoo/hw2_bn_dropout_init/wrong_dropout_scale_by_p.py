# Scales the kept units by p, as in the slide's test-time formula, instead of by the inverse keep probability.
# expect: loses test_dropout_forward
# %% dropout_forward
def dropout_forward(x, p, train, generator=None):
    if not train:
        return x
    mask = (torch.rand(x.shape, generator=generator, device=x.device) > p).to(x.dtype)
    return x * mask * p
