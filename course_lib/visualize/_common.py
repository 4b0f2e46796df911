"""Shared plumbing for the visualizations: find layers by name, record what they see,
check shapes. (A model's device and eval mode: `course_lib.device`.)

Nothing here draws; nothing here is public (the public functions live next door).
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Sequence

import torch
from torch import Tensor, nn

# ---------------------------------------------------------------------------------------
# Layers by name
# ---------------------------------------------------------------------------------------


def layer_names(model: nn.Module) -> list[str]:
    """Every named submodule of `model`, in `named_modules()` order (the model itself excluded)."""
    return [name for name, _ in model.named_modules() if name]


def named_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called `name` (e.g. "features.3"); a ValueError lists the valid names."""
    if not isinstance(name, str):
        raise ValueError(f"layer names are strings such as 'features.0', got {name!r}")
    modules = dict(model.named_modules())
    if not name or name not in modules:
        valid = layer_names(model)
        raise ValueError(
            f"model has no layer named {name!r}; valid names: {', '.join(valid) or '(none)'}"
        )
    return modules[name]


def as_name_list(layers: str | Sequence[str]) -> list[str]:
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise ValueError("give at least one layer name")
    return names


# ---------------------------------------------------------------------------------------
# Recording a forward pass
# ---------------------------------------------------------------------------------------


def record(
    model: nn.Module,
    x: Tensor,
    names: Sequence[str],
    *,
    take_input: Sequence[bool] | bool = False,
    keep_graph: bool = False,
) -> dict[str, Tensor]:
    """Run `model(x)` once and return {name: the tensor that layer produced (or received)}.

    take_input: per name (or one for all), record the layer's first input instead of its
        output (e.g. the pre-ReLU value a ReLU receives, or the features a Linear receives).
    keep_graph: keep the autograd graph (for gradient ascent); otherwise tensors are detached.
    Each recorded tensor is cloned inside the hook, so a later in-place operation (a
    `ReLU(inplace=True)` after a conv) cannot change it. The hooks are removed afterwards,
    even when the forward pass fails. A layer that does not run, or runs more than once
    (one module reused at several places), is a ValueError: the name would be ambiguous.
    """
    flags = [take_input] * len(names) if isinstance(take_input, bool) else list(take_input)
    modules = [named_layer(model, name) for name in names]
    seen: dict[str, list[Tensor]] = {name: [] for name in names}

    def keeper(name: str, use_input: bool):
        def keep(value):
            if not isinstance(value, Tensor):
                raise ValueError(
                    f"layer {name!r} {'received' if use_input else 'returned'} a "
                    f"{type(value).__name__}, not a tensor; name a layer whose output is one tensor"
                )
            seen[name].append(value.clone() if keep_graph else value.detach().clone())

        if use_input:
            return lambda module, args: keep(args[0] if args else None)
        return lambda module, args, output: keep(output)

    with contextlib.ExitStack() as hooks:  # every hook is removed on exit, even on error
        for name, module, use_input in zip(names, modules, flags):
            hook = keeper(name, use_input)
            hooks.enter_context(
                module.register_forward_pre_hook(hook) if use_input else module.register_forward_hook(hook)
            )
        model(x)
    return {name: _single_call(name, values) for name, values in seen.items()}


def _single_call(name: str, values: list[Tensor]) -> Tensor:
    if not values:
        raise ValueError(f"layer {name!r} did not run in the forward pass; name a layer that the model's forward uses")
    if len(values) > 1:
        raise ValueError(
            f"layer {name!r} ran {len(values)} times in one forward pass (one module reused at several "
            "places, e.g. a shared nn.ReLU); name the layer before it, or give each place its own module"
        )
    return values[0]


# ---------------------------------------------------------------------------------------
# Dtypes
# ---------------------------------------------------------------------------------------


def model_dtype(model: nn.Module) -> torch.dtype:
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()


# ---------------------------------------------------------------------------------------
# Shapes and batches
# ---------------------------------------------------------------------------------------


def check_batch(x, what: str = "x") -> Tensor:
    """`x` must be a 4-D tensor (N, C, H, W); anything else is a ValueError saying how to fix it."""
    if _tensor(x, what, "(N, C, H, W)").dim() == 3:
        raise ValueError(
            f"expected {what} of shape (N, C, H, W), got (C, H, W) = {tuple(x.shape)}; "
            f"add a batch dimension with {what}.unsqueeze(0)"
        )
    if x.dim() != 4:
        raise ValueError(f"expected {what} of shape (N, C, H, W), got shape {tuple(x.shape)}")
    return x


def _tensor(value, what: str, shape: str) -> Tensor:
    """`value` itself if it is a tensor, else a ValueError naming the expected `shape`."""
    if not isinstance(value, Tensor):
        raise ValueError(f"expected {what} to be a tensor of shape {shape}, got {type(value).__name__}")
    return value


def single_image(image, what: str = "image") -> Tensor:
    """One image given as (C, H, W) or (1, C, H, W); returned as (1, C, H, W)."""
    if _tensor(image, what, "(C, H, W)").dim() == 3:
        return image.unsqueeze(0)
    if image.dim() == 4 and image.shape[0] == 1:
        return image
    if image.dim() == 4:
        raise ValueError(
            f"expected one {what} of shape (C, H, W) or (1, C, H, W), got a batch of {image.shape[0]}; "
            f"pass one image at a time, e.g. {what}[i]"
        )
    raise ValueError(f"expected {what} of shape (C, H, W) or (1, C, H, W), got shape {tuple(image.shape)}")


def batches(data, batch_size: int = 256) -> Iterable[tuple[Tensor, Tensor | None]]:
    """(x, y or None) pairs from a DataLoader-like iterable of `x` or `(x, y, ...)` batches,
    or from one tensor (N, C, H, W), which is cut into batches of `batch_size`."""
    if isinstance(data, Tensor):
        check_batch(data, "data")
        for first in range(0, len(data), batch_size):
            yield data[first:first + batch_size], None
        return
    for batch in data:
        if isinstance(batch, Tensor):
            yield check_batch(batch, "a batch"), None
        elif isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], Tensor):
            labels = batch[1] if len(batch) > 1 and isinstance(batch[1], Tensor) else None
            yield check_batch(batch[0], "a batch's images"), labels
        else:
            raise ValueError(
                "the loader must yield image tensors (N, C, H, W) or (images, labels) pairs, "
                f"got {type(batch).__name__}"
            )


def check_channel(channel: int, available: int, layer: str) -> int:
    if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < available:
        raise ValueError(f"channel {channel!r} is out of range: layer {layer!r} has channels 0..{available - 1}")
    return channel
