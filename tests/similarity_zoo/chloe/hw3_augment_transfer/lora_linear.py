class LoRALinear(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        base.weight.requires_grad_(False)
        if base.bias is not None:
            base.bias.requires_grad_(False)
        self.base = base
        self.factor = alpha / r
        opts = dict(dtype=base.weight.dtype, device=base.weight.device)
        self.A = nn.Parameter(0.01 * torch.randn(r, base.in_features, **opts))
        self.B = nn.Parameter(torch.zeros(base.out_features, r, **opts))
        self.done = False

    def update(self):
        # the low-rank change of the weight
        return self.factor * torch.matmul(self.B, self.A)

    def forward(self, x):
        y = F.linear(x, self.base.weight, self.base.bias)
        if not self.done:
            y = y + F.linear(x, self.update())
        return y

    def merge(self):
        with torch.no_grad():
            self.base.weight.add_(self.update())
        self.done = True
