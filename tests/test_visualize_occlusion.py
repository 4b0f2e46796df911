"""Occlusion against captum's Occlusion (the oracle), and on a model that detects a planted patch."""

import math

import pytest
import torch
from torch import nn

from course_lib.visualize import occlusion_map, occlusion_probability, window_starts

captum_attr = pytest.importorskip("captum.attr")


def small_cnn(channels=3, classes=5, seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(channels, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, classes),
    )
    with torch.no_grad():  # non-trivial batch-norm statistics, and logits of order 1-10
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
        model[-1].weight.mul_(20)
    return model.double()


SETTINGS = [
    # (image shape, window, stride, baseline)
    ((3, 12, 12), (3, 3, 3), (3, 3, 3), 0.0),       # tiles exactly
    ((3, 11, 13), (3, 4, 5), (3, 3, 4), 0.0),       # overlapping, last windows cut
    ((3, 11, 13), (1, 4, 5), (1, 3, 4), 0.5),       # one channel at a time
    ((3, 10, 9), (2, 3, 3), (1, 2, 2), -1.0),       # channel windows overlap too
    ((3, 9, 10), (3, 9, 1), 1, 0.25),               # full-height columns, int stride
    ((1, 14, 10), (1, 5, 3), (1, 5, 3), 0.0),       # grey image, 14 = 5 + 5 + 4 (cut)
]


@pytest.mark.parametrize("shape,window,stride,baseline", SETTINGS)
def test_occlusion_map_equals_captum(device, shape, window, stride, baseline):
    model = small_cnn(channels=shape[0]).to(device).eval()
    image = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).to(device)
    ours = occlusion_map(model, image, target=2, window=window, stride=stride, baseline=baseline, batch_size=7)
    theirs = captum_attr.Occlusion(model).attribute(
        image[None], sliding_window_shapes=window, strides=stride, baselines=baseline, target=2,
        perturbations_per_eval=16,
    )[0]
    assert ours.shape == image.shape and ours.dtype == torch.float64
    assert theirs.abs().max() > 0.05, "the check needs attributions well above the tolerance"
    torch.testing.assert_close(ours, theirs.to(ours.dtype), atol=1e-5, rtol=1e-5)


def test_tensor_baseline_and_batched_image_equal_captum(device):
    model = small_cnn().to(device).eval()
    generator = torch.Generator().manual_seed(2)
    image = torch.randn(1, 3, 10, 11, dtype=torch.float64, generator=generator).to(device)
    baseline = torch.randn(1, 3, 10, 11, dtype=torch.float64, generator=generator).to(device)
    ours = occlusion_map(model, image, 4, (3, 3, 4), (3, 2, 3), baseline=baseline)
    theirs = captum_attr.Occlusion(model).attribute(
        image, sliding_window_shapes=(3, 3, 4), strides=(3, 2, 3), baselines=baseline, target=4,
        perturbations_per_eval=64,
    )
    assert ours.shape == (1, 3, 10, 11)
    torch.testing.assert_close(ours, theirs.to(ours.dtype), atol=1e-5, rtol=1e-5)


def test_batch_size_does_not_change_the_map():
    model = small_cnn().eval()
    image = torch.randn(3, 9, 9, dtype=torch.float64)
    maps = [occlusion_map(model, image, 0, (3, 3, 3), (3, 2, 2), batch_size=b) for b in (1, 5, 1000)]
    torch.testing.assert_close(maps[0], maps[1])
    torch.testing.assert_close(maps[0], maps[2])


@pytest.mark.parametrize("size,window,stride,expected", [
    (12, 3, 3, [0, 3, 6, 9]), (13, 5, 4, [0, 4, 8]), (14, 5, 4, [0, 4, 8, 12]), (5, 5, 1, [0]), (10, 4, 4, [0, 4, 8]),
])
def test_window_starts_follow_captum(size, window, stride, expected):
    assert window_starts(size, window, stride) == expected
    assert len(expected) == math.ceil((size - window) / stride) + 1


