"""course_lib.models against torchvision (VGG configs, parameter counts, state dicts and
outputs), published parameter counts, plain functional ops, and the backbone manifest."""

import json
import shutil
import sys
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from course_lib import data, models, train
from course_lib.device import strict_numerics

PUBLISHED_PARAMS = {"vgg11": 132_863_336, "vgg16": 138_357_544}  # torchvision model docs




def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- SmallCNN --------------------------------------------------------------------------


def _functional_small_cnn(model, x):
    """The same network written with torch.nn.functional, reading the model's weights."""
    for block in model.features:
        conv = block[0]
        x = F.conv2d(x, conv.weight, conv.bias, padding=1)
        if isinstance(block[1], nn.BatchNorm2d):
            bn = block[1]
            x = F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False, eps=bn.eps)
        x = F.max_pool2d(F.relu(x), 2)
    return F.linear(x.flatten(1), model.head[-1].weight, model.head[-1].bias)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_small_cnn_equals_its_functional_definition(batch_norm, device):
    torch.manual_seed(0)
    model = models.SmallCNN(batch_norm=batch_norm, channels=(8, 16, 32)).to(device).eval()
    if batch_norm:
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    x = torch.rand(4, 1, 28, 28, device=device)
    with torch.no_grad(), strict_numerics():  # no TF32 on GPUs
        torch.testing.assert_close(model(x), _functional_small_cnn(model, x))
    assert len(model.features) == 3 and all(isinstance(b, nn.Sequential) for b in model.features)
    assert model.feature_dim == 32 * 3 * 3  # 28 -> 14 -> 7 -> 3


def test_small_cnn_parameter_count_matches_the_conv_formula():
    from course_lib.arithmetic import conv_params, linear_params

    model = models.SmallCNN(in_channels=3, num_classes=7, channels=(16, 32), input_size=32, dropout=0.3)
    expected = conv_params(3, 16, 3) + conv_params(16, 32, 3) + linear_params(32 * 8 * 8, 7)
    assert _count(model) == expected
    assert isinstance(model.head[1], nn.Dropout) and model.head[1].p == 0.3


def test_removing_the_last_fc_layer_gives_the_embedding():
    torch.manual_seed(0)
    model = models.SmallCNN().eval()
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        embedding = model.embed(x)
        model.head[-1] = nn.Identity()
        assert embedding.shape == (5, model.feature_dim)
        torch.testing.assert_close(model(x), embedding)


def test_small_cnn_rejects_wrong_shapes_with_a_clear_message():
    model = models.SmallCNN()
    with pytest.raises(ValueError, match=r"SmallCNN expects \(N, 1, 28, 28\) images, got \(N, 3, 32, 32\)"):
        model(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="unsqueeze"):
        model(torch.zeros(1, 28, 28))
    with pytest.raises(ValueError, match="too small"):
        models.SmallCNN(input_size=4, channels=(8, 8, 8))


# --- VGG ---------------------------------------------------------------------------------


def test_vgg_configs_are_torchvisions():
    from torchvision.models.vgg import cfgs

    assert models.VGG_CONFIGS == {"vgg11": cfgs["A"], "vgg13": cfgs["B"], "vgg16": cfgs["D"], "vgg19": cfgs["E"]}


@pytest.mark.parametrize("name", ["vgg11", "vgg13", "vgg16", "vgg19"])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_vgg_state_dict_shapes_and_counts_equal_torchvision(name, batch_norm):
    import torchvision.models as tvm

    with torch.device("meta"):  # no memory, no init cost
        ours = models.vgg_style(models.VGG_CONFIGS[name], batch_norm=batch_norm)
        reference = tvm.get_model(name + ("_bn" if batch_norm else ""), weights=None)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}
    assert _count(ours) == _count(reference)
    if name in PUBLISHED_PARAMS and not batch_norm:
        assert _count(ours) == PUBLISHED_PARAMS[name]


def test_vgg_features_compute_what_torchvision_computes():
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    reference = make_layers(cfgs["A"], batch_norm=True).eval()
    for module in reference.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_var.uniform_(0.5, 2.0)
    ours = models.vgg_layers(models.VGG_CONFIGS["vgg11"], batch_norm=True).eval()
    ours.load_state_dict(reference.state_dict())
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x))


def test_small_vgg_for_small_inputs():
    model = models.vgg_style([8, "M", 16, "M"], in_channels=1, num_classes=10, hidden=32, pool_size=2)
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    with pytest.raises(ValueError, match="unknown VGG config"):
        models.vgg_style("vgg12")
    with pytest.raises(ValueError, match="'M'"):
        models.vgg_style([64, "X"])


