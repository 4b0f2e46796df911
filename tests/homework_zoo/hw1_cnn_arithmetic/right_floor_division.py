# Correct, written with math.floor and true division.
# expect: full marks
# %% conv_output_size
import math

def conv_output_size(size, kernel_size, stride=1, padding=0):
    return math.floor((size + 2 * padding - kernel_size) / stride) + 1
