"""Augmentation pipelines and test-time augmentation, checked against torchvision."""

import io

import pytest
import torch
from torch import nn
from torchvision.transforms import v2

from course_lib.augment import (
    DEFAULT_SCALES,
    PIPELINES,
    augment_grid,
    pipeline,
    plot_augment_grid,
    tta_predict,
    tta_views,
)


def small_net(channels=3, classes=5, seed=0, flip_invariant=False):
    """Conv -> ReLU -> global average pool -> Linear, in float64; any input size."""
    torch.manual_seed(seed)
    conv = nn.Conv2d(channels, 4, 3, padding=1)
    if flip_invariant:  # a left-right symmetric kernel commutes with the flip
        with torch.no_grad():
            conv.weight.copy_((conv.weight + conv.weight.flip(-1)) / 2)
    return nn.Sequential(
        conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, classes)
    ).double().eval()


def images(n=3, channels=3, size=16, seed=1, device="cpu"):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=generator, dtype=torch.float64).to(device)


# --------------------------------------------------------------------------- pipelines


@pytest.mark.parametrize("name", PIPELINES)
@pytest.mark.parametrize("channels", [1, 3])
def test_pipeline_keeps_label_and_gives_square_unit_range_images(name, channels):
    pipe = pipeline(name, 24)
    image = torch.rand(channels, 30, 36)
    label = torch.tensor(7)
    torch.manual_seed(0)
    for _ in range(5):
        out, out_label = pipe(image, label)
        assert out_label is label and out_label.item() == 7
        assert out.shape == (channels, 24, 24) and out.dtype == image.dtype
        assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", PIPELINES)
def test_pipeline_on_a_batch_keeps_labels_and_shapes(name):
    batch, labels = torch.rand(4, 3, 20, 20), torch.tensor([3, 1, 4, 1])
    out, out_labels = pipeline(name, 20)(batch, labels)
    assert out.shape == (4, 3, 20, 20)
    assert torch.equal(out_labels, torch.tensor([3, 1, 4, 1]))


def test_none_is_identity_at_the_target_size():
    image = torch.rand(3, 20, 20)
    assert torch.equal(pipeline("none", 20)(image), image)


@pytest.mark.parametrize("name", [n for n in PIPELINES if n != "none"])
def test_random_pipelines_change_the_image(name):
    image = torch.rand(3, 20, 20)
    torch.manual_seed(0)
    pipe = pipeline(name, 20)
    assert any(not torch.allclose(pipe(image), image) for _ in range(10))


@pytest.mark.parametrize("crop", ["padded", "resized"])
def test_flip_crop_variants(crop):
    out = pipeline("flip_crop", 16, crop=crop)(torch.rand(1, 28, 28))
    assert out.shape == (1, 16, 16)


def test_unknown_names_raise_with_the_valid_names():
    with pytest.raises(ValueError, match="unknown pipeline name 'cutmix'.*'none'.*'randaugment'"):
        pipeline("cutmix", 32)
    with pytest.raises(ValueError, match="'padded', 'resized'"):
        pipeline("flip_crop", 32, crop="zoom")
    model, x = small_net(), images()
    with pytest.raises(ValueError, match="unknown TTA views 'rotate'.*'flip', 'multiscale', 'tencrop'"):
        tta_predict(model, x, views="rotate")
    with pytest.raises(ValueError, match="unknown TTA merge 'max'.*'mean', 'gmean'"):
        tta_predict(model, x, merge="max")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\), got \(3, 16, 16\)"):
        tta_predict(model, x[0])


# --------------------------------------------------------------------------- grids


