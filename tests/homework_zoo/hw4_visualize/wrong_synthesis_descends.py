# Copies a training loop: loss = the unit's value, then backward and step, so Adam makes the
# unit fire less, not more.
# expect: loses test_maximize_activation
# %% maximize_activation
from torchvision.transforms.functional import gaussian_blur

def maximize_activation(model, channel, image_size, steps, lr, jitter, blur_sigma, seed):
    model.eval()
    w = next(model.parameters())
    g = torch.Generator().manual_seed(seed)
    img = (0.1 * torch.randn(image_size, generator=g, dtype=w.dtype)).to(w.device)[None].requires_grad_()
    opt = torch.optim.Adam([img], lr=lr)
    for step in range(steps):
        dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=g).tolist()
        loss = model(img.roll((dy, dx), (2, 3)))[0, channel].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            if blur_sigma > 0:
                img.copy_(gaussian_blur(img, [3, 3], [blur_sigma, blur_sigma]))
            img.clamp_(-1, 1)
    return img.detach()[0]
