# Routes the gradient through the mask but forgets the forward pass's rescaling.
# expect: loses test_dropout_backward
# %% dropout_backward
def dropout_backward(dout, mask, p, train):
    if not train:
        return dout
    return dout * mask
