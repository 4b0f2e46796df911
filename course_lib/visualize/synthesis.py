"""Synthesized images: gradient ascent on the input to make one channel fire (activation
maximization, Erhan et al. 2009; Simonyan et al. 2014; Yosinski et al. 2015).

The objective is the channel's pre-ReLU value: after a ReLU a negative unit has zero
gradient and the ascent could never start. Regularizers keep the image natural-looking:
an L2 penalty (small values), total variation (smooth), random jitter (robust to shifts)
and a Gaussian blur every few steps (no high-frequency noise). Draw the result with
`course_lib.visualize.plot_synthesis`.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn

from ..device import eval_mode, module_device
from ._common import check_batch, check_channel, model_dtype, named_layer, record, single_image

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU)
UNITS = ("mean", "centre")


class Synthesis(NamedTuple):
    """Result of `maximize_activation`.

    image: (C, H, W), the synthesized input (detached, on the model's device).
    history: (steps,), the objective (the channel's value) at each step, before its update.
    """

    image: Tensor
    history: Tensor


def maximize_activation(
    model: nn.Module,
    layer: str,
    channel: int,
    *,
    steps: int = 200,
    lr: float = 0.05,
    image_size: Sequence[int] = (3, 64, 64),
    start: Tensor | None = None,
    jitter: int = 4,
    blur_every: int = 4,
    blur_sigma: float = 0.5,
    tv_weight: float = 0.0,
    l2_weight: float = 1e-4,
    unit: str = "mean",
    pre_relu: bool = True,
    value_range: tuple[float, float] | None = None,
    seed: int = 0,
) -> Synthesis:
    """An input that makes `channel` of `layer` fire strongly, by gradient ascent (Adam).

    layer, channel: the unit to excite. Naming a conv gives its output, which is pre-ReLU;
        naming an activation module (ReLU, ...) with `pre_relu=True` optimizes its input,
        the pre-activation value; `pre_relu=False` optimizes its output.
    unit: "mean" maximizes the channel's mean over all positions (a feature anywhere);
        "centre" (or "center") the unit at the centre of the map (a feature at one place, with the
        receptive field's size). A Linear layer's output (N, F) has one unit per channel.
    image_size: (C, H, W) of the image when `start` is None (then the start is seeded
        Gaussian noise with standard deviation 0.1); `start`: a seed image (C, H, W) or
        (1, C, H, W) to begin from instead.
    Regularizers: each step rolls the image by up to `jitter` pixels along H and W; every
        `blur_every` steps (0: never) blurs it with `blur_sigma`; the loss adds
        `l2_weight * mean(x^2)` and `tv_weight * mean of squared neighbour differences`;
        `value_range=(low, high)` clamps the pixels (the start too) after each step.
    seed: seeds the start noise and the jitter, so runs repeat exactly.
    Runs in eval mode (restored afterwards); the model's weights get no gradients.
    Returns Synthesis(image (C, H, W), history (steps,)).
    """
    unit = _unit(unit)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    module = named_layer(model, layer)
    take_input = pre_relu and isinstance(module, ACTIVATIONS)
    generator = torch.Generator().manual_seed(seed)
    x = _start_image(model, start, image_size, generator)  # (1, C, H, W)
    if value_range is not None:
        x.clamp_(*value_range)
    x.requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=lr)
    history = []
    # BEGIN ANSWER hw4.Q4
    with eval_mode(model):
        for step in range(steps):
            shifted = _jitter(x, jitter, generator)
            value = _objective(model, shifted, layer, channel, unit, take_input)
            loss = -value + l2_weight * x.pow(2).mean() + tv_weight * _total_variation(x)
            (gradient,) = torch.autograd.grad(loss, x)
            optimizer.zero_grad(set_to_none=True)
            x.grad = gradient
            optimizer.step()
            history.append(value.item())
            with torch.no_grad():
                if blur_every and (step + 1) % blur_every == 0 and blur_sigma > 0:
                    x.copy_(_blur(x, blur_sigma))
                if value_range is not None:
                    x.clamp_(*value_range)
    # END ANSWER
    return Synthesis(x.detach()[0], torch.tensor(history))


def channel_objective(model: nn.Module, x: Tensor, layer: str, channel: int,
                      unit: str = "mean", pre_relu: bool = True) -> Tensor:
    """The value `maximize_activation` maximizes, for each image of x (N, C, H, W) -> (N,).
    Runs in eval mode (restored afterwards) without gradients; use it to compare images."""
    check_batch(x)
    unit = _unit(unit)
    take_input = pre_relu and isinstance(named_layer(model, layer), ACTIVATIONS)
    with torch.no_grad(), eval_mode(model):
        return _objective(model, x, layer, channel, unit, take_input, per_image=True)


def _unit(unit: str) -> str:
    unit = "centre" if unit == "center" else unit
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    return unit


def _objective(model, x, layer, channel, unit, take_input, per_image=False) -> Tensor:
    out = record(model, x, [layer], take_input=take_input, keep_graph=True)[layer]  # (N, C', ...)
    if out.dim() < 2:
        raise ValueError(f"layer {layer!r} gives shape {tuple(out.shape)}; need (N, C, ...) with channels on dim 1")
    maps = out[:, check_channel(channel, out.shape[1], layer)]  # (N, ...) spatial dims
    if maps.dim() == 1:
        values = maps
    elif unit == "mean":
        values = maps.flatten(1).mean(dim=1)
    else:
        centre = tuple(n // 2 for n in maps.shape[1:])
        values = maps[(slice(None), *centre)]
    return values if per_image else values[0]


def _start_image(model, start, image_size, generator) -> Tensor:
    device, dtype = module_device(model), model_dtype(model)
    if start is not None:
        return single_image(start, "start").detach().to(device=device, dtype=dtype).clone()
    size = tuple(image_size)
    if len(size) != 3:
        raise ValueError(f"image_size must be (C, H, W), got {image_size!r}")
    return (0.1 * torch.randn((1, *size), generator=generator, dtype=dtype)).to(device)


def _jitter(x: Tensor, pixels: int, generator) -> Tensor:
    if pixels <= 0:
        return x
    dy, dx = torch.randint(-pixels, pixels + 1, (2,), generator=generator).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def _total_variation(x: Tensor) -> Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() + (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()


def _blur(x: Tensor, sigma: float) -> Tensor:
    from torchvision.transforms.functional import gaussian_blur

    size = 2 * int(round(3 * sigma)) + 1  # odd, covers +-3 sigma
    size = min(size, 2 * ((min(x.shape[-2:]) - 1) // 2) + 1)
    return gaussian_blur(x, kernel_size=[size, size], sigma=[sigma, sigma])
