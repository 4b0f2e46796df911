# Uses torch.roll: what leaves one side comes back in on the other instead of zeros.
# expect: loses test_augment
# %% augment
def augment(images, labels, generator, max_shift=2):
    shifts = torch.randint(-max_shift, max_shift + 1, (len(images), 2), generator=generator)
    out = torch.stack([torch.roll(image, shifts=(int(dy), int(dx)), dims=(1, 2))
                       for image, (dy, dx) in zip(images, shifts)])
    return out, labels
