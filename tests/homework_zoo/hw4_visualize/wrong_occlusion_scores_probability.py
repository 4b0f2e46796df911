# Scores each window by the target's probability with the window hidden (the slides' heat map),
# not by how much the logit drops.
# expect: loses test_occlusion_map
# %% occlusion_map
def occlusion_map(model, image, target, window, stride, baseline=0.0):
    model.eval()
    C, H, W = image.shape
    total = torch.zeros_like(image)
    count = torch.zeros_like(image)
    with torch.no_grad():
        for top in range(0, H - window[0] + stride[0], stride[0]):
            for left in range(0, W - window[1] + stride[1], stride[1]):
                hidden = image.clone()
                hidden[:, top:top + window[0], left:left + window[1]] = baseline
                p = torch.softmax(model(hidden[None]), dim=1)[0, target]
                total[:, top:top + window[0], left:left + window[1]] += p
                count[:, top:top + window[0], left:left + window[1]] += 1
    return total / count
