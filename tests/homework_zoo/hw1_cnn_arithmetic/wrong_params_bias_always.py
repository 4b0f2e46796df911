# Always counts the biases, even with bias=False.
# expect: loses test_conv_params
# %% conv_params
def conv_params(in_channels, out_channels, kernel_size, bias=True):
    return out_channels * (in_channels * kernel_size ** 2 + 1)
