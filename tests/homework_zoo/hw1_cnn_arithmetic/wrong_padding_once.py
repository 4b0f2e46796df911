# A student who adds the padding once: "padding makes the input bigger by p".
# expect: loses test_conv_output_size
# %% conv_output_size
def conv_output_size(size, kernel_size, stride=1, padding=0):
    return (size + padding - kernel_size) // stride + 1
