"""activations / dead_channels / filters against plain forward passes and hand-made weights."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.visualize import activations, dead_channels, filters


def net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Conv2d(4, 5, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3),
    )


def all_hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_outputs_equal_the_sub_network_in_eval_mode(device):
    model = net().to(device)
    x = torch.randn(2, 3, 9, 9, device=device)
    maps = activations(model, x, ["0", "2", "5", "8"])
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(maps["0"], model[0](x))               # pre-ReLU, despite the in-place ReLU
        torch.testing.assert_close(maps["2"], model[:3](x))
        torch.testing.assert_close(maps["5"], model[:6](x))
        torch.testing.assert_close(maps["8"], model(x))
    assert (maps["0"] < 0).any(), "the conv's output must not have been rectified by the in-place ReLU"
    assert maps["5"].shape == (2, 5, 7, 7)
    assert not any(t.requires_grad for t in maps.values())


def test_hooks_removed_and_modes_restored():
    model = net().train()
    model[1].eval()  # a frozen batch norm inside a training model: mixed modes must survive
    modes = [m.training for m in model.modules()]
    x = torch.randn(2, 3, 9, 9)
    activations(model, x, "4")
    activations(model, x, ["1", "3"], eval_mode=False)
    assert all_hooks(model) == 0
    assert [m.training for m in model.modules()] == modes
    with pytest.raises(RuntimeError):  # a failing forward (wrong channel count)
        activations(model, torch.randn(2, 5, 9, 9), ["0", "4"])
    assert all_hooks(model) == 0
    assert [m.training for m in model.modules()] == modes


def test_eval_mode_switches_dropout_off():
    model = net().train()
    x = torch.randn(4, 3, 9, 9)
    first, second = (activations(model, x, "3")["3"] for _ in range(2))
    torch.testing.assert_close(first, second)
    noisy = activations(model, x, "3", eval_mode=False)["3"]
    assert (noisy == 0).float().mean() > 0.3  # dropout zeroed about half


def test_bad_layer_names_and_shapes():
    model = net()
    with pytest.raises(ValueError, match=r"no layer named 'conv1'; valid names: 0, 1, 2, 3, 4, 5, 6, 7, 8"):
        activations(model, torch.randn(1, 3, 9, 9), ["0", "conv1"])
    with pytest.raises(ValueError, match=r"got \(C, H, W\).*unsqueeze\(0\)"):
        activations(model, torch.randn(3, 9, 9), "0")
    assert all_hooks(model) == 0


class SharedReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2, self.relu = nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3), nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv2(self.relu(self.conv1(x))))


def test_a_module_used_twice_is_refused():
    with pytest.raises(ValueError, match="ran 2 times"):
        activations(SharedReLU(), torch.randn(1, 1, 8, 8), "relu")


# -- dead channels ---------------------------------------------------------------------------------


def test_dead_channels_counts_the_channels_that_never_fire(device):
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 6, 3)
    with torch.no_grad():
        conv.weight.uniform_(-1, 1)
        conv.bias.copy_(torch.tensor([0.0, -100.0, 0.0, -100.0, -100.0, 0.5]))  # inputs in [0, 1]: |w x| <= 9
    model = nn.Sequential(conv, nn.ReLU()).to(device)
    images = torch.rand(40, 1, 8, 8)
    loader = DataLoader(TensorDataset(images, torch.zeros(40)), batch_size=16)
    fraction, dead, peak = dead_channels(model, loader, "1")
    expected_peak = torch.relu(conv(images.to(device))).amax(dim=(0, 2, 3))
    torch.testing.assert_close(peak, expected_peak)
    assert dead.tolist() == (expected_peak <= 0).tolist()
    assert {1, 3, 4} <= set(torch.nonzero(dead).flatten().tolist())
    assert fraction == pytest.approx(dead.float().mean().item())
    # the conv's own (pre-ReLU) output gives the same channels
    assert dead_channels(model, images, "0").dead.tolist() == dead.tolist()


# -- filters ---------------------------------------------------------------------------------------


def test_first_layer_filters_are_scaled_per_filter():
    model = net()
    kernels = filters(model)  # the first Conv2d
    weight = model[0].weight.detach()
    low = weight.amin(dim=(1, 2, 3), keepdim=True)
    high = weight.amax(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(kernels, (weight - low) / (high - low))
    assert kernels.shape == (4, 3, 3, 3)
    assert kernels.amin(dim=(1, 2, 3)).tolist() == [0.0] * 4
    assert kernels.amax(dim=(1, 2, 3)).tolist() == pytest.approx([1.0] * 4)


def test_deeper_filters_per_slice_and_per_layer():
    model = net()
    with torch.no_grad():
        model[4].weight[0, 1] = 0.25  # a constant kernel slice
    per_slice = filters(model, "4", normalize="slice")
    assert per_slice.shape == (5, 4, 3, 3)
    assert (per_slice[0, 1] == 0.5).all()
    assert per_slice[1, 2].min() == 0 and per_slice[1, 2].max() == pytest.approx(1.0)
    whole = filters(model, "4", normalize="layer")
    weight = model[4].weight.detach()
    torch.testing.assert_close(whole, (weight - weight.min()) / (weight.max() - weight.min()))


def test_filters_of_a_non_conv_layer_name_the_conv_layers():
    with pytest.raises(ValueError, match=r"'8' is a Linear, not an nn.Conv2d.*conv layers are: 0, 4"):
        filters(net(), "8")
    with pytest.raises(ValueError, match="normalize must be one of"):
        filters(net(), "0", normalize="global")
