# Adds up the drops of every window that hid a pixel instead of averaging them.
# expect: loses test_occlusion_map
# %% occlusion_map
def occlusion_map(model, image, target, window, stride, baseline=0.0):
    model.eval()
    C, H, W = image.shape
    heat = torch.zeros_like(image)
    with torch.no_grad():
        score = model(image[None])[0, target]
        for top in range(0, H - window[0] + stride[0], stride[0]):
            for left in range(0, W - window[1] + stride[1], stride[1]):
                hidden = image.clone()
                hidden[:, top:top + window[0], left:left + window[1]] = baseline
                heat[:, top:top + window[0], left:left + window[1]] += score - model(hidden[None])[0, target]
    return heat
