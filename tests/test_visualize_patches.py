"""top_activating_patches on a channel built to detect a planted pattern; boxes against the
receptive field worked out by hand and against the support of the unit's input gradient."""

import pytest
import torch
from torch import nn

from course_lib.visualize import activations, top_activating_patches

X_PATTERN = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
PLANTED = {3: (2, 17), 7: (10, 10), 11: (19, 0), 19: (0, 5), 25: (14, 20)}  # image: top-left of the X


def planted_images():
    generator = torch.Generator().manual_seed(0)
    images = 0.3 * torch.rand(30, 1, 24, 24, generator=generator)  # faint noise
    for index, (r, c) in PLANTED.items():
        images[index, 0, r:r + 3, c:c + 3] = X_PATTERN
    return images


def x_detector():
    """conv1 channel 0 is a matched filter for the X (+1 on the X, -1 off it, bias -4):
    only a complete X reaches 5 - 4 > 0 (noise alone gives at most 1.5 - 4). conv2 channel 0
    sums conv1's channel 0 over 3x3. The other channels are random."""
    torch.manual_seed(0)
    conv1, conv2 = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        conv1.weight[0, 0] = 2 * X_PATTERN - 1
        conv1.bias[0] = -4.0
        conv2.weight[0] = 0.0
        conv2.weight[0, 0] = 1.0
        conv2.bias[0] = 0.0
    return nn.Sequential(conv1, nn.ReLU(), nn.AvgPool2d(2), conv2, nn.ReLU())


def hand_box(i, j, size=24):
    """Layer 4's field: size 3 -> 4 (pool 2) -> 8 (3x3 conv at jump 2); jump 2; the unit
    (i, j) is centred on input pixel 0.5 + 2i, so it sees [2i - 3, 2i + 5), clipped."""
    return ((max(0, 2 * i - 3), min(size, 2 * i + 5)), (max(0, 2 * j - 3), min(size, 2 * j + 5)))


def test_patches_contain_the_planted_pattern(device):
    model, images = x_detector().to(device), planted_images().to(device)
    patches = top_activating_patches(model, images, "4", 0, k=5, batch_size=8)
    assert {p.image_index for p in patches} == set(PLANTED)
    assert [p.activation for p in patches] == sorted((p.activation for p in patches), reverse=True)
    maps = activations(model, images, "4")["4"][:, 0]
    for patch in patches:
        (r0, r1), (c0, c1) = patch.box
        r, c = PLANTED[patch.image_index]
        assert r0 <= r and r + 3 <= r1 and c0 <= c and c + 3 <= c1, (patch, (r, c))
        assert patch.box == hand_box(*patch.position)
        assert patch.activation == pytest.approx(maps[patch.image_index][patch.position].item())
        assert patch.activation == pytest.approx(maps[patch.image_index].max().item())
    # the sixth best image has no X: its best unit is far weaker
    sixth = top_activating_patches(model, images, "4", 0, k=6)[-1]
    assert sixth.image_index not in PLANTED and sixth.activation < 0.5 * patches[-1].activation


def test_several_units_per_image_and_k_beyond_the_units():
    model, images = x_detector(), planted_images()[:2]
    everything = top_activating_patches(model, images, "4", 1, k=10_000, max_per_image=None, batch_size=1)
    maps = activations(model, images, "4")["4"][:, 1]
    assert len(everything) == maps.numel() == 2 * 12 * 12
    assert [p.activation for p in everything] == pytest.approx(sorted(maps.flatten().tolist(), reverse=True))
    two_each = top_activating_patches(model, images, "4", 1, k=4, max_per_image=2)
    assert sorted(p.image_index for p in two_each) == [0, 0, 1, 1]


LINEAR_MODELS = {
    "strided": lambda: nn.Sequential(
        nn.Conv2d(1, 2, 5, stride=2, padding=2), nn.AvgPool2d(3, stride=2), nn.Conv2d(2, 2, 3)
    ),
    "dilated": lambda: nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2, padding=1), nn.Conv2d(2, 2, 4, stride=3)),
    "plain": lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(2), nn.Conv2d(2, 2, 3, padding=1), nn.AvgPool2d(2)),
}


@pytest.mark.parametrize("name", sorted(LINEAR_MODELS))
def test_boxes_are_the_support_of_the_input_gradient(name):
    """With positive weights and no ReLU, a unit's input gradient is non-zero exactly on
    the pixels the unit sees, so its bounding box must equal the patch's box."""
    torch.manual_seed(0)
    model = LINEAR_MODELS[name]().double()
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(0.5, 1.0)
    last = str(len(model) - 1)
    images = torch.rand(3, 1, 29, 31, dtype=torch.float64)
    for patch in top_activating_patches(model, images, last, 1, k=6, max_per_image=None):
        x = images[patch.image_index:patch.image_index + 1].clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(model(x)[(0, 1, *patch.position)], x)
        rows, cols = torch.nonzero(gradient[0, 0], as_tuple=True)
        support = ((rows.min().item(), rows.max().item() + 1), (cols.min().item(), cols.max().item() + 1))
        assert patch.box == support, (name, patch)


def test_a_linear_unit_sees_the_whole_image():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 4))
    patches = top_activating_patches(model, torch.randn(5, 1, 8, 8), "2", 3, k=2)
    assert [p.box for p in patches] == [((0, 8), (0, 8))] * 2
    assert all(p.position == () for p in patches)


def test_bad_input():
    model, images = x_detector(), planted_images()
    with pytest.raises(ValueError, match=r"got \(C, H, W\).*unsqueeze\(0\)"):
        top_activating_patches(model, images[0], "4", 0)
    with pytest.raises(ValueError, match=r"no layer named 'relu2'; valid names: 0, 1, 2, 3, 4"):
        top_activating_patches(model, images, "relu2", 0)
    with pytest.raises(ValueError, match="channel 3 is out of range"):
        top_activating_patches(model, images, "4", 3)
    wrapped = nn.Sequential(model)
    with pytest.raises(ValueError, match=r"not a leaf module.*0\.0, 0\.1"):
        top_activating_patches(wrapped, images, "0", 0)
