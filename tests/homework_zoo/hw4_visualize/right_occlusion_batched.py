# Correct: builds every occluded copy at once with a mask per window position and runs them
# as one batch; the mean comes from a coverage count.
# expect: full marks
# %% occlusion_map
def occlusion_map(model, image, target, window, stride, baseline=0.0):
    model.eval()
    C, H, W = image.shape
    tops = range(0, max(H - window[0], 0) + stride[0], stride[0])
    lefts = range(0, max(W - window[1], 0) + stride[1], stride[1])
    masks = []
    for top in tops:
        for left in lefts:
            m = torch.zeros(H, W, dtype=torch.bool, device=image.device)
            m[top:top + window[0], left:left + window[1]] = True
            masks.append(m)
    masks = torch.stack(masks)                                       # (P, H, W)
    batch = torch.where(masks[:, None], torch.as_tensor(baseline, dtype=image.dtype, device=image.device), image)
    with torch.no_grad():
        drops = model(image[None])[:, target] - model(batch)[:, target]  # (P,)
    masks = masks.to(image.dtype)
    heat = (drops[:, None, None] * masks).sum(0) / masks.sum(0)       # (H, W)
    return heat.expand(C, H, W).clone()
