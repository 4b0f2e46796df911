def augment(images, labels, generator):
    # random choices up front, then one image at a time
    n = images.shape[0]
    H, W = images.shape[2], images.shape[3]
    flips = torch.rand(n, generator=generator) < 0.5
    offsets = torch.randint(0, 5, (n, 2), generator=generator)
    out = []
    for i in range(n):
        img = images[i]
        if flips[i]:
            img = img.flip(2)
        bigger = images.new_zeros(img.shape[0], H + 4, W + 4)   # zero border of 2
        bigger[:, 2:H + 2, 2:W + 2] = img
        oy, ox = offsets[i].tolist()
        out.append(bigger[:, oy:oy + H, ox:ox + W])
    return torch.stack(out), labels
