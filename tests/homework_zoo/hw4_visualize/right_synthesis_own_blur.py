# Correct: its own Gaussian kernel applied channel by channel with conv2d (reflect padding), and
# jitter by rolling and rolling back.
# expect: full marks
# %% maximize_activation
import torch.nn.functional as F

def gaussian_kernel(sigma, dtype, device):
    radius = max(1, int(math.ceil(2 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]

def maximize_activation(model, channel, image_size, steps, lr, jitter, blur_sigma, seed):
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    w = next(model.parameters())
    gen = torch.Generator().manual_seed(seed)
    x = (0.1 * torch.randn(*image_size, generator=gen, dtype=w.dtype)).to(w.device)
    x = x.unsqueeze(0).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    C = image_size[0]
    for _ in range(steps):
        dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=gen))
        shifted = torch.roll(x, (dy, dx), (2, 3))
        score = model(shifted)[0, channel].mean()
        opt.zero_grad()
        (-score).backward()
        opt.step()
        with torch.no_grad():
            if blur_sigma > 0:
                k = gaussian_kernel(blur_sigma, x.dtype, x.device)
                r = k.shape[0] // 2
                padded = F.pad(x, (r, r, r, r), mode="reflect")
                x.copy_(F.conv2d(padded, k.expand(C, 1, *k.shape), groups=C))
            x.clamp_(-1, 1)
    return x[0].detach()
