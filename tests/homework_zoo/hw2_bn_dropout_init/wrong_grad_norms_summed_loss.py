# Sums the per-example losses instead of averaging them.
# expect: loses test_gradient_norms
# %% gradient_norms
def gradient_norms(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y, reduction="sum").backward()
    return torch.stack([m.weight.grad.norm() for m in model.modules() if isinstance(m, torch.nn.Linear)])
