"""Transfer learning: feature extraction, linear probes, freezing, LoRA (checked against peft)."""

import copy
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.transfer import (
    LoRAConv2d,
    LoRALinear,
    apply_lora,
    default_blocks,
    extract_features,
    freeze,
    freeze_bn,
    linear_probe,
    lora_layers,
    merge_lora,
    trainable_parameters,
    unfreeze_bn,
    unmerge_lora,
)

peft = pytest.importorskip("peft")


def randomize_b(layer, seed=0, std=0.5):
    """Give B non-zero weights so the LoRA update matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.lora_B.weight.copy_(torch.randn(layer.lora_B.weight.shape, generator=generator) * std)
    return layer


def peft_twin(layer, name="layer"):
    """peft's LoRA (get_peft_model) on a copy of `layer.base`, with `layer`'s A and B."""
    holder = nn.Sequential(OrderedDict([(name, copy.deepcopy(layer.base))]))
    config = peft.LoraConfig(r=layer.r, lora_alpha=layer.alpha, target_modules=[name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft warns that grouped convs cannot be merged
        model = peft.get_peft_model(holder, config)
    twin = getattr(model.base_model.model, name)
    with torch.no_grad():
        twin.lora_A["default"].weight.copy_(layer.lora_A.weight)
        twin.lora_B["default"].weight.copy_(layer.lora_B.weight)
    return model, twin


def x_like(shape, seed=1, dtype=torch.float64, device="cpu"):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype).to(device)


# conv configs: (in, out, kernel, stride, padding, dilation, groups, r)
CONV_CASES = [
    (4, 6, 3, 1, 1, 1, 1, 3),
    (4, 6, 3, 2, 1, 1, 1, 2),
    (6, 8, (3, 5), (2, 1), (1, 2), 1, 2, 4),
    (4, 4, 3, 1, 1, 1, 4, 4),  # depthwise
    (6, 6, 1, 1, 0, 1, 3, 3),  # 1x1 grouped
    (6, 8, 3, 2, 2, 2, 2, 4),  # dilation 2, stride 2, groups 2
    (3, 6, 3, 1, 3, 3, 1, 2),  # dilation 3
]
PEFT_CONV_CASES = [case for case in CONV_CASES if case[5] == 1]  # peft 0.21 drops dilation


def make_conv(in_, out, kernel, stride, padding, dilation, groups, r, alpha=6.0, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    base = nn.Conv2d(in_, out, kernel, stride, padding, dilation, groups).to(dtype)
    return LoRAConv2d(base, r, alpha)


def make_linear(in_=10, out=7, r=3, alpha=6.0, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return LoRALinear(nn.Linear(in_, out).to(dtype), r, alpha)


# --------------------------------------------------------------------------- LoRA layers


def test_lora_at_init_equals_base_exactly(device):
    linear = make_linear().to(device)
    x = x_like((5, 10), device=device)
    assert torch.equal(linear(x), linear.base(x))
    assert linear.lora_A.weight.abs().sum() > 0 and linear.lora_B.weight.abs().sum() == 0
    for case in CONV_CASES:
        conv = make_conv(*case).to(device)
        x = x_like((2, case[0], 11, 12), device=device)
        assert torch.equal(conv(x), conv.base(x)), case


def test_lora_init_of_a_follows_peft():
    """A is Kaiming-uniform(a=sqrt(5)): uniform on +-1/sqrt(fan_in), fan_in = in (* kh * kw)."""
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(400, 300), 50)
    bound = 1 / np.sqrt(400)
    weight = layer.lora_A.weight
    assert weight.abs().max() <= bound and weight.abs().max() > 0.95 * bound
    assert abs(weight.std().item() - bound / np.sqrt(3)) < 0.02 * bound


def test_linear_matches_peft():
    layer = randomize_b(make_linear())
    model, _ = peft_twin(layer)
    x = x_like((5, 10))
    assert not torch.allclose(layer(x), layer.base(x))
    torch.testing.assert_close(layer(x), model(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", PEFT_CONV_CASES, ids=str)
def test_conv_matches_peft_including_groups(case):
    layer = randomize_b(make_conv(*case))
    model, twin = peft_twin(layer)
    assert twin.lora_A["default"].weight.shape == layer.lora_A.weight.shape
    assert twin.lora_B["default"].weight.shape == layer.lora_B.weight.shape
    x = x_like((2, case[0], 11, 12))
    assert not torch.allclose(layer(x), layer.base(x))
    torch.testing.assert_close(layer(x), model(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", [c for c in CONV_CASES if c[5] > 1], ids=str)
def test_dilated_conv_matches_peft_with_dilation_passed_to_a(case):
    """peft 0.21 builds A without dilation (peft issue #3697); with it fixed, outputs agree."""
    layer = randomize_b(make_conv(*case))
    model, twin = peft_twin(layer)
    old = twin.lora_A["default"]
    fixed = nn.Conv2d(old.in_channels, old.out_channels, old.kernel_size, old.stride, old.padding,
                      dilation=layer.base.dilation, bias=False).double()
    with torch.no_grad():
        fixed.weight.copy_(layer.lora_A.weight)
    twin.lora_A["default"] = fixed
    x = x_like((2, case[0], 13, 12))
    torch.testing.assert_close(layer(x), model(x), rtol=0, atol=1e-12)


def test_trainable_parameter_counts_match_formula_and_peft():
    layer = make_linear(10, 7, r=3)
    assert trainable_parameters(layer) == 3 * (10 + 7)
    assert trainable_parameters(layer) == peft_twin(layer)[0].get_nb_trainable_parameters()[0]
    for in_, out, kernel, stride, padding, dilation, groups, r in CONV_CASES:
        layer = make_conv(in_, out, kernel, stride, padding, dilation, groups, r)
        kh, kw = layer.base.kernel_size
        formula = r * in_ * kh * kw + out * r // groups
        assert trainable_parameters(layer) == formula
        if dilation == 1:
            assert formula == peft_twin(layer)[0].get_nb_trainable_parameters()[0]
        assert not any(p.requires_grad for p in layer.base.parameters())


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_merge_and_unmerge_agree(dtype, tol):
    layers = [(make_linear(dtype=dtype), (5, 10))]
    layers += [(make_conv(*case, dtype=dtype), (2, case[0], 13, 12)) for case in CONV_CASES]
    for layer, shape in layers:
        randomize_b(layer)
        original = layer.base.weight.detach().clone()
        groups = getattr(layer.base, "groups", None)
        x = x_like(shape, dtype=dtype)
        with torch.no_grad():
            unmerged, plain = layer(x), layer.base(x)
            layer.merge()
            merged = layer(x)
            layer.lora_B.weight.zero_()  # a merged layer no longer reads A and B ...
            assert torch.equal(layer(x), merged)
            randomize_b(layer)  # ... put B back before unmerging
            layer.unmerge()
            again = layer(x)
        assert (unmerged - plain).abs().max() > 0.1  # the update is not negligible
        torch.testing.assert_close(merged, unmerged, rtol=0, atol=tol)
        torch.testing.assert_close(again, unmerged, rtol=0, atol=tol)
        assert layer.base.weight.shape == original.shape and getattr(layer.base, "groups", None) == groups
        torch.testing.assert_close(layer.base.weight, original, rtol=0, atol=tol)


def test_conv_delta_weight_is_the_dense_kernel_of_b_after_a():
    """Oracle: the dense conv with `delta_weight` equals (alpha / r) B(A(x)), groups included."""
    for in_, out, kernel, stride, padding, dilation, groups, r in CONV_CASES:
        layer = randomize_b(make_conv(in_, out, kernel, stride, padding, dilation, groups, r))
        x = x_like((2, in_, 13, 12))
        delta = layer.delta_weight()
        assert delta.shape == (out, in_, *layer.base.kernel_size)
        with torch.no_grad():
            expected = layer.lora_B(layer.lora_A(x)) * layer.scaling
            got = F.conv2d(x, delta, None, stride, padding, dilation)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("options", [dict(padding="same", dilation=2), dict(padding=2, padding_mode="reflect")])
def test_conv_follows_the_base_padding(options):
    """A copies the base's padding and padding_mode (peft 0.21 zero-pads A whatever the base does)."""
    torch.manual_seed(0)
    layer = randomize_b(LoRAConv2d(nn.Conv2d(4, 6, 3, groups=2, **options).double(), 2, 3))
    assert layer.lora_A.padding == layer.base.padding
    assert layer.lora_A.padding_mode == layer.base.padding_mode
    x = x_like((2, 4, 9, 9))
    dense = nn.Conv2d(4, 6, 3, bias=False, **options).double()  # groups=1, base padding
    with torch.no_grad():
        dense.weight.copy_(layer.delta_weight())
        unmerged = layer(x)
        expected = layer.base(x) + dense(x)
        layer.merge()
        merged = layer(x)
    torch.testing.assert_close(merged, unmerged, rtol=0, atol=1e-12)
    torch.testing.assert_close(expected, unmerged, rtol=0, atol=1e-12)


def test_merge_is_idempotent():
    layer = randomize_b(make_linear())
    x = x_like((3, 10))
    with torch.no_grad():
        before = layer(x)
        layer.merge()
        layer.merge()
        torch.testing.assert_close(layer(x), before, rtol=0, atol=1e-12)
        layer.unmerge()
        layer.unmerge()
        torch.testing.assert_close(layer(x), before, rtol=0, atol=1e-12)


def test_gradients_reach_only_a_and_b():
    layer = randomize_b(make_conv(6, 8, 3, 2, 2, 2, 2, 4))
    layer(x_like((2, 6, 9, 9))).square().sum().backward()
    assert layer.lora_A.weight.grad is not None and layer.lora_B.weight.grad is not None
    assert layer.base.weight.grad is None and layer.base.bias.grad is None


def test_invalid_ranks_name_the_limit():
    with pytest.raises(ValueError, match=r"r=0 is outside 1\.\.7.*min\(in_features, out_features\) = 7"):
        LoRALinear(nn.Linear(10, 7), 0)
    with pytest.raises(ValueError, match=r"r=8 is outside 1\.\.7"):
        LoRALinear(nn.Linear(10, 7), 8)
    LoRALinear(nn.Linear(10, 7), 7)
    with pytest.raises(ValueError, match=r"r=17 .*min\(out_channels, in_channels \* kh \* kw\) = 16"):
        LoRAConv2d(nn.Conv2d(3, 16, 3), 17)
    LoRAConv2d(nn.Conv2d(3, 16, 3), 16)
    with pytest.raises(ValueError, match=r"r=3 is outside 1\.\.2"):
        LoRAConv2d(nn.Conv2d(2, 32, 1), 3)
    with pytest.raises(ValueError, match="r=2 is not a multiple of groups=4.*choose r in 4, 8"):
        LoRAConv2d(nn.Conv2d(4, 8, 3, groups=4), 2)
    with pytest.raises(TypeError, match="wraps an nn.Linear"):
        LoRALinear(nn.Conv2d(3, 4, 3), 2)


# --------------------------------------------------------------------------- apply_lora


class Net(nn.Module):
    """features = Sequential of blocks, head with a Linear named fc (like course SmallCNN)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()),
            nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.ReLU()),
            nn.MaxPool2d(2),
            nn.Sequential(nn.Conv2d(8, 12, 3, padding=2, dilation=2), nn.ReLU()),
        )
        self.head = nn.Sequential(OrderedDict(
            pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(), fc=nn.Linear(12, 5)
        ))

    def forward(self, x):
        return self.head(self.features(x))


def make_net(seed=0):
    torch.manual_seed(seed)
    return Net().double().eval()


def test_apply_lora_by_name_and_type():
    model = make_net()
    original = copy.deepcopy(model)
    apply_lora(model, 2, alpha=4, target_modules=["fc", "features.1.0"])
    assert set(lora_layers(model)) == {"head.fc", "features.1.0"}
    assert isinstance(model.head.fc, LoRALinear) and isinstance(model.features[1][0], LoRAConv2d)
    x = x_like((2, 3, 12, 12))
    assert torch.equal(model(x), original(x))
    expected = 2 * (12 + 5) + (2 * 8 * 9 + 8 * 2 // 2)
    assert trainable_parameters(model) == expected
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(".lora_A." in n or ".lora_B." in n for n in trainable) and len(trainable) == 4
    apply_lora(model, 2, target_modules=nn.Conv2d)  # the rest of the convs; no double wrapping
    assert set(lora_layers(model)) == {"head.fc", "features.0.0", "features.1.0", "features.3.0"}
    assert isinstance(model.features[1][0].base, nn.Conv2d)


@pytest.mark.filterwarnings("ignore:LoRA adapter added to ConvNd layer with groups")
def test_apply_lora_matches_peft_on_a_whole_model():
    model = make_net()
    targets = ["fc", "features.0.0", "features.1.0"]  # dilated features.3.0 left out (peft)
    peft_model = peft.get_peft_model(
        copy.deepcopy(model), peft.LoraConfig(r=2, lora_alpha=3, target_modules=targets)
    )
    apply_lora(model, 2, alpha=3, target_modules=targets)
    peft_inner = peft_model.base_model.model
    for seed, (name, layer) in enumerate(lora_layers(model).items()):
        randomize_b(layer, seed=seed)
        twin = peft_inner.get_submodule(name)
        with torch.no_grad():
            twin.lora_A["default"].weight.copy_(layer.lora_A.weight)
            twin.lora_B["default"].weight.copy_(layer.lora_B.weight)
    x = x_like((2, 3, 12, 12))
    torch.testing.assert_close(model(x), peft_model(x), rtol=0, atol=1e-12)
    assert trainable_parameters(model) == peft_model.get_nb_trainable_parameters()[0]
    with torch.no_grad():
        before = model(x)
        merge_lora(model)
        torch.testing.assert_close(model(x), before, rtol=0, atol=1e-12)
        unmerge_lora(model)
        torch.testing.assert_close(model(x), before, rtol=0, atol=1e-12)


def test_apply_lora_errors():
    with pytest.raises(ValueError, match="target 'fc2' matches no module; Linear/Conv2d modules are: .*head.fc"):
        apply_lora(make_net(), 2, target_modules=["fc2"])
    with pytest.raises(ValueError, match=r"matched features \(Sequential\).*nn.Linear and nn.Conv2d only"):
        apply_lora(make_net(), 2, target_modules="features")
    with pytest.raises(ValueError, match="features.1.0: LoRA rank r=3 is not a multiple of groups=2"):
        apply_lora(make_net(), 3, target_modules=nn.Conv2d)
    with pytest.raises(ValueError, match="no module matched"):
        apply_lora(nn.Sequential(nn.ReLU()), 2)


# --------------------------------------------------------------------------- freezing


def trainable_names(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_default_blocks_skip_parameter_free_children():
    names = [name for name, _ in default_blocks(make_net())]
    assert names == ["features.0", "features.1", "features.3", "head"]
    plain = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2, 3))
    assert [name for name, _ in default_blocks(plain)] == ["0", "3"]


def test_freeze_train_last_k_leaves_exactly_those_trainable():
    model = make_net()
    every = {n for n, _ in model.named_parameters()}
    assert freeze(model, train_last=2) == ["features.3", "head"]
    assert trainable_names(model) == {n for n in every if n.startswith(("features.3.", "head."))}
    assert freeze(model, train_last=0) == [] and trainable_names(model) == set()
    freeze(model, train_last=4)
    assert trainable_names(model) == every
    freeze(model, train_last=1)
    assert trainable_names(model) == {"head.fc.weight", "head.fc.bias"}
    assert trainable_parameters(model) == 12 * 5 + 5


def test_freeze_with_explicit_blocks_and_bad_k():
    model = make_net()
    assert freeze(model, 1, blocks=[model.features[0], model.features[1][0]]) == ["features.1.0"]
    assert trainable_names(model) == {"features.1.0.weight", "features.1.0.bias"}
    with pytest.raises(ValueError, match=r"train_last=5 but the model has 4 blocks .*0 <= train_last <= 4"):
        freeze(model, 5)
    with pytest.raises(ValueError, match="not submodules"):
        freeze(model, 1, blocks=[nn.Linear(2, 2)])


def bn_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))


def bn_state(model):
    bn = model[1]
    return bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()


def test_freeze_bn_keeps_running_stats_after_train():
    model = bn_net()
    x = x_like((8, 3, 6, 6), dtype=torch.float32) * 3 + 2
    model(x)  # materialize the lazy layer; updates the stats once
    before = bn_state(model)
    assert freeze_bn(model) == 1
    assert freeze_bn(model) == 1 and len(model[1]._forward_pre_hooks) == 1
    model.train()
    for seed in range(3):
        out = model(x_like((8, 3, 6, 6), seed=seed, dtype=torch.float32) * 3 + 2)
    for got, expected in zip(bn_state(model), before):
        assert torch.equal(got, expected)
    with torch.no_grad():  # normalizes with the running statistics, as in eval mode
        train_out = model(x)
        model.eval()
        torch.testing.assert_close(train_out, model(x))
    out.sum().backward()  # the affine parameters still learn
    assert model[1].weight.grad is not None
    copied = copy.deepcopy(model).train()  # the freeze survives a copy
    copied(x)
    assert torch.equal(copied[1].running_mean, before[0])
    assert unfreeze_bn(model) == 1
    model.train()
    model(x)
    assert not torch.equal(bn_state(model)[0], before[0])


def test_without_freeze_bn_running_stats_drift():
    model = bn_net()
    x = x_like((8, 3, 6, 6), dtype=torch.float32) * 3 + 2
    model(x)
    before = bn_state(model)
    model.train()
    model(x)
    assert not torch.equal(bn_state(model)[0], before[0])


# --------------------------------------------------------------------------- features


def feature_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(16, 6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 3),
    ).double()


def test_extract_features_is_the_input_of_the_last_linear(device):
    model = feature_net().to(device).train()
    x, y = x_like((10, 1, 8, 8)), torch.arange(10) % 3
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    running_mean = model[1].running_mean.clone()
    features, labels = extract_features(model, loader)
    assert features.shape == (10, 6) and features.device.type == "cpu"
    assert torch.equal(labels, y)
    assert model.training and all(m.training for m in model.modules())
    assert torch.equal(model[1].running_mean, running_mean)
    with torch.no_grad():
        expected = copy.deepcopy(model).eval()[:-1](x.to(device))  # dropout is the identity in eval
    torch.testing.assert_close(features, expected.cpu())
    pooled, _ = extract_features(model, loader, layer="3")
    with torch.no_grad():
        expected = copy.deepcopy(model).eval()[:4](x.to(device)).flatten(1)
    torch.testing.assert_close(pooled, expected.cpu())


def test_extract_features_sees_through_lora():
    model = feature_net().eval()
    x, y = x_like((6, 1, 8, 8)), torch.arange(6)
    loader = DataLoader(TensorDataset(x, y), batch_size=6)
    before, _ = extract_features(model, loader)
    apply_lora(model, 2, target_modules=nn.Linear)  # the last Linear is now a LoRALinear
    after, _ = extract_features(model, loader)
    assert after.shape == (6, 6)
    torch.testing.assert_close(after, before, rtol=0, atol=0)


def test_extract_features_errors():
    loader = [(torch.zeros(2, 1, 8, 8, dtype=torch.float64), torch.zeros(2))]
    with pytest.raises(ValueError, match="no module named 'fc'.*choose one of: 0, 1"):
        extract_features(feature_net(), loader, layer="fc")
    with pytest.raises(ValueError, match="no nn.Linear"):
        extract_features(nn.Sequential(nn.Conv2d(1, 2, 3)).double(), loader)
    with pytest.raises(ValueError, match=r"\(inputs, labels\)"):
        extract_features(feature_net(), [torch.zeros(2, 1, 8, 8, dtype=torch.float64)])


def test_linear_probe_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[4.0, 0, 0, 0], [0, 4.0, 0, 0], [0, 0, 4.0, 0]]) * torch.tensor([1, 10, 100, 1])
    labels = torch.arange(90) % 3
    features = centres[labels] + torch.randn(90, 4, generator=generator) * torch.tensor([1, 10, 100, 1])
    result = linear_probe(features[:60], labels[:60], features[60:], labels[60:], C=0.5)
    scaler = StandardScaler().fit(features[:60].numpy())
    reference = LogisticRegression(C=0.5, max_iter=2000).fit(
        scaler.transform(features[:60].numpy()), labels[:60].numpy()
    )
    np.testing.assert_allclose(
        result.classifier.predict_proba(features[60:].numpy()),
        reference.predict_proba(scaler.transform(features[60:].numpy())),
        atol=1e-8,
    )
    expected = (reference.predict(scaler.transform(features[60:].numpy())) == labels[60:].numpy()).mean()
    assert result.test_accuracy == pytest.approx(expected) and result.test_accuracy > 0.9
    assert result.train_accuracy > 0.9
    assert linear_probe(features, labels).test_accuracy is None
    with pytest.raises(ValueError, match="both test_features and test_labels"):
        linear_probe(features, labels, features)
