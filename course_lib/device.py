"""Where and how a model runs: the device, seeds, strict GPU numerics, eval mode.

`get_device()` prefers CUDA, then Apple's MPS, then the CPU; the environment variable
`COURSE_DEVICE` (e.g. `cpu`, `cuda`, `cuda:1`) overrides the choice. Library code never
calls `.cuda()`: it works on whatever device its input tensors (or its model, see
`module_device`) live on. `eval_mode(model)` runs a block in eval mode and puts every
module back in its own mode afterwards.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import platform
import random
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

DEVICE_ENV = "COURSE_DEVICE"


def get_device() -> torch.device:
    """The device to run on: `COURSE_DEVICE` if set, else cuda, then mps, then cpu."""
    requested = os.environ.get(DEVICE_ENV, "").strip()
    if requested:
        return _checked_device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _checked_device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(
            f"{DEVICE_ENV}={name!r} is not a device name; use cpu, cuda, cuda:N or mps"
        ) from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{DEVICE_ENV}={name!r} but CUDA is not available here; unset it or use cpu")
    if device.type == "mps" and not _mps_available():
        raise ValueError(f"{DEVICE_ENV}={name!r} but MPS is not available here; unset it or use cpu")
    return device


def module_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or first buffer); the CPU for a model with neither."""
    tensor = next(itertools.chain(model.parameters(), model.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run the block with every module of `model` in eval mode; afterwards put each module
    back in its own mode, even on error (mixed modes survive, e.g. a frozen BatchNorm inside
    a model that trains)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices); return a CPU generator with that seed."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def _strict_settings() -> tuple[tuple[object, str, bool], ...]:
    """(owner, attribute, strict value) of each backend flag `strict_numerics` sets."""
    cudnn = torch.backends.cudnn
    return ((torch.backends.cuda.matmul, "allow_tf32", False), (cudnn, "allow_tf32", False),
            (cudnn, "deterministic", True), (cudnn, "benchmark", False))


def _deterministic_algorithms(mode: bool, warn_only: bool) -> None:
    """`torch.use_deterministic_algorithms(mode, warn_only=...)`, except that it imports
    torch._inductor only when something has loaded it already. That import pulls in
    torch._dynamo: about 2.8 s of CPU on the 2-core course machine, in every kernel and in
    every graded submission, on its first check. Inductor's flag only steers how
    `torch.compile` tunes its kernels, and compiling loads inductor first."""
    if "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        torch._C._set_deterministic_algorithms(mode, warn_only=warn_only)


@contextlib.contextmanager
def strict_numerics():
    """Within the block, turn TF32 off and ask for deterministic kernels.

    A check on a GPU then compares like a check on the CPU: float32 matrix products are
    computed in float32 (not TF32's 10-bit mantissa) and results do not change between
    runs. Kernels without a deterministic version warn instead of failing. Every setting
    is restored on exit.
    """
    settings = _strict_settings()
    saved_flags = [getattr(owner, name) for owner, name, _ in settings]
    saved_algorithms = (torch.are_deterministic_algorithms_enabled(),
                        torch.is_deterministic_algorithms_warn_only_enabled())
    workspace = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    for owner, name, value in settings:
        setattr(owner, name, value)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    _deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        for (owner, name, _), value in zip(settings, saved_flags):
            setattr(owner, name, value)
        _deterministic_algorithms(saved_algorithms[0], warn_only=saved_algorithms[1])
        if workspace is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = workspace


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else platform.processor(), for run records."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
