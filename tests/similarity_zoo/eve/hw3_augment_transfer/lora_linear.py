class LoRALinear(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        for param in self.base.parameters():
            param.requires_grad = False
        w = base.weight
        self.A = nn.Parameter(torch.empty(r, w.shape[1], dtype=w.dtype, device=w.device).normal_(std=0.01))
        self.B = nn.Parameter(w.new_zeros(w.shape[0], r))
        self.s = alpha / r
        self.folded = False

    def forward(self, x):
        if self.folded:
            return self.base(x)
        low_rank = (x @ self.A.t()) @ self.B.t()
        return self.base(x) + self.s * low_rank

    def merge(self):
        self.base.weight.data.add_(self.s * (self.B.data @ self.A.data))
        self.folded = True
