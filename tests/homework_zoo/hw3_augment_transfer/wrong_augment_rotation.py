# Rotates each digit by a random angle up to 40 degrees as well as shifting it.
# expect: loses test_augment
# %% augment
import math

def augment(images, labels, generator, max_shift=2):
    n, _, h, w = images.shape
    angles = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(40)
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator).double()
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 1] = angles.cos(), -angles.sin()
    theta[:, 1, 0], theta[:, 1, 1] = angles.sin(), angles.cos()
    theta[:, 0, 2] = -2 * shifts[:, 1] / w
    theta[:, 1, 2] = -2 * shifts[:, 0] / h
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False).to(images.device)
    return F.grid_sample(images, grid, align_corners=False), labels
