# A copies the kernel, stride and padding of the base conv but not its dilation.
# expect: loses test_lora_conv2d
# %% lora_conv2d
class LoRAConv2d(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.scaling = alpha / r
        kw = {"dtype": base.weight.dtype, "device": base.weight.device, "bias": False}
        self.A = nn.Conv2d(base.in_channels, r, base.kernel_size, stride=base.stride, padding=base.padding, **kw)
        self.B = nn.Conv2d(r, base.out_channels, 1, groups=base.groups, **kw)
        nn.init.zeros_(self.B.weight)

    def forward(self, x):
        return self.base(x) + self.scaling * self.B(self.A(x))
