# Copies 512 * 7 * 7 from the slide instead of using the last conv's width.
# expect: loses test_vgg_params
# %% vgg_params
def vgg_params(config, in_channels=3, num_classes=1000):
    total = 0
    prev = in_channels
    for v in config:
        if v != "M":
            total += prev * v * 3 * 3 + v
            prev = v
    total += 512 * 7 * 7 * 4096 + 4096
    total += 4096 * 4096 + 4096
    total += 4096 * num_classes + num_classes
    return total