def test_augment_grid_is_reproducible_and_leaves_global_rng_alone():
    image = torch.rand(3, 20, 20)
    state = torch.get_rng_state()
    grid = augment_grid(image, "geometric", n=6, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert grid.shape == (6, 3, 20, 20)
    assert torch.equal(grid, augment_grid(image, "geometric", n=6, seed=3))
    assert not torch.equal(grid, augment_grid(image, "geometric", n=6, seed=4))
    assert not torch.equal(grid[0], grid[1])


@pytest.mark.parametrize("channels", [1, 3])
def test_plot_augment_grid_runs_headless(channels):
    grid = augment_grid(torch.rand(channels, 12, 12), "flip_crop", n=5, seed=0)
    fig = plot_augment_grid(grid, ncols=3, title="flip_crop")
    assert len(fig.axes) == 6 and sum(bool(ax.images) for ax in fig.axes) == 5
    fig.savefig(io.BytesIO(), format="png")


# --------------------------------------------------------------------------- TTA


def test_tencrop_tta_equals_hand_average_of_torchvision_tencrop(device):
    model, x = small_net().to(device), images(size=20, device=device)
    crops = v2.TenCrop(14)(x)  # tuple of 10 (N, C, 14, 14)
    with torch.no_grad():
        expected = torch.stack([model(crop) for crop in crops]).mean(dim=0)
    assert torch.equal(tta_predict(model, x, views="tencrop", crop_size=14), expected)
    # default crop size: round(0.875 * 20) = 18
    with torch.no_grad():
        default = torch.stack([model(c) for c in v2.TenCrop(18)(x)]).mean(dim=0)
    assert torch.equal(tta_predict(model, x, views="tencrop"), default)


def test_flip_views_are_the_images_and_torchvisions_horizontal_flip():
    x = images(size=5)
    x = torch.cat([x, x[..., :4]], dim=-1)  # (3, 3, 5, 9): the flip's axis is the one of length 9
    original, mirrored = tta_views(x, "flip")
    assert original is x
    assert torch.equal(mirrored, v2.RandomHorizontalFlip(p=1.0)(x))


def test_flip_tta_on_a_flip_invariant_model_equals_the_plain_prediction(device):
    model, x = small_net(flip_invariant=True).to(device), images(device=device)
    with torch.no_grad():
        plain = model(x)
    torch.testing.assert_close(tta_predict(model, x, "flip"), plain, rtol=0, atol=1e-12)
    torch.testing.assert_close(tta_predict(model, x, "flip", "gmean"), plain.log_softmax(1), rtol=0, atol=1e-12)


def test_flip_tta_averages_the_flipped_view(device):
    model, x = small_net().to(device), images(device=device)  # not flip invariant
    with torch.no_grad():
        plain, flipped = model(x), model(x.flip(-1))
    assert not torch.allclose(plain, flipped)
    assert torch.equal(tta_predict(model, x, "flip"), torch.stack([plain, flipped]).mean(0))
    gmean = tta_predict(model, x, "flip", "gmean")
    expected = torch.stack([plain.log_softmax(1), flipped.log_softmax(1)]).mean(0)
    assert torch.equal(gmean, expected)
    # the renormalized geometric mean is the softmax of the mean logits
    torch.testing.assert_close(gmean.log_softmax(1), tta_predict(model, x, "flip").log_softmax(1))
    assert (gmean.exp().sum(1) <= 1 + 1e-12).all()


def test_multiscale_views_are_resize_then_centre_crop(device):
    model, x = small_net().to(device), images(size=20, device=device)
    with torch.no_grad():
        plain = model(x)
    assert torch.equal(tta_predict(model, x, "multiscale", scales=(1.0,)), plain)
    views = tta_views(x, "multiscale")
    assert len(views) == len(DEFAULT_SCALES) == 3
    for scale, view in zip(DEFAULT_SCALES, views):
        side = round(scale * 20)
        expected = v2.CenterCrop(20)(v2.Resize((side, side), antialias=True)(x))
        assert torch.equal(view, expected)
    with torch.no_grad():
        expected = torch.stack([model(v) for v in views]).mean(0)
    assert torch.equal(tta_predict(model, x, "multiscale"), expected)


def test_tta_keeps_model_mode_and_needs_no_grad():
    model = small_net().train()
    x = images()
    out = tta_predict(model, x, "flip")
    assert model.training and not out.requires_grad
    model.eval()
    tta_predict(model, x, "tencrop")
    assert not model.training


def test_tencrop_crop_size_too_big_names_the_limit():
    with pytest.raises(ValueError, match="crop_size=40 .* 1 <= crop_size <= 16"):
        tta_views(images(), "tencrop", crop_size=40)

