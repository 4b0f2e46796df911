# Correct: builds the layers with torch.nn and counts their parameters (allowed).
# expect: full marks
# %% vgg_params
from torch import nn

def vgg_params(config, in_channels=3, num_classes=1000):
    layers, channels = [], in_channels
    for v in config:
        if v == "M":
            continue
        layers.append(nn.Conv2d(channels, v, 3, padding=1))
        channels = v
    layers += [nn.Linear(channels * 7 * 7, 4096), nn.Linear(4096, 4096), nn.Linear(4096, num_classes)]
    return sum(p.numel() for layer in layers for p in layer.parameters())
