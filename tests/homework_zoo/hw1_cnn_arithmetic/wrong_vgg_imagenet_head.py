# Counts the classifier's last bias as ImageNet's 1000 whatever num_classes is.
# expect: loses test_vgg_params
# %% vgg_params
def vgg_params(config, in_channels=3, num_classes=1000):
    total, prev = 0, in_channels
    for v in config:
        if v == "M":
            continue
        total += prev * v * 9 + v
        prev = v
    total += prev * 7 * 7 * 4096 + 4096
    total += 4096 * 4096 + 4096
    total += 4096 * num_classes + 1000
    return total
