class LoRALinear(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        base.weight.requires_grad_(False)
        if base.bias is not None:
            base.bias.requires_grad_(False)
        self.base = base
        self.scale = alpha / r
        kw = dict(dtype=base.weight.dtype, device=base.weight.device)
        self.A = nn.Parameter(0.01 * torch.randn(r, base.in_features, **kw))
        self.B = nn.Parameter(torch.zeros(base.out_features, r, **kw))
        self.merged = False

    def merge(self):
        # fold BA into W for inference
        with torch.no_grad():
            self.base.weight.add_(self.delta_w())
        self.merged = True

    def forward(self, inp):
        out = F.linear(inp, self.base.weight, self.base.bias)
        if not self.merged:
            out = out + F.linear(inp, self.delta_w())
        return out

    def delta_w(self):
        return self.scale * torch.matmul(self.B, self.A)
