# Scales the update by alpha instead of alpha / r.
# expect: loses test_lora_linear
# %% lora_linear
class LoRALinear(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.alpha = alpha
        w = base.weight
        self.A = nn.Parameter(torch.randn(r, w.shape[1], dtype=w.dtype, device=w.device) / r)
        self.B = nn.Parameter(torch.zeros(w.shape[0], r, dtype=w.dtype, device=w.device))
        self.merged = False

    def forward(self, x):
        y = self.base(x)
        if not self.merged:
            y = y + self.alpha * F.linear(F.linear(x, self.A), self.B)
        return y

    def merge(self):
        with torch.no_grad():
            self.base.weight.add_(self.alpha * self.B @ self.A)
        self.merged = True
