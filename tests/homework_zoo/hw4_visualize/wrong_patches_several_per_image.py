# Takes the k strongest units over the whole batch, so one bright image fills several places.
# expect: loses test_top_patches
# %% top_patches
def top_patches(model, images, channel, k):
    model.eval()
    with torch.no_grad():
        maps = model(images)[:, channel]
    n, h, w = maps.shape
    values, flat = maps.flatten().topk(min(k, maps.numel()))
    result = []
    for v, f in zip(values.tolist(), flat.tolist()):
        image, unit = divmod(f, h * w)
        result.append((image, divmod(unit, w), v))
    return result
