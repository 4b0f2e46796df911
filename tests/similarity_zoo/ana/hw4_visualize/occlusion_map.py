def occlusion_map(model, image, target, window, stride, baseline=0.0):
    # hide one patch at a time and see how much the score drops
    model.eval()
    _, H, W = image.shape
    ys = positions(H, window[0], stride[0])
    xs = positions(W, window[1], stride[1])
    acc, hits = torch.zeros_like(image), torch.zeros_like(image)
    with torch.no_grad():
        base_score = model(image.unsqueeze(0))[0, target]
        for y in ys:
            for x in xs:
                patch = (slice(None), slice(y, y + window[0]), slice(x, x + window[1]))
                hidden = image.clone()
                hidden[patch] = baseline
                acc[patch] += base_score - model(hidden.unsqueeze(0))[0, target]
                hits[patch] += 1
    return acc / hits   # average over all the windows that covered a pixel


def positions(n, w, s):
    return [k * s for k in range(math.ceil((n - w) / s) + 1)]
