"""Pick the device to run on, seed every random generator, and make GPU checks strict.

`get_device()` prefers CUDA, then Apple's MPS, then the CPU; the environment variable
`COURSE_DEVICE` (e.g. `cpu`, `cuda`, `cuda:1`) overrides the choice. Library code never
calls `.cuda()`: it works on whatever device its input tensors live on.
"""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

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


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices); return a CPU generator with that seed."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def strict_numerics():
    """Within the block, turn TF32 off and ask for deterministic kernels.

    A check on a GPU then compares like a check on the CPU: float32 matrix products are
    computed in float32 (not TF32's 10-bit mantissa) and results do not change between
    runs. Kernels without a deterministic version warn instead of failing. Every setting
    is restored on exit.
    """
    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        (
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark,
            deterministic,
            warn_only,
            workspace,
        ) = saved
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        if workspace is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = workspace
