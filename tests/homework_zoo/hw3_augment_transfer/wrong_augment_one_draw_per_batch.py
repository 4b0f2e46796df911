# Draws one shift and moves the whole batch by it: every image in a batch gets the same shift.
# expect: loses test_augment
# %% augment
def augment(images, labels, generator, max_shift=2):
    h, w = images.shape[-2:]
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator).tolist()
    padded = F.pad(images, (max_shift, max_shift, max_shift, max_shift))
    top, left = max_shift - dy, max_shift - dx
    return padded[:, :, top:top + h, left:left + w], labels
