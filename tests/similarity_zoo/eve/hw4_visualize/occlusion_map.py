def occlusion_map(model, image, target, window, stride, baseline=0.0):
    model.eval()
    c, h, w = image.shape
    wh, ww = window
    sh, sw = stride
    boxes = [(t, l) for t in range(0, h - wh + sh, sh) for l in range(0, w - ww + sw, sw)]
    batch = image.repeat(len(boxes), 1, 1, 1)
    for n, (t, l) in enumerate(boxes):
        batch[n, :, t:t + wh, l:l + ww] = baseline
    with torch.no_grad():
        clean = model(image[None])[0, target]
        drops = clean - model(batch)[:, target]
    heat = image.new_zeros(h, w)
    cover = image.new_zeros(h, w)
    for d, (t, l) in zip(drops, boxes):
        heat[t:t + wh, l:l + ww] += d
        cover[t:t + wh, l:l + ww] += 1
    return (heat / cover).expand(c, h, w).clone()
