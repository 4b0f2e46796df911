# Counts every pixel that is not pure background as ink (value > 0), so the faint halo around
# the strokes, where the map also spills, inflates the share.
# expect: loses test_occlusion_experiment
# %% ink_share
def ink_share(occlusion, model, images, labels, window, stride, baseline):
    shares = []
    for image, label in zip(images, labels):
        heat = occlusion(model, image, int(label), window, stride, baseline).clamp(min=0)
        shares.append((heat * (image > 0)).sum() / heat.sum())
    return torch.stack(shares)
