# Adds a random flip for more variety, upside down: a 6 becomes something that is not a 6.
# expect: loses test_augment
# %% augment
def augment(images, labels, generator, max_shift=2):
    n, _, h, w = images.shape
    flip = (torch.rand(n, generator=generator) < 0.5).to(images.device)
    images = torch.where(flip[:, None, None, None], images.flip(2), images)
    padded = F.pad(images, [max_shift] * 4)
    out = torch.empty_like(images)
    for i in range(n):
        top = int(torch.randint(0, 2 * max_shift + 1, (1,), generator=generator))
        left = int(torch.randint(0, 2 * max_shift + 1, (1,), generator=generator))
        out[i] = padded[i, :, top:top + h, left:left + w]
    return out, labels
