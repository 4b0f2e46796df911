# Uses 0.01 as the variance of "small" (std 0.1), and swaps fan_in and fan_out for Xavier (harmless).
# expect: loses test_init_experiment
# %% init_experiment
def init_experiment(depth, seed, gradient_norms, xavier_std, he_std):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(128, 64, generator=gen)
    y = torch.randint(0, 10, (128,), generator=gen)
    out = {}
    for name in ("zero", "small", "xavier", "he"):
        net = deep_mlp(depth, 64, "relu", out_features=10)
        for layer in net:
            if not isinstance(layer, torch.nn.Linear):
                continue
            fan_out, fan_in = layer.weight.shape
            std = {"zero": 0.0, "small": math.sqrt(0.01), "xavier": xavier_std(fan_out, fan_in), "he": he_std(fan_in)}[name]
            with torch.no_grad():
                layer.weight.copy_(std * torch.randn(layer.weight.shape, generator=gen))
                layer.bias.zero_()
        out[name] = gradient_norms(net, x, y)
    return out
