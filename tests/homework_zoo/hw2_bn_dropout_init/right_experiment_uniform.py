# Correct: uniform weights with the same standard deviations (bound sqrt(3) * std), a loop over
# nn.Linear modules, and a tensor of norms per initialization.
# expect: full marks
# %% init_experiment
def init_experiment(depth, seed, gradient_norms, xavier_std, he_std):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((128, 64), generator=gen)
    y = torch.randint(high=10, size=(128,), generator=gen)
    results = {}
    for scheme in ["zero", "small", "xavier", "he"]:
        model = deep_mlp(depth, 64, "relu", out_features=10)
        linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        for lin in linears:
            fan_out, fan_in = lin.weight.shape
            if scheme == "zero":
                std = 0.0
            elif scheme == "small":
                std = 0.01
            elif scheme == "xavier":
                std = xavier_std(fan_in, fan_out)
            else:
                std = he_std(fan_in)
            bound = math.sqrt(3.0) * std
            with torch.no_grad():
                lin.weight.uniform_(-bound, bound, generator=gen)
                lin.bias.fill_(0.0)
        results[scheme] = torch.as_tensor(gradient_norms(model, x, y))
    return results
