"""conv arithmetic against PyTorch modules, torchvision's published figures and FlopCounterMode."""

import pytest
import torch
import torchvision.models as tvm
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course_lib.arithmetic import (
    conv_output_size,
    conv_params,
    linear_params,
    receptive_field,
    summarize,
)

# torchvision's model cards: "GFLOPS" is really GMACs at 224x224.
PUBLISHED_GMACS = {"resnet18": 1.81, "resnet50": 4.09, "vgg16": 15.47, "alexnet": 0.714}
MODELS = ["vgg16", "resnet18", "resnet50", "alexnet", "mobilenet_v2"]


@pytest.fixture(scope="module")
def summaries():
    out = {}
    for name in MODELS:
        model = getattr(tvm, name)(weights=None)
        out[name] = (model, summarize(model, (3, 224, 224)))
    return out


# -- conv_output_size -----------------------------------------------------------------------


@pytest.mark.parametrize("size,kernel,stride,padding,dilation", [
    ((90, 90), 3, 1, 1, 1), ((224, 224), 11, 4, 2, 1), ((13, 17), (3, 5), (2, 1), (0, 2), 1),
    ((31, 30), 3, 2, 1, 2), ((7, 9), (2, 3), (3, 2), (1, 1), (1, 3)), ((5, 5), 5, 1, 0, 1),
])
def test_conv_output_size_matches_pytorch(size, kernel, stride, padding, dilation):
    conv = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation)
    expected = tuple(conv(torch.zeros(1, 1, *size)).shape[2:])
    assert conv_output_size(size, kernel, stride, padding, dilation) == expected


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
@pytest.mark.parametrize("kernel,dilation", [(3, 1), (4, 1), (3, 2), (2, 3)])
def test_same_and_valid_padding_match_pytorch(kernel, dilation):
    for padding in ("same", "valid"):
        conv = nn.Conv2d(1, 1, kernel, padding=padding, dilation=dilation)
        expected = tuple(conv(torch.zeros(1, 1, 20, 15)).shape[2:])
        assert conv_output_size((20, 15), kernel, padding=padding, dilation=dilation) == expected


def test_int_in_int_out_and_pooling():
    assert conv_output_size(224, 2, stride=2) == 112
    assert isinstance(conv_output_size(224, 2, stride=2), int)
    pool = nn.MaxPool2d(3, stride=2, padding=1)
    assert conv_output_size((15, 16), 3, 2, 1) == tuple(pool(torch.zeros(1, 1, 15, 16)).shape[2:])


@pytest.mark.parametrize("kwargs,message", [
    (dict(size=4, kernel_size=7), "window spans 7"),
    (dict(size=10, kernel_size=3, stride=2, padding="same"), "stride 1"),
    (dict(size=10, kernel_size=3, stride=0), "stride must be >= 1"),
    (dict(size=10, kernel_size=3, padding=-1), "padding must be >= 0"),
    (dict(size=(10, 10), kernel_size=(3, 3, 3)), "one per dimension"),
    (dict(size=10, kernel_size=3, padding="full"), "'same' or 'valid'"),
])
def test_impossible_settings_name_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        conv_output_size(**kwargs)


# -- parameter counts -----------------------------------------------------------------------


def test_worked_example_from_the_slides():
    assert conv_output_size((90, 90), 3, stride=1, padding=1) == (90, 90)
    assert conv_params(10, 5, 3) == 455
    assert linear_params(90 * 90 * 10, 90 * 90 * 5) == 3_280_540_500
    conv = nn.Conv2d(10, 5, 3, padding=1)
    assert sum(p.numel() for p in conv.parameters()) == 455
    assert tuple(conv(torch.zeros(1, 10, 90, 90)).shape) == (1, 5, 90, 90)


@pytest.mark.parametrize("cin,cout,kernel,bias,groups", [
    (3, 64, 3, True, 1), (32, 32, 3, False, 32), (16, 24, (1, 5), True, 4), (8, 8, (3, 3, 3), True, 2),
])
def test_conv_params_match_modules(cin, cout, kernel, bias, groups):
    cls = nn.Conv3d if isinstance(kernel, tuple) and len(kernel) == 3 else nn.Conv2d
    module = cls(cin, cout, kernel, bias=bias, groups=groups)
    assert conv_params(cin, cout, kernel, bias=bias, groups=groups) == sum(p.numel() for p in module.parameters())


def test_linear_params_match_module():
    assert linear_params(300, 7, bias=False) == nn.Linear(300, 7, bias=False).weight.numel()
    assert linear_params(300, 7) == sum(p.numel() for p in nn.Linear(300, 7).parameters())


def test_conv_params_rejects_bad_groups():
    with pytest.raises(ValueError, match="groups=3 must divide"):
        conv_params(8, 8, 3, groups=3)