def test_model_is_left_in_eval_mode():
    model = small_cnn().train()
    with_dropout = nn.Sequential(nn.Dropout(0.5), model).train()
    image = torch.randn(3, 8, 8, dtype=torch.float64)
    occlusion_map(with_dropout, image, 0, (3, 4, 4), (3, 4, 4))
    assert not any(m.training for m in with_dropout.modules())
    with_dropout.train()
    occlusion_probability(with_dropout, image, 0, (4, 4), (4, 4))
    assert not any(m.training for m in with_dropout.modules())


# -- the slides' picture: a planted patch ----------------------------------------------------


PATCH = (slice(8, 12), slice(4, 8))  # a 4x4 bright square, rows 8-11, cols 4-7


def patch_detector():
    """Class 0's logit is 2 (m - 15.5) where m is the largest 4x4 window sum, so only the
    complete square (m = 16) makes class 0 likely; class 1's logit is 0."""
    conv = nn.Conv2d(1, 1, 4, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    head = nn.Linear(1, 2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[2.0], [0.0]]))
        head.bias.copy_(torch.tensor([-31.0, 0.0]))
    return nn.Sequential(conv, nn.AdaptiveMaxPool2d(1), nn.Flatten(), head).double()


@pytest.mark.parametrize("window,stride", [((3, 3), (2, 2)), ((5, 4), (3, 3)), ((1, 3, 3), (1, 1, 1))])
def test_probability_drops_exactly_where_the_patch_is(device, window, stride):
    image = torch.zeros(1, 20, 16, dtype=torch.float64)
    image[(0, *PATCH)] = 1.0
    model = patch_detector().to(device)
    grid = occlusion_probability(model, image.to(device), 0, window, stride).cpu()
    h, w = window[-2:]
    sh, sw = stride[-2:]
    rows, cols = window_starts(20, h, sh), window_starts(16, w, sw)
    assert grid.shape == (len(rows), len(cols))
    clear = torch.sigmoid(torch.tensor(1.0, dtype=torch.float64))  # softmax of (1, 0)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            hides_patch = r < PATCH[0].stop and r + h > PATCH[0].start and c < PATCH[1].stop and c + w > PATCH[1].start
            if hides_patch:
                assert grid[i, j] < 0.5, (i, j)
            else:
                assert grid[i, j] == pytest.approx(clear.item(), abs=1e-12), (i, j)


def test_occlusion_map_is_positive_on_the_patch_only():
    image = torch.zeros(1, 20, 16, dtype=torch.float64)
    image[(0, *PATCH)] = 1.0
    attribution = occlusion_map(patch_detector(), image, 0, (1, 2, 2), (1, 2, 2))[0]
    inside = torch.zeros(20, 16, dtype=torch.bool)
    inside[PATCH] = True
    assert (attribution[inside] > 0).all()
    assert (attribution[~inside] == 0).all()


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,message", [
    (dict(window=(3, 9, 3), stride=(3, 1, 1)), "larger than the image"),
    (dict(window=(3, 3, 3), stride=(3, 4, 1)), "exceeds the window"),
    (dict(window=(3, 3, 3), stride=(3, 1, 1), target=5), "target 5 is out of range"),
    (dict(window=(3, 3, 3), stride=(3, 1, 1), target=-1), "out of range"),
    (dict(window=(3, 3), stride=(0, 1)), ">= 1"),
    (dict(window=3, stride=1), "tuple"),
    (dict(window=(3, 3, 3), stride=1, baseline=torch.zeros(2, 8, 8)), "does not broadcast"),
])
def test_bad_arguments_are_clear_value_errors(kwargs, message):
    model = small_cnn().eval()
    arguments = dict(target=1, baseline=0.0) | kwargs
    with pytest.raises(ValueError, match=message):
        occlusion_map(model, torch.randn(3, 8, 8, dtype=torch.float64), **arguments)


def test_batches_of_images_are_refused():
    model = small_cnn().eval()
    with pytest.raises(ValueError, match="one image at a time"):
        occlusion_map(model, torch.randn(2, 3, 8, 8, dtype=torch.float64), 0, (3, 2, 2), (3, 2, 2))
    with pytest.raises(ValueError, match="occludes all 3 channels"):
        occlusion_probability(model, torch.randn(3, 8, 8, dtype=torch.float64), 0, (1, 2, 2), (1, 2, 2))
