# Correct: stacks the maps, then one masked sum per digit.
# expect: full marks
# %% ink_share
def ink_share(occlusion, model, images, labels, window, stride, baseline):
    maps = torch.stack([occlusion(model, images[i], int(labels[i]), window, stride, baseline)
                        for i in range(len(images))])                   # (N, 1, 8, 8)
    positive = torch.relu(maps).flatten(1)
    ink = (images >= 0.5).flatten(1).to(positive.dtype)
    return (positive * ink).sum(dim=1) / positive.sum(dim=1)
