# B is a plain 1x1 conv: it ignores the base's groups.
# expect: loses test_lora_conv2d
# %% lora_conv2d
class LoRAConv2d(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        self.base.weight.requires_grad_(False)
        if base.bias is not None:
            base.bias.requires_grad_(False)
        self.scaling = alpha / r
        self.A = nn.Conv2d(base.in_channels, r, base.kernel_size, base.stride, base.padding, base.dilation, bias=False)
        self.B = nn.Conv2d(r, base.out_channels, 1, bias=False)
        self.B.weight.data.zero_()
        self.to(base.weight.device, base.weight.dtype)

    def forward(self, x):
        return self.base(x) + self.B(self.A(x)) * self.scaling
