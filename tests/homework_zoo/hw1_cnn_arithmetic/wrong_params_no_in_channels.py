# Thinks of a filter as k x k only, forgetting that it spans every input channel.
# expect: loses test_conv_params
# %% conv_params
def conv_params(in_channels, out_channels, kernel_size, bias=True):
    per_filter = kernel_size * kernel_size
    return out_channels * per_filter + (out_channels if bias else 0)
