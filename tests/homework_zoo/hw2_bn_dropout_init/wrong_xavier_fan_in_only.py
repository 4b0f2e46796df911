# Xavier with fan_in only (LeCun's scale), correct He.
# expect: loses test_init_std
# %% init_std
def xavier_std(fan_in, fan_out):
    return 1 / math.sqrt(fan_in)

def he_std(fan_in):
    return math.sqrt(2 / fan_in)
