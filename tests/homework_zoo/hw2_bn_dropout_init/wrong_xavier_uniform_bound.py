# Returns the bound a of Xavier's uniform U(-a, a) instead of the normal's standard deviation.
# expect: loses test_init_std
# %% init_std
def xavier_std(fan_in, fan_out):
    return math.sqrt(6 / (fan_in + fan_out))

def he_std(fan_in):
    return math.sqrt(2 / fan_in)
