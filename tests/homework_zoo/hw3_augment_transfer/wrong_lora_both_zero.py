# Starts A and B at zero "so the layer starts equal to the base": the adapter never gets a gradient.
# expect: loses test_lora_linear
# %% lora_linear
class LoRALinear(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.scaling = alpha / r
        self.A = nn.Parameter(torch.zeros(r, base.in_features, dtype=base.weight.dtype, device=base.weight.device))
        self.B = nn.Parameter(torch.zeros(base.out_features, r, dtype=base.weight.dtype, device=base.weight.device))
        self.merged = False

    def forward(self, x):
        out = self.base(x)
        if not self.merged:
            out = out + self.scaling * (x @ self.A.T) @ self.B.T
        return out

    def merge(self):
        with torch.no_grad():
            self.base.weight += self.scaling * self.B @ self.A
        self.merged = True
