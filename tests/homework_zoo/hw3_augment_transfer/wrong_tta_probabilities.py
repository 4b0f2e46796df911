# Averages the softmax probabilities of the two views instead of the logits.
# expect: loses test_tta_flip
# %% tta_flip
def tta_flip(model, images):
    with torch.no_grad():
        p = model(images).softmax(dim=1)
        q = model(torch.flip(images, dims=[3])).softmax(dim=1)
    return (p + q) / 2
