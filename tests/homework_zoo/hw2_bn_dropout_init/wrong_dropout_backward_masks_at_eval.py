# Applies the mask whatever the mode.
# expect: loses test_dropout_backward
# %% dropout_backward
def dropout_backward(dout, mask, p, train):
    return dout * mask.to(dout.dtype) / (1 - p)
