"""Initialization schemes against torch.nn.init (same generator, same draws) and He et al. 2015."""

import math

import pytest
import torch
from torch import nn

from course_lib.initialization import SCHEMES, activation_stats, deep_mlp, fans, init_, init_weight_

TORCH_INIT = {
    "xavier_uniform": lambda w, g: nn.init.xavier_uniform_(w, generator=g),
    "xavier_normal": lambda w, g: nn.init.xavier_normal_(w, generator=g),
    "kaiming_uniform": lambda w, g: nn.init.kaiming_uniform_(w, nonlinearity="relu", generator=g),
    "kaiming_normal": lambda w, g: nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g),
    "normal": lambda w, g: nn.init.normal_(w, 0.0, 0.01, generator=g),
    "zero": lambda w, g: nn.init.zeros_(w),
}


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("shape", [(64, 32), (16, 8, 3, 3), (4, 2, 5)])
def test_schemes_draw_exactly_what_torch_nn_init_draws(scheme, shape, device):
    ours, theirs = torch.empty(shape, device=device), torch.empty(shape, device=device)
    init_weight_(ours, scheme, generator=torch.Generator(device=device).manual_seed(3))
    TORCH_INIT[scheme](theirs, torch.Generator(device=device).manual_seed(3))
    assert torch.equal(ours, theirs)


def test_fans_of_conv_and_linear():
    assert fans(torch.empty(10, 3)) == (3, 10)
    assert fans(torch.empty(16, 8, 3, 3)) == (72, 144)


def test_init_reaches_every_layer_and_zeroes_biases():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    init_(model, "kaiming_normal", generator=torch.Generator().manual_seed(0))
    assert all(torch.all(m.bias == 0) for m in (model[0], model[3]))
    std = model[0].weight.std().item()
    assert std == pytest.approx(math.sqrt(2 / 27), rel=0.2)


def test_zero_init_never_breaks_symmetry():
    """Every hidden unit of a layer stays identical to its neighbours through training."""
    torch.manual_seed(0)
    model = deep_mlp(depth=3, width=8, activation="tanh", in_features=5, out_features=3)
    init_(model, "zero")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = torch.randn(32, 5), torch.randint(0, 3, (32,))
    for _ in range(20):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    for name in ("fc1", "fc2", "fc3"):
        weight = getattr(model, name).weight
        assert torch.equal(weight, weight[:1].expand_as(weight)), f"{name}: hidden units differ"
    # a small random init does break it
    init_(model, "normal", std=0.1)
    assert not torch.equal(model.fc2.weight, model.fc2.weight[:1].expand_as(model.fc2.weight))


def test_he_init_keeps_activation_scale_while_xavier_shrinks_with_relu():
    """He et al. 2015: in a 20-layer ReLU network Xavier's activations vanish, He's do not."""
    x = torch.randn(512, 256, generator=torch.Generator().manual_seed(0))
    ratios = {}
    for scheme in ("kaiming_normal", "xavier_normal"):
        model = init_(deep_mlp(depth=20, width=256), scheme, generator=torch.Generator().manual_seed(1))
        stds = [s.std for s in activation_stats(model, x) if s.type == "ReLU"]
        ratios[scheme] = stds[-1] / stds[0]
    assert 0.5 <= ratios["kaiming_normal"] <= 2.0
    assert ratios["xavier_normal"] < 0.1


def test_activation_stats_match_a_manual_forward_and_remove_hooks():
    model = deep_mlp(depth=2, width=4, in_features=3)
    x = torch.randn(10, 3)
    stats = activation_stats(model, x, keep_values=True)
    assert [s.name for s in stats] == ["fc1", "act1", "fc2", "act2"]
    manual = model.act1(model.fc1(x))
    assert stats[1].mean == pytest.approx(manual.mean().item())
    assert stats[1].std == pytest.approx(manual.std().item())
    assert torch.equal(stats[1].values, manual.detach().flatten())
    assert all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("call,message", [
    (lambda: init_(nn.Linear(2, 2), "he"), "unknown init scheme 'he'"),
    (lambda: init_(nn.ReLU(), "zero"), "no Linear or Conv layer"),
    (lambda: init_(nn.Linear(2, 2), "kaiming_normal", nonlinearity="swish"), "unknown nonlinearity"),
    (lambda: deep_mlp(0, 4), "depth and width must be >= 1"),
    (lambda: deep_mlp(2, 4, activation="gelu"), "unknown activation"),
    (lambda: activation_stats(deep_mlp(2, 4), torch.zeros(1, 4), layers=["fc9"]), "no layer named"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
