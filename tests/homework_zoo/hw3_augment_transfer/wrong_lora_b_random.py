# Initializes both factors with small random values "so that both can learn".
# expect: loses test_lora_linear
# %% lora_linear
class LoRALinear(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad = False
        self.scale = alpha / r
        self.A = nn.Parameter(0.01 * torch.randn(r, base.in_features, dtype=base.weight.dtype, device=base.weight.device))
        self.B = nn.Parameter(0.01 * torch.randn(base.out_features, r, dtype=base.weight.dtype, device=base.weight.device))
        self.merged = False

    def forward(self, x):
        if self.merged:
            return self.base(x)
        return self.base(x) + self.scale * (x @ self.A.T @ self.B.T)

    def merge(self):
        self.base.weight.data += self.scale * (self.B @ self.A).data
        self.merged = True
