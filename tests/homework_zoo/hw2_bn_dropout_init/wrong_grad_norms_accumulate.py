# Never clears .grad, so a second call on the same model adds to the first call's gradients.
# expect: loses test_gradient_norms
# %% gradient_norms
def gradient_norms(model, x, y):
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return [layer.weight.grad.norm().item() for layer in model.modules() if isinstance(layer, torch.nn.Linear)]
