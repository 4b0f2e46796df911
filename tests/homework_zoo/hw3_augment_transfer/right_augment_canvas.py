# Correct: a zero canvas per image and the overlapping rectangle copied in, with explicit loops.
# expect: full marks
# %% augment
def augment(images, labels, generator, max_shift=2):
    out = torch.zeros_like(images)
    h, w = images.shape[-2:]
    for i in range(images.shape[0]):
        dy = int(torch.randint(-max_shift, max_shift + 1, (), generator=generator))
        dx = int(torch.randint(-max_shift, max_shift + 1, (), generator=generator))
        src_y, dst_y = max(0, -dy), max(0, dy)
        src_x, dst_x = max(0, -dx), max(0, dx)
        out[i, :, dst_y:h - src_y, dst_x:w - src_x] = images[i, :, src_y:h - dst_y, src_x:w - dst_x]
    return out, labels
