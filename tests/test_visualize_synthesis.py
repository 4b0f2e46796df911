"""maximize_activation: gradient ascent must beat noise, the data-set mean and every data image."""

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from course_lib.visualize import channel_objective, maximize_activation


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread is fastest, and far faster on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def he_cnn():
    """A seeded random CNN with He-initialized weights and zero biases (PyTorch's default
    init gives such small gains that no input changes the deep units much)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3), nn.ReLU(),
    )
    for module in model:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return model


@pytest.fixture(scope="module")
def digits16():
    """scikit-learn's digits as 16x16 images with pixels in [0, 1]."""
    images = torch.tensor(load_digits().images, dtype=torch.float32)[:, None] / 16
    return F.interpolate(images, size=(16, 16), mode="bilinear")


ASCENT = dict(steps=100, lr=0.1, image_size=(1, 16, 16), jitter=0, blur_every=0, value_range=(0.0, 1.0))


@pytest.mark.parametrize("channel", [9, 12])
def test_ascent_beats_noise_the_mean_image_and_every_digit(device, digits16, channel):
    model = he_cnn().to(device)
    data = digits16.to(device)
    noise = torch.rand(64, 1, 16, 16, generator=torch.Generator().manual_seed(1)).to(device)  # same [0, 1] range
    result = maximize_activation(model, "5", channel, unit="centre", seed=0, **ASCENT)
    assert result.image.shape == (1, 16, 16) and result.history.shape == (100,)
    assert 0 <= result.image.min() and result.image.max() <= 1

    def objective(x):
        return channel_objective(model, x, "5", channel, unit="centre")

    synthesized = objective(result.image[None]).item()
    typical_noise = objective(noise).mean().item()
    mean_image = objective(data.mean(dim=0, keepdim=True)).item()
    print(f"channel {channel}: synthesized {synthesized:.3f}, noise {typical_noise:.3f}, mean image {mean_image:.3f}")
    assert typical_noise > 0 and mean_image > 0, "the ratios below need positive baselines"
    assert synthesized >= 5 * typical_noise
    assert synthesized >= 5 * mean_image
    assert synthesized > objective(data).max().item()  # more than any of the 1797 digits
    assert synthesized > objective(noise).max().item()
    assert result.history[-1] > 10 * abs(result.history[0])  # the record of the climb


def test_mean_unit_beats_every_digit(digits16):
    model = he_cnn()
    result = maximize_activation(model, "5", 12, unit="mean", seed=0, **ASCENT)
    best_digit = channel_objective(model, digits16, "5", 12, unit="mean").max().item()
    assert channel_objective(model, result.image[None], "5", 12, unit="mean").item() > 2 * best_digit


def test_pre_relu_objective_is_the_relu_input():
    model = he_cnn()
    through_relu = maximize_activation(model, "6", 0, unit="centre", seed=0, **ASCENT)
    through_conv = maximize_activation(model, "5", 0, unit="centre", seed=0, **ASCENT)
    torch.testing.assert_close(through_relu.image, through_conv.image)
    torch.testing.assert_close(through_relu.history, through_conv.history)
    assert through_relu.history[0] < 0 < through_relu.history[-1]  # starts dead, comes alive
    # after the ReLU a dead unit has no gradient: the ascent never starts
    stuck = maximize_activation(model, "6", 0, unit="centre", seed=0, pre_relu=False, **ASCENT)
    assert (stuck.history == 0).all()


def test_regularizers_run_and_repeat_with_the_seed():
    model = he_cnn()
    settings = dict(
        steps=30, image_size=(1, 20, 20), jitter=2, blur_every=3, blur_sigma=0.7, tv_weight=0.1, l2_weight=0.01
    )
    first = maximize_activation(model, "5", 12, seed=4, **settings)
    again = maximize_activation(model, "5", 12, seed=4, **settings)
    other = maximize_activation(model, "5", 12, seed=5, **settings)
    torch.testing.assert_close(first.image, again.image)
    assert not torch.allclose(first.image, other.image)
    assert first.history[-5:].mean() > first.history[:5].mean()


def test_seed_image_mode_restored_and_no_weight_gradients():
    model = he_cnn().train()
    start = torch.rand(1, 12, 12)
    result = maximize_activation(model, "5", 3, steps=5, start=start, jitter=0, blur_every=0)
    assert result.image.shape == (1, 12, 12)
    assert all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert sum(len(m._forward_hooks) for m in model.modules()) == 0


@pytest.mark.parametrize("kwargs,message", [
    (dict(layer="9"), "no layer named '9'"),
    (dict(channel=16), "channel 16 is out of range"),
    (dict(unit="max"), "unit must be one of"),
    (dict(image_size=(16, 16)), r"image_size must be \(C, H, W\)"),
])
def test_bad_arguments(kwargs, message):
    arguments = dict(layer="5", channel=0, steps=2, image_size=(1, 16, 16)) | kwargs
    with pytest.raises(ValueError, match=message):
        maximize_activation(he_cnn(), **arguments)
