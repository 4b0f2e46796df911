# Backprops the centre one-hot through each layer separately instead of chaining the layers:
# only the first layer's 3x3 field survives.
# expect: loses test_input_gradient
# %% input_gradient
def input_gradient(weights, size, forward, backward):
    x = torch.zeros(1, 1, size, size, dtype=weights[0].dtype)
    inputs = []
    for w in weights:
        inputs.append(x)
        x = forward(x, w, torch.zeros(1, dtype=w.dtype), 1, 1)
    for w, inp in zip(reversed(weights), reversed(inputs)):
        dout = torch.zeros_like(x)
        dout[0, 0, size // 2, size // 2] = 1
        grad = backward(dout, inp, w, 1, 1)[0]
    return grad
