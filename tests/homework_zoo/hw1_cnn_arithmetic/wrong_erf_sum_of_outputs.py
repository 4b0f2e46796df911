# Starts backprop from a gradient of ones, i.e. the gradient of the sum of all output pixels,
# not of the centre pixel.
# expect: loses test_input_gradient
# %% input_gradient
def input_gradient(weights, size, forward, backward):
    x = torch.zeros(1, 1, size, size, dtype=weights[0].dtype)
    acts = [x]
    for w in weights:
        acts.append(forward(acts[-1], w, torch.zeros(1, dtype=w.dtype), 1, 1))
    g = torch.ones_like(acts[-1])
    for layer in range(len(weights) - 1, -1, -1):
        g, _, _ = backward(g, acts[layer], weights[layer], 1, 1)
    return g
