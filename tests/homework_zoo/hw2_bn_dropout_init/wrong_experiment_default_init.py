# Forgets to initialize the "xavier" and "he" models: they keep PyTorch's default initialization.
# expect: loses test_init_experiment
# %% init_experiment
def init_experiment(depth, seed, gradient_norms, xavier_std, he_std):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(128, 64, generator=g), torch.randint(10, (128,), generator=g)
    result = {}
    for name in ["zero", "small", "xavier", "he"]:
        model = deep_mlp(depth, 64, "relu", out_features=10)
        for layer in model.modules():
            if isinstance(layer, torch.nn.Linear) and name in ("zero", "small"):
                torch.nn.init.normal_(layer.weight, 0.0, 0.01 if name == "small" else 0.0)
                torch.nn.init.zeros_(layer.bias)
        result[name] = gradient_norms(model, x, y)
    return result
