"""How the course starts Jupyter kernels: lectures, `course check` and nbgrader's own
commands (nbgrader_config.py) all use this one configuration. No torch is imported here."""

from __future__ import annotations

from pathlib import Path


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
