# Correct: one image at a time, its argmax turned into (row, col) with divmod, then sorted.
# expect: full marks
# %% top_patches
def top_patches(model, images, channel, k):
    model.eval()
    found = []
    with torch.no_grad():
        for i in range(images.shape[0]):
            fmap = model(images[i:i + 1])[0, channel]
            flat = int(fmap.argmax())
            row, col = divmod(flat, fmap.shape[1])
            found.append((i, (row, col), float(fmap[row, col])))
    found.sort(key=lambda item: -item[2])
    return found[:k]
