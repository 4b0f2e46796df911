# Only slides whole windows (range up to H - h + 1), so when the stride does not divide the
# image the last rows or columns are never hidden; they get a score of 0.
# expect: loses test_occlusion_map
# %% occlusion_map
def occlusion_map(model, image, target, window, stride, baseline=0.0):
    model.eval()
    C, H, W = image.shape
    total = torch.zeros_like(image)
    count = torch.zeros_like(image)
    with torch.no_grad():
        score = model(image[None])[0, target]
        for top in range(0, H - window[0] + 1, stride[0]):
            for left in range(0, W - window[1] + 1, stride[1]):
                hidden = image.clone()
                hidden[:, top:top + window[0], left:left + window[1]] = baseline
                total[:, top:top + window[0], left:left + window[1]] += score - model(hidden[None])[0, target]
                count[:, top:top + window[0], left:left + window[1]] += 1
    return total / count.clamp(min=1)
