"""How the course starts Jupyter kernels: lectures (and the student edition's), `course check`
and nbgrader's own commands (nbgrader_config.py) all use this one configuration and
environment. No torch is imported here."""

from __future__ import annotations

import os
from pathlib import Path

FAST_ENV = "COURSE_FAST"
KERNEL_NAME = "python3"
#: Seconds one cell may run before the run gives up on the notebook.
DEFAULT_CELL_TIMEOUT = 600
_INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def kernel_config():
    """The kernel manager talks to the kernel over Unix sockets (IPC), not unencrypted TCP
    (over TCP ipykernel warns, rightly, for every notebook). The sockets live in Jupyter's
    private runtime folder under a fresh name (a relative name would resolve against the
    kernel's working folder on one side and ours on the other)."""
    import uuid

    from jupyter_core.paths import jupyter_runtime_dir
    from traitlets.config import Config

    runtime = Path(jupyter_runtime_dir())
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(runtime / f"kernel-{uuid.uuid4().hex}-ipc")
    return config


def kernel_env(fast: bool) -> dict[str, str]:
    """The kernel's environment: ours, with COURSE_FAST set, figures inline, OpenMP threads passive."""
    env = dict(os.environ)
    env[FAST_ENV] = "1" if fast else "0"
    env["MPLBACKEND"] = _INLINE_BACKEND  # a test runner's MPLBACKEND=Agg would swallow plots
    env.setdefault("COURSE_QUIET", "1")  # no progress bars in the pages
    # Idle OpenMP threads sleep instead of spinning: on a CPU shared with other work, spinning
    # threads made PyTorch's training steps up to 8x slower (measured on a busy 2-core machine).
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env
