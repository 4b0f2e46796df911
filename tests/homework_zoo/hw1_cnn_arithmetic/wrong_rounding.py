# Rounds the number of window steps instead of flooring it.
# expect: loses test_conv_output_size
# %% conv_output_size
def conv_output_size(size, kernel_size, stride=1, padding=0):
    steps = (size + 2 * padding - kernel_size) / stride
    return int(round(steps)) + 1