# -- summarize ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_summary_params_equal_torch(summaries, name):
    model, summary = summaries[name]
    assert summary.total_params == sum(p.numel() for p in model.parameters())
    assert summary.trainable_params == summary.total_params
    assert sum(row.params for row in summary.rows) == summary.total_params


@pytest.mark.parametrize("name", PUBLISHED_GMACS)
def test_summary_macs_match_torchvision_published(summaries, name):
    _, summary = summaries[name]
    assert summary.total_macs / 1e9 == pytest.approx(PUBLISHED_GMACS[name], rel=0.01)
    assert summary.total_flops == 2 * summary.total_macs


@pytest.mark.parametrize("name", MODELS)
def test_summary_flops_equal_flop_counter_mode(summaries, name):
    """PyTorch's own FlopCounterMode counts 2 FLOPs per multiply-accumulate of conv and matmul."""
    model, summary = summaries[name]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.zeros(1, 3, 224, 224))
    assert summary.total_flops == counter.get_total_flops()


def test_rows_are_leaf_modules_with_output_shapes(summaries):
    model, summary = summaries["vgg16"]
    leaves = [n for n, m in model.named_modules() if not list(m.children())]
    assert [row.name for row in summary.rows] == leaves
    first, last = summary.rows[0], summary.rows[-1]
    assert (first.type, first.output_shape, first.params) == ("Conv2d", (1, 64, 224, 224), 1792)
    assert first.macs == 224 * 224 * 64 * 3 * 9
    assert last.output_shape == (1, 1000)


def test_uncounted_lists_residual_additions_and_functional_ops(summaries):
    assert summaries["vgg16"][1].uncounted == []
    assert any("add_" in what and "x8" in what for what in summaries["resnet18"][1].uncounted)
    assert any("adaptive_avg_pool2d" in what for what in summaries["mobilenet_v2"][1].uncounted)


def test_unknown_modules_and_functional_matmuls_are_listed_not_zeroed():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(4, 12))

        def forward(self, x):
            return nn.functional.linear(x.flatten(1), self.w)

    model = nn.Sequential(nn.Conv2d(3, 3, 1), Custom())
    summary = summarize(model, (3, 2, 2))
    assert any("Custom" in what and "unknown module type" in what for what in summary.uncounted)
    assert summary.total_params == 3 * 3 + 3 + 48


def test_summary_table_is_readable(summaries):
    text = str(summaries["vgg16"][1])
    assert "features.0" in text and "Conv2d" in text and "138,357,544" in text
    assert "15.470 G" in text


def test_summary_restores_training_mode():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)).train()
    before = model[1].running_mean.clone()
    summarize(model, (1, 8, 8))
    assert model.training and torch.equal(model[1].running_mean, before)


# -- receptive fields -----------------------------------------------------------------------


def test_published_receptive_fields():
    assert receptive_field(tvm.vgg16(), (3, 224, 224))["features.30"].size == (212, 212)
    assert receptive_field(tvm.alexnet(), (3, 224, 224))["features.12"].size == (195, 195)
    resnet = receptive_field(tvm.resnet18(), (3, 224, 224))
    assert resnet["layer4.1.conv2"].size == (435, 435) and resnet["layer4.1.conv2"].stride == (32, 32)
    assert resnet["fc"].field.is_global


def _brute_force_field(model, size, position):
    """Input pixels whose gradient reaches one output unit (an oracle by autograd).

    Average pooling, not max pooling, so that every pixel of a window gets gradient."""
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    model(x)[0, 0, position[0], position[1]].backward()
    rows, cols = torch.nonzero(x.grad[0, 0].abs() > 0, as_tuple=True)
    return (rows.min().item(), rows.max().item() + 1), (cols.min().item(), cols.max().item() + 1)


@pytest.mark.parametrize("position", [(0, 0), (3, 2), (5, 5)])
def test_receptive_field_box_matches_autograd(position):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 1, 3, padding=1), nn.AvgPool2d(2), nn.Conv2d(1, 1, 5, padding=2),
        nn.Conv2d(1, 1, 3, stride=2, dilation=2, padding=2),
    )
    for m in model:  # positive weights so no gradient cancels by chance
        if isinstance(m, nn.Conv2d):
            nn.init.uniform_(m.weight, 0.5, 1.0)
    size = 24
    fields = receptive_field(model, (1, size, size))
    field = fields["3"].field
    assert field.box(position, (size, size)) == _brute_force_field(model, size, position)


def test_receptive_field_rows_track_jumps_and_starts():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, stride=2))
    fields = receptive_field(model, (3, 32, 32))
    assert [f.size for f in fields.values()] == [(3, 3), (3, 3), (4, 4), (8, 8)]  # r += (k - 1) * jump
    assert fields["3"].stride == (4, 4)
    assert fields["0"].start == (1.0, 1.0) and fields["2"].start == (1.5, 1.5)


def test_bad_input_size():
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        summarize(nn.Conv2d(1, 1, 1), (5,))
