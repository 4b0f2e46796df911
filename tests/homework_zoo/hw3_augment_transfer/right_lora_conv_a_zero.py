# Correct: A's geometry read off the base conv one argument at a time, A starting at zero and B random.
# expect: full marks
# %% lora_conv2d
class LoRAConv2d(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        for p in base.parameters():
            p.requires_grad_(False)
        self.base, self.scale = base, alpha / r
        self.A = nn.Conv2d(in_channels=base.in_channels, out_channels=r, kernel_size=base.kernel_size,
                           stride=base.stride, padding=base.padding, dilation=base.dilation, bias=False)
        self.B = nn.Conv2d(in_channels=r, out_channels=base.out_channels, kernel_size=1, groups=base.groups, bias=False)
        nn.init.zeros_(self.A.weight)
        self.A.to(base.weight)
        self.B.to(base.weight)

    def forward(self, x):
        delta = self.B(self.A(x))
        return self.base(x) + self.scale * delta
