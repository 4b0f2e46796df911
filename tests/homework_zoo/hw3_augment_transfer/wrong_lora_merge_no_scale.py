# merge() folds B A into the weight but forgets the alpha / r factor.
# expect: loses test_lora_linear
# %% lora_linear
class LoRALinear(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.scaling = alpha / r
        factory = {"dtype": base.weight.dtype, "device": base.weight.device}
        self.A = nn.Parameter(torch.randn(r, base.in_features, **factory) * 0.01)
        self.B = nn.Parameter(torch.zeros(base.out_features, r, **factory))
        self.merged = False

    def forward(self, x):
        out = self.base(x)
        if self.merged:
            return out
        return out + self.scaling * (x @ self.A.T) @ self.B.T

    def merge(self):
        with torch.no_grad():
            self.base.weight += self.B @ self.A
        self.merged = True
