# Correct, the other valid start: A = 0 and B random also make the update zero and let A learn;
# F.linear for the products, merge through .data.
# expect: full marks
# %% lora_linear
class LoRALinear(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        base.weight.requires_grad = False
        if base.bias is not None:
            base.bias.requires_grad = False
        self.base, self.r, self.alpha, self.merged = base, r, alpha, False
        w = base.weight
        self.A = nn.Parameter(torch.zeros(r, w.shape[1], dtype=w.dtype, device=w.device))
        self.B = nn.Parameter(torch.randn(w.shape[0], r, dtype=w.dtype, device=w.device) / r ** 0.5)

    def forward(self, x):
        y = self.base(x)
        if self.merged:
            return y
        return y + F.linear(F.linear(x, self.A), self.B) * (self.alpha / self.r)

    def merge(self):
        self.base.weight.data += (self.alpha / self.r) * self.B.data @ self.A.data
        self.merged = True
