# Takes the norm of every parameter's gradient (biases too), not only the weights'.
# expect: loses test_gradient_norms
# %% gradient_norms
def gradient_norms(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [p.grad.norm().item() for p in model.parameters()]
