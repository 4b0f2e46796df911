def augment(images, labels, generator):
    n = len(images)
    do_flip = (torch.rand(n, generator=generator) < 0.5).tolist()
    offsets = torch.randint(0, 5, (n, 2), generator=generator).tolist()
    out = []
    for img, flip, (oy, ox) in zip(images, do_flip, offsets):
        img = img.flip(-1) if flip else img
        # a shift with zeros coming in: pad all round, cut the window we want
        img = F.pad(img, (2, 2, 2, 2))[:, oy:oy + img.shape[1], ox:ox + img.shape[2]]
        out.append(img)
    return torch.stack(out), labels
