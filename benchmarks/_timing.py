"""Timing helpers shared by the benchmarks: device choice, synchronization, medians in seconds.

CUDA runs kernels asynchronously: a timer read without `synchronize(device)` first measures
how long it took to queue the work, not to do it. Every timed function here waits for the
device before the clock is read.
"""

import statistics
import time

import torch


def add_device_arguments(parser, quick_help: str) -> None:
    """--device (default cpu, the recorded figures' device) and --quick (tiny sizes, a smoke run)."""
    parser.add_argument("--device", default="cpu",
                        help="where to run: cpu (default, as in docs/benchmarks.md), cuda, cuda:N")
    parser.add_argument("--quick", action="store_true", help=quick_help)


def checked_device(name: str) -> torch.device:
    """torch.device(name), refusing a CUDA device on a machine without one (the error says what to do)."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: CUDA is not available here; use --device cpu")
    return device


def synchronize(device) -> None:
    """Wait until every queued kernel on `device` has finished (a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device="cpu"):
    """(seconds, result) of one call, the device's queued work included."""
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return time.perf_counter() - start, result


def median_seconds(fn, repeats=7, warmup=2, device="cpu"):
    """Median seconds of `repeats` calls of `fn` after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    return statistics.median(timed(fn, device)[0] for _ in range(repeats))


def print_device(device: torch.device) -> None:
    """`device: ...` and, on CUDA, `gpu_name: ...` lines."""
    print(f"device: {device}")
    if device.type == "cuda":
        print(f"gpu_name: {torch.cuda.get_device_name(device)}")
    else:
        print(f"torch_threads: {torch.get_num_threads()}")
