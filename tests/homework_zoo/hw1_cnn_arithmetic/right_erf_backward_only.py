# Correct: the input gradient of a conv does not depend on the layer's input, so this passes
# zeros as every layer's input and never calls forward.
# expect: full marks
# %% input_gradient
def input_gradient(weights, size, forward, backward):
    zeros = weights[0].new_zeros(1, 1, size, size)
    grad = zeros.clone()
    grad[..., size // 2, size // 2] = 1
    for w in weights[::-1]:
        grad = backward(grad, zeros, w, 1, 1)[0]
    return grad
