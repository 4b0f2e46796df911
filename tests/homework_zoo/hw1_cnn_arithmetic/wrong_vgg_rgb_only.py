# Assumes the input is always RGB.
# expect: loses test_vgg_params
# %% vgg_params
def vgg_params(config, in_channels=3, num_classes=1000):
    total, prev = 0, 3
    for v in config:
        if v == "M":
            continue
        total += prev * v * 9 + v
        prev = v
    dims = [prev * 49, 4096, 4096, num_classes]
    for a, b in zip(dims, dims[1:]):
        total += a * b + b
    return total
