# He without the ReLU's correction (gain 1).
# expect: loses test_init_std
# %% init_std
def xavier_std(fan_in, fan_out):
    return math.sqrt(2 / (fan_in + fan_out))

def he_std(fan_in):
    return math.sqrt(1 / fan_in)
