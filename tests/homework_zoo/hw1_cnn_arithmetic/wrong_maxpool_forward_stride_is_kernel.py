# Moves each window by its own size, as F.max_pool2d does by default, ignoring the stride argument.
# expect: loses test_maxpool_forward
# %% maxpool_forward
def maxpool_forward(x, kernel_size, stride):
    windows = x.unfold(2, kernel_size, kernel_size).unfold(3, kernel_size, kernel_size)
    return windows.reshape(*windows.shape[:4], -1).max(dim=-1).values
