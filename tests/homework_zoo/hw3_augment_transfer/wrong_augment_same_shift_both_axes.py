# One random number per image used for both directions: only diagonal moves ever happen.
# expect: loses test_augment
# %% augment
def augment(images, labels, generator, max_shift=2):
    n, _, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    return torch.stack([padded[i, :, o:o + h, o:o + w] for i, o in enumerate(offsets.tolist())]), labels
