# Correct: the scales through torch.nn.init.calculate_gain and the variance they keep.
# expect: full marks
# %% init_std
from torch.nn.init import calculate_gain

def xavier_std(fan_in, fan_out):
    variance = 1.0 / ((fan_in + fan_out) / 2)
    return calculate_gain("linear") * variance ** 0.5

def he_std(fan_in):
    return calculate_gain("relu") / math.sqrt(fan_in)
