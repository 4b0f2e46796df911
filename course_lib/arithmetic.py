"""Conv arithmetic: output shapes, parameter counts, MACs and FLOPs, receptive fields.

The lecture's "CNN architecture" slides as functions:

* `conv_output_size` is the formula out = floor((in + 2p - d(k - 1) - 1) / s) + 1.
* `conv_params` / `linear_params` count weights and biases.
* `summarize(model, input_size)` runs one forward pass with hooks and gives one row per
  leaf module: output shape, parameters, MACs, FLOPs (= 2 x MACs) and receptive field.
* `receptive_field(model, input_size)` gives, per layer, the receptive-field size, the
  effective stride (the "jump" between neighbouring units, in input pixels) and the
  start (the input coordinate of the centre of the first unit's field).

Counting conventions (the ones torchvision's "GFLOPS" column, which is really MACs, uses):
a MAC is one multiply-accumulate of a weight in a convolution or a linear layer. Bias
additions, normalization, activations, pooling and dropout are not MACs. Anything the
counter could not see or does not know - a leaf module of an unknown type, an operation
called outside any module (a residual addition, `torch.flatten`, `F.linear` in a custom
`forward`) - is listed in `Summary.uncounted`, never silently counted as zero.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from course_lib.device import eval_mode

IntOrTuple = int | Sequence[int]


# ---------------------------------------------------------------------------------------
# Formulas
# ---------------------------------------------------------------------------------------


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """Output size of a convolution or pooling window along each spatial dimension.

    out = floor((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1

    `size` is an int (returns an int) or a tuple (returns a tuple of the same length);
    the other arguments are ints (the same for every dimension) or tuples. `padding` may
    also be "valid" (no padding) or "same" (output size equals input size; stride 1 only,
    as in PyTorch).

    >>> conv_output_size(90, 3, stride=1, padding=1)
    90
    >>> conv_output_size((224, 224), 11, stride=4, padding=2)
    (55, 55)
    """
    # BEGIN ANSWER hw1.Q1
    scalar = isinstance(size, int)
    sizes = _as_tuple(size, None, "size")
    n = len(sizes)
    kernel = _as_tuple(kernel_size, n, "kernel_size")
    strides = _as_tuple(stride, n, "stride")
    dilations = _as_tuple(dilation, n, "dilation")
    pads = _resolve_padding(padding, kernel, strides, dilations)
    if padding == "same":
        return size if scalar else sizes
    outputs = []
    for dim, (s, k, st, p, d) in enumerate(zip(sizes, kernel, strides, pads, dilations)):
        span = d * (k - 1) + 1
        out = (s + 2 * p - span) // st + 1
        if s + 2 * p < span:
            raise ValueError(
                f"dimension {dim}: the window spans {span} pixels (kernel {k}, dilation {d}) "
                f"but the padded input has only {s + 2 * p} (size {s}, padding {p}); "
                "use a smaller kernel or more padding"
            )
        outputs.append(out)
    return outputs[0] if scalar else tuple(outputs)
    # END ANSWER


def _as_tuple(value, length, name):
    if isinstance(value, bool) or not isinstance(value, (int, tuple, list)):
        raise ValueError(f"{name} must be an int or a tuple of ints, got {value!r}")
    values = (value,) * (length or 1) if isinstance(value, int) else tuple(value)
    if length is not None and len(values) != length:
        raise ValueError(f"{name} has {len(values)} entries but size has {length}; give one per dimension")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{name} must hold ints, got {value!r}")
    minimum = 0 if name == "padding" else 1
    if any(v < minimum for v in values):
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return values


def _resolve_padding(padding, kernel, strides, dilations):
    if padding == "valid":
        return (0,) * len(kernel)
    if padding == "same":
        if any(s != 1 for s in strides):
            raise ValueError(
                f"padding='same' needs stride 1 (got stride {strides}); "
                "give the padding as a number for strided convolutions"
            )
        # the padding before each dimension; with an odd span PyTorch puts the extra
        # pixel after, so the output size is the input size either way
        return tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilations))
    if isinstance(padding, str):
        raise ValueError(f"padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    return _as_tuple(padding, len(kernel), "padding")


def conv_params(in_channels, out_channels, kernel_size, bias=True, groups=1) -> int:
    """Learnable parameters of a convolution: out * (in / groups) * prod(kernel) (+ out biases).

    kernel_size: an int for a square 2-D kernel, or a tuple (kh, kw) / (kd, kh, kw).

    >>> conv_params(10, 5, 3)   # 5 filters of 3x3x10, plus 5 biases
    455
    """
    # BEGIN ANSWER hw1.Q2
    kernel = _as_tuple(kernel_size, 2 if isinstance(kernel_size, int) else None, "kernel_size")
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}"
        )
    weights = out_channels * (in_channels // groups) * math.prod(kernel)
    return weights + (out_channels if bias else 0)
    # END ANSWER


def linear_params(in_features, out_features, bias=True) -> int:
    """Learnable parameters of a fully connected layer: in * out (+ out biases).

    >>> linear_params(81_000, 40_500)
    3280540500
    """
    return in_features * out_features + (out_features if bias else 0)


# ---------------------------------------------------------------------------------------
# Receptive fields
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of the units of one layer's output, per spatial dimension.

    size:   how many input pixels one unit sees (e.g. (212, 212) for VGG16's pool5).
    stride: the effective stride ("jump"): input pixels between neighbouring units.
    start:  input coordinate of the centre of the first unit's field (may be negative or
            fractional: padding puts fields partly outside the image).
    A layer whose units see the whole input (after global pooling or flattening) has
    `size=None`, `stride=None`, `start=None`.
    """

    size: tuple[int, ...] | None
    stride: tuple[int, ...] | None
    start: tuple[float, ...] | None

    @property
    def is_global(self) -> bool:
        return self.size is None

    def box(self, position: Sequence[int], input_size: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """Input pixel range [first, last + 1) per dimension that unit `position` sees.

        position: the unit's index per spatial dimension, e.g. (row, col).
        input_size: the input's spatial size, e.g. (H, W); the box is clipped to it.
        """
        # BEGIN ANSWER hw4.Q2
        if self.is_global:
            return tuple((0, int(n)) for n in input_size)
        if len(position) != len(self.size):
            raise ValueError(f"position needs {len(self.size)} indices (one per spatial dimension), got {position!r}")
        ranges = []
        for index, size, stride, start, extent in zip(position, self.size, self.stride, self.start, input_size):
            centre = start + index * stride
            first = math.ceil(centre - (size - 1) / 2)
            ranges.append((max(0, first), min(int(extent), first + size)))
        return tuple(ranges)
        # END ANSWER


@dataclass(frozen=True)
class _Window:
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]


def _grow(field_in: ReceptiveField, window: _Window) -> ReceptiveField:
    """Receptive field after a sliding window, with the recurrences
    r_out = r_in + d(k - 1) j_in,  j_out = j_in s,  start_out = start_in + (d(k - 1)/2 - p) j_in."""
    # BEGIN ANSWER hw4.Q2
    if field_in.is_global:
        return field_in
    sizes, strides, starts = [], [], []
    for r, j, start, k, s, p, d in zip(
        field_in.size, field_in.stride, field_in.start, window.kernel, window.stride, window.padding, window.dilation
    ):
        span = d * (k - 1)
        sizes.append(r + span * j)
        strides.append(j * s)
        starts.append(start + (span / 2 - p) * j)
    return ReceptiveField(tuple(sizes), tuple(strides), tuple(starts))
    # END ANSWER


GLOBAL_FIELD = ReceptiveField(None, None, None)

_WINDOW_TYPES = (nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)

# Leaf modules that do no multiply-accumulates by our convention and keep each output
# unit's receptive field equal to the input unit's (they act per position).
_POINTWISE_TYPES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Softplus,
    nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm,
    nn.modules.dropout._DropoutNd, nn.Identity,
)
# Leaf modules with no MACs whose units see the whole input.
_GLOBAL_TYPES = (nn.Flatten, nn.Softmax, nn.LogSoftmax, nn.LayerNorm)
_ADAPTIVE_POOL_TYPES = (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)


def _window_of(module: nn.Module, spatial_dims: int) -> _Window:
    def expand(value):
        return tuple(value) if isinstance(value, (tuple, list)) else (value,) * spatial_dims

    kernel = expand(module.kernel_size)
    stride = expand(module.stride if module.stride is not None else module.kernel_size)
    dilation = expand(getattr(module, "dilation", 1))
    padding = module.padding
    if isinstance(padding, str):
        padding = _resolve_padding(padding, kernel, (1,) * spatial_dims, dilation)
    return _Window(kernel, stride, expand(padding), dilation)


def _adaptive_window(in_spatial, out_spatial) -> _Window | None:
    """Adaptive pooling is a plain window when the input divides evenly into the output."""
    if any(i % o for i, o in zip(in_spatial, out_spatial)):
        return None
    kernel = tuple(i // o for i, o in zip(in_spatial, out_spatial))
    ones = (1,) * len(kernel)
    return _Window(kernel, kernel, (0,) * len(kernel), ones)


def _module_field(module, field_in, in_shape, out_shape):
    """The receptive field of a leaf module's output; None when unknown."""
    spatial_dims = len(in_shape) - 2
    if field_in.is_global or spatial_dims < 1:
        return GLOBAL_FIELD
    if isinstance(module, _WINDOW_TYPES) and not isinstance(module, nn.modules.conv._ConvTransposeNd):
        return _grow(field_in, _window_of(module, spatial_dims))
    if isinstance(module, _POINTWISE_TYPES):
        return field_in
    if isinstance(module, _ADAPTIVE_POOL_TYPES):
        if all(o == 1 for o in out_shape[2:]):
            return GLOBAL_FIELD
        window = _adaptive_window(in_shape[2:], out_shape[2:])
        return None if window is None else _grow(field_in, window)
    if isinstance(module, (nn.Linear, *_GLOBAL_TYPES)):
        return GLOBAL_FIELD
    return None


# ---------------------------------------------------------------------------------------
# MACs
# ---------------------------------------------------------------------------------------

_ZERO_MAC_TYPES = (*_POINTWISE_TYPES, *_GLOBAL_TYPES, *_ADAPTIVE_POOL_TYPES,
                   nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
                   nn.Unflatten, nn.Upsample, nn.Embedding)


def _module_macs(module: nn.Module, inputs, output) -> int | None:
    """Multiply-accumulates of one call of a leaf module; None when the type is unknown."""
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        kernel_volume = math.prod(module.kernel_size)
        return inputs[0].numel() * (module.out_channels // module.groups) * kernel_volume
    if isinstance(module, nn.modules.conv._ConvNd):
        kernel_volume = math.prod(module.kernel_size)
        return output.numel() * (module.in_channels // module.groups) * kernel_volume
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    if isinstance(module, _ZERO_MAC_TYPES):
        return 0
    return None


# ---------------------------------------------------------------------------------------
# The tracer: one forward pass with hooks on every leaf module
# ---------------------------------------------------------------------------------------


@dataclass
class LayerRow:
    """One call of one leaf module.

    output_shape includes the batch dimension; params counts the module's own parameters
    (0 when the module was already counted on an earlier call); macs is None when unknown.
    """

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    macs: int | None
    field: ReceptiveField | None

    @property
    def flops(self) -> int | None:
        return None if self.macs is None else 2 * self.macs


# Functions that only change a tensor's view or ask about it: no cost to report.
_SHAPE_ONLY = {
    "flatten", "view", "reshape", "permute", "transpose", "contiguous", "squeeze", "unsqueeze",
    "size", "dim", "numel", "__get__", "__getitem__", "float", "to", "detach", "clone",
}
_MATMUL_LIKE = {
    "conv1d", "conv2d", "conv3d", "linear", "matmul", "mm", "bmm", "addmm", "einsum", "__matmul__", "bilinear",
}


def _function_name(func) -> str:
    name = getattr(func, "__name__", None) or repr(func)
    if name == "__get__":
        name = getattr(getattr(func, "__self__", None), "__name__", name)
    return name


class _Tracer(TorchFunctionMode):
    """Follows receptive fields through a forward pass and records every leaf module call.

    Module hooks handle leaf modules. Operations called outside any leaf module (residual
    additions, `torch.flatten`, functional pooling) pass through `__torch_function__`,
    which carries receptive fields along and lists the operation as uncounted.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.rows: list[LayerRow] = []
        self.uncounted: dict[str, int] = {}
        self.fields: dict[int, ReceptiveField | None] = {}
        self.alive: list[torch.Tensor] = []  # keeps ids unique while the pass runs
        self.depth = 0
        self.counted_modules: set[int] = set()
        self.fields_missing: str | None = None  # why receptive fields could not be followed

    def remember(self, tensor, field_value):
        if isinstance(tensor, torch.Tensor):
            self.fields[id(tensor)] = field_value
            self.alive.append(tensor)

    def field_of(self, tensor):
        return self.fields.get(id(tensor))

    def note_uncounted(self, what: str):
        self.uncounted[what] = self.uncounted.get(what, 0) + 1

    # -- leaf module hooks ---------------------------------------------------------------
    def before(self, module, inputs):
        self.depth += 1

    def after(self, name, module, inputs, output):
        self.depth -= 1
        tensor_in = next((t for t in inputs if isinstance(t, torch.Tensor)), None)
        if not isinstance(output, torch.Tensor) or tensor_in is None:
            self.note_uncounted(f"{name} ({type(module).__name__}): output is not a single tensor")
            return
        field_in = self.field_of(tensor_in)
        field_out = None
        if field_in is not None and self.fields_missing is None:
            try:
                field_out = _module_field(module, field_in, tuple(tensor_in.shape), tuple(output.shape))
            except NotImplementedError as error:  # the student edition leaves the field recurrence out
                self.fields_missing = str(error)
        macs = _module_macs(module, inputs, output)
        if macs is None:
            self.note_uncounted(f"{name} ({type(module).__name__}): unknown module type, MACs not counted")
        elif field_out is None and field_in is not None and tensor_in.dim() > 2:
            self.note_uncounted(f"{name} ({type(module).__name__}): receptive field unknown")
        first_call = id(module) not in self.counted_modules
        self.counted_modules.add(id(module))
        params = sum(p.numel() for p in module.parameters(recurse=False)) if first_call else 0
        self.rows.append(LayerRow(name, type(module).__name__, tuple(output.shape), params, macs, field_out))
        self.remember(output, field_out)

    # -- everything else -----------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        output = func(*args, **kwargs)
        if self.depth == 0 and isinstance(output, torch.Tensor):
            self.follow_functional(func, args, kwargs, output)
        return output

    def follow_functional(self, func, args, kwargs, output):
        inputs = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        known = [(t, self.field_of(t)) for t in inputs if id(t) in self.fields]
        if not known:
            return
        name = _function_name(func)
        if name in _MATMUL_LIKE:
            self.note_uncounted(f"{name} called outside a module: its MACs are not counted")
        elif name not in _SHAPE_ONLY:
            self.note_uncounted(f"{name} called outside a module (no MACs counted)")
        self.remember(output, _functional_field(known, output))


def _functional_field(known, output):
    """Receptive field after a functional op: kept where the spatial shape is unchanged."""
    tensor_in, _ = known[0]
    if output.dim() <= 2 or output.shape[2:].numel() == 1:
        return GLOBAL_FIELD
    same_shape = [f for t, f in known if t.shape[2:] == output.shape[2:] and t.dim() == output.dim()]
    if not same_shape or any(f is None for f in same_shape):
        return None
    if any(f.is_global for f in same_shape):
        return GLOBAL_FIELD
    # an element-wise combination (e.g. a residual addition) sees the union of the fields
    return max(same_shape, key=lambda f: f.size)


def _leaf_modules(model: nn.Module):
    return [(name, m) for name, m in model.named_modules() if not list(m.children())]


def _example_input(model: nn.Module, input_size) -> torch.Tensor:
    size = tuple(input_size)
    if len(size) < 2:
        raise ValueError(f"input_size must be (C, H, W) or (N, C, H, W), got {input_size!r}")
    if len(size) == 3:
        size = (1, *size)
    reference = next(iter(model.parameters()), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None and reference.is_floating_point() else torch.float32
    return torch.zeros(size, device=device, dtype=dtype)


def _trace(model: nn.Module, input_size) -> _Tracer:
    x = _example_input(model, input_size)
    tracer = _Tracer(model)
    tracer.remember(x, ReceptiveField((1,) * (x.dim() - 2), (1,) * (x.dim() - 2), (0.0,) * (x.dim() - 2)))
    with contextlib.ExitStack() as hooks, eval_mode(model), torch.no_grad():  # hooks removed, modes restored
        for name, module in _leaf_modules(model):
            hooks.enter_context(module.register_forward_pre_hook(tracer.before))
            hooks.enter_context(module.register_forward_hook(
                lambda m, i, o, name=name: tracer.after(name, m, i, o)))
        with tracer:
            model(x)
    return tracer


# ---------------------------------------------------------------------------------------
# Public API: summarize and receptive_field
# ---------------------------------------------------------------------------------------


@dataclass
class Summary:
    """Per-layer table of a model: `rows`, totals, and what could not be counted."""

    rows: list[LayerRow]
    input_shape: tuple[int, ...]
    total_params: int
    trainable_params: int
    uncounted: list[str] = field(default_factory=list)

    @property
    def total_macs(self) -> int:
        return sum(row.macs or 0 for row in self.rows)

    @property
    def total_flops(self) -> int:
        return 2 * self.total_macs

    def __str__(self) -> str:
        return _format_table(self)


def summarize(model: nn.Module, input_size) -> Summary:
    """One row per leaf-module call, with totals, for one forward pass.

    model: any `nn.Module`; it is run once in eval mode without gradients on zeros of
        shape `input_size` on the device of its parameters, then put back in the mode
        it was in.
    input_size: (C, H, W) for one image, or (N, C, H, W) to count a whole batch.
    Returns a `Summary`: `rows` (name, type, output shape, params, MACs, FLOPs,
    receptive field), `total_params` (= sum of `p.numel()` over unique parameters),
    `trainable_params`, `total_macs`, `total_flops` (= 2 x MACs) and `uncounted`.
    """
    tracer = _trace(model, input_size)
    parameters = list(model.parameters())  # unique: named_parameters removes duplicates
    total = sum(p.numel() for p in parameters)
    trainable = sum(p.numel() for p in parameters if p.requires_grad)
    counted = sum(row.params for row in tracer.rows)
    uncounted = [what if n == 1 else f"{what} (x{n})" for what, n in tracer.uncounted.items()]
    if counted != total:
        uncounted.append(f"{total - counted} parameters belong to no leaf module that ran (in totals, not in rows)")
    if tracer.fields_missing:
        uncounted.append(f"receptive fields: {tracer.fields_missing}")
    input_shape = tuple(_example_input(model, input_size).shape)
    return Summary(tracer.rows, input_shape, total, trainable, uncounted)


@dataclass(frozen=True)
class LayerField:
    """One row of `receptive_field`: a leaf module call and its output's receptive field."""

    name: str
    type: str
    field: ReceptiveField | None

    @property
    def size(self):
        return None if self.field is None else self.field.size

    @property
    def stride(self):
        return None if self.field is None else self.field.stride

    @property
    def start(self):
        return None if self.field is None else self.field.start


def receptive_field(model: nn.Module, input_size) -> dict[str, LayerField]:
    """Receptive field of every leaf module's output, in the order the modules run.

    input_size: (C, H, W) or (N, C, H, W).
    Returns {module name: LayerField(name, type, field)}; `field.size`, `field.stride`
    and `field.start` are tuples with one entry per spatial dimension; a global field
    (after flattening or global pooling) has them None; `field` itself is None where it
    could not be worked out (see `summarize(...).uncounted`).

    >>> from torchvision.models import vgg16
    >>> receptive_field(vgg16(), (3, 224, 224))["features.30"].size
    (212, 212)
    """
    tracer = _trace(model, input_size)
    if tracer.fields_missing:
        raise NotImplementedError(tracer.fields_missing)
    return {row.name: LayerField(row.name, row.type, row.field) for row in tracer.rows}


# ---------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------


def _field_text(f: ReceptiveField | None) -> tuple[str, str]:
    if f is None:
        return "?", "?"
    if f.is_global:
        return "global", "-"
    size = str(f.size[0]) if len(set(f.size)) == 1 else "x".join(map(str, f.size))
    stride = str(f.stride[0]) if len(set(f.stride)) == 1 else "x".join(map(str, f.stride))
    return size, stride


def _format_table(summary: Summary) -> str:
    header = ("layer", "type", "output shape", "params", "MACs", "FLOPs", "RF", "jump")
    lines = [header]
    for row in summary.rows:
        size, stride = _field_text(row.field)
        macs = "?" if row.macs is None else f"{row.macs:,}"
        flops = "?" if row.flops is None else f"{row.flops:,}"
        shape = "x".join(map(str, row.output_shape))
        lines.append((row.name, row.type, shape, f"{row.params:,}", macs, flops, size, stride))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    left_aligned = {0, 1, 2}

    def render(line):
        return "  ".join(
            cell.ljust(w) if i in left_aligned else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))
        )

    rule = "-" * len(render(header))
    out = [render(header), rule, *(render(line) for line in lines[1:]), rule]
    out.append(f"input: {'x'.join(map(str, summary.input_shape))}")
    out.append(f"total params: {summary.total_params:,} (trainable {summary.trainable_params:,})")
    out.append(f"total MACs: {summary.total_macs:,} ({summary.total_macs / 1e9:.3f} G)   "
               f"total FLOPs: {summary.total_flops:,} ({summary.total_flops / 1e9:.3f} G)")
    if summary.uncounted:
        out.append("not counted:")
        out.extend(f"  - {what}" for what in summary.uncounted)
    return "\n".join(out)
