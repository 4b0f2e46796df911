# Correct: torch.autograd.grad on the Linear weights (leaves .grad alone, so nothing accumulates);
# the experiment initializes with torch.nn.init's own Xavier and He (same distributions).
# expect: full marks
# %% gradient_norms
def gradient_norms(model, x, y):
    weights = [module.weight for module in model.modules() if isinstance(module, torch.nn.Linear)]
    logits = model(x)
    loss = -torch.log_softmax(logits, dim=1)[torch.arange(len(y)), y].mean()
    grads = torch.autograd.grad(loss, weights)
    return torch.tensor([torch.linalg.norm(g).item() for g in grads])

# %% init_experiment
def init_experiment(depth, seed, gradient_norms, xavier_std, he_std):
    torch.manual_seed(seed)
    x = torch.randn(128, 64)
    y = torch.randint(10, (128,))
    inits = {"zero": torch.nn.init.zeros_, "small": lambda w: torch.nn.init.normal_(w, std=0.01),
             "xavier": torch.nn.init.xavier_normal_, "he": lambda w: torch.nn.init.kaiming_normal_(w, nonlinearity="relu")}
    norms = {}
    for name, init in inits.items():
        model = deep_mlp(depth, 64, "relu", out_features=10)
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                init(module.weight)
                torch.nn.init.zeros_(module.bias)
        norms[name] = gradient_norms(model, x, y)
    return norms