@pytest.mark.slow
def test_full_vgg11_output_equals_torchvision_with_the_same_weights():
    import torchvision.models as tvm

    torch.manual_seed(0)
    reference = tvm.vgg11().eval()
    ours = models.vgg_style("vgg11").eval()
    ours.load_state_dict(reference.state_dict())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x))


# --- the bundled backbone --------------------------------------------------------------


def test_backbone_weights_match_the_manifest_and_reach_its_heldout_accuracy():
    manifest = models.backbone_manifest()
    assert models.file_sha256(models.BACKBONE_DIR / manifest["file"]) == manifest["sha256"]
    for key in ("data", "classes", "seed", "epochs", "heldout_accuracy", "torch_version", "date"):
        assert key in manifest
    model = models.pretrained_backbone()
    assert not model.training and isinstance(model, models.SmallCNN)
    heldout = data.mnist_transfer_split(seed=manifest["seed"])["heldout"]
    _, accuracy = train.evaluate(model, DataLoader(heldout, batch_size=512))
    assert accuracy >= 0.97
    assert abs(accuracy - manifest["heldout_accuracy"]) <= 1 / len(heldout)


def test_backbone_split_is_the_one_recorded_in_the_manifest():
    import hashlib

    split = models.backbone_manifest()["split"]
    indices = data.mnist_transfer_indices(seed=models.backbone_manifest()["seed"])
    for part in ("pretrain", "heldout"):
        digest = hashlib.sha256(indices[part].astype("<i8").tobytes()).hexdigest()
        assert digest == split[f"{part}_indices_sha256"], f"the {part} split changed since the backbone was trained"
        assert len(indices[part]) == split[f"{part}_size"]


def test_corrupt_backbone_fails_with_both_hashes_and_the_fix(tmp_path):
    shutil.copytree(models.BACKBONE_DIR, tmp_path, dirs_exist_ok=True)
    weights = tmp_path / models.BACKBONE_FILE
    weights.write_bytes(weights.read_bytes() + b"x")
    expected = json.loads((tmp_path / "manifest.json").read_text())["sha256"]
    with pytest.raises(ValueError) as error:
        models.pretrained_backbone(directory=tmp_path)
    message = str(error.value)
    assert expected in message and models.file_sha256(weights) in message and "pretrain_backbone.py" in message


def test_backbone_loads_onto_the_requested_device(device):
    model = models.pretrained_backbone(map_location=device)
    assert all(p.device.type == device.type for p in model.parameters())
    x = data.load_mnist("test")[0][0].unsqueeze(0).to(device)  # a 7, outside digits 0-4
    assert model(x).shape == (1, 5)


# --- torchvision and Hugging Face loaders ---------------------------------------------


def test_load_torchvision_without_weights_works_offline(no_network):
    model = models.load_torchvision("resnet18", weights=None)
    assert not model.training
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 1000)


def test_load_torchvision_offline_raises_our_error_quickly(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(data.DownloadError) as error:
        models.load_torchvision("resnet18")
    assert time.perf_counter() - start < 10
    message = str(error.value)
    assert "resnet18-f37072fd.pth" in message and str(tmp_path / "hub" / "checkpoints") in message
    assert "weights=None" in message


def test_load_torchvision_download_failure_inside_torch_hub_is_reported(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(models, "network_reachable", lambda url, timeout=0: True)
    with pytest.raises(data.DownloadError, match="URLError"):
        models.load_torchvision("resnet18", weights="IMAGENET1K_V1")


def test_load_torchvision_uses_cached_weights_offline(tmp_path, monkeypatch, no_network):
    import torchvision.models as tvm

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.manual_seed(0)
    saved = tvm.resnet18().state_dict()
    torch.save(saved, checkpoints / "resnet18-f37072fd.pth")
    model = models.load_torchvision("resnet18")
    torch.testing.assert_close(model.state_dict()["fc.weight"], saved["fc.weight"])


def test_load_torchvision_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown torchvision model"):
        models.load_torchvision("resnet19")
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        models.load_torchvision("resnet18", weights="IMAGENET9K")


def test_imagenet_classes_are_torchvisions():
    classes = models.imagenet_classes()
    assert len(classes) == 1000 and classes[0] == "tench" and classes[281] == "tabby"


def test_load_hf_without_timm_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # makes `import timm` fail
    with pytest.raises(ModuleNotFoundError, match="pip install timm"):
        models.load_hf("timm/resnet18.a1_in1k")
