# torch.randint's upper bound is exclusive: this never shifts by +max_shift.
# expect: loses test_augment
# %% augment
def augment(images, labels, generator, max_shift=2):
    n, c, h, w = images.shape
    out = torch.zeros_like(images)
    padded = F.pad(images, (max_shift, max_shift, max_shift, max_shift))
    dys = torch.randint(-max_shift, max_shift, (n,), generator=generator)
    dxs = torch.randint(-max_shift, max_shift, (n,), generator=generator)
    for i in range(n):
        top, left = max_shift + int(dys[i]), max_shift + int(dxs[i])
        out[i] = padded[i, :, top:top + h, left:left + w]
    return out, labels
