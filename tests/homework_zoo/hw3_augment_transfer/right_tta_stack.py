# Correct: the two views stacked, torch.flip on the last axis, inference mode instead of no_grad.
# expect: full marks
# %% tta_flip
def tta_flip(model, images):
    with torch.inference_mode():
        views = [images, torch.flip(images, dims=[-1])]
        return torch.stack([model(v) for v in views]).mean(dim=0)
