# Plain gradient ascent: jitter and blur_sigma are accepted but never used, so the image is the
# high-frequency pattern the prior was meant to prevent.
# expect: loses test_maximize_activation
# %% maximize_activation
def maximize_activation(model, channel, image_size, steps, lr, jitter, blur_sigma, seed):
    model.eval()
    w = next(model.parameters())
    g = torch.Generator().manual_seed(seed)
    img = (0.1 * torch.randn(image_size, generator=g, dtype=w.dtype)).to(w.device)[None].requires_grad_()
    opt = torch.optim.Adam([img], lr=lr)
    for step in range(steps):
        loss = -model(img)[0, channel].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            img.clamp_(-1, 1)
    return img.detach()[0]
