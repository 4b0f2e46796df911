# Flips the height axis (dim 2): an upside-down view, not a mirror image.
# expect: loses test_tta_flip
# %% tta_flip
def tta_flip(model, images):
    with torch.no_grad():
        return (model(images) + model(images.flip(2))) / 2
