# Measures how much of the positive map's *area* (pixels with a positive score) is ink instead
# of how much of its mass is: strong and faint evidence count the same.
# expect: loses test_occlusion_experiment
# %% ink_share
def ink_share(occlusion, model, images, labels, window, stride, baseline):
    shares = []
    for image, label in zip(images, labels):
        positive = occlusion(model, image, int(label), window, stride, baseline) > 0
        ink = image >= 0.5
        shares.append((positive & ink).sum() / positive.sum())
    return torch.stack(shares).double()
