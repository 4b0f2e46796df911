"""Time `course_lib.visualize.occlusion_map` against captum's `Occlusion.attribute` for the
same output, both batching the occluded images (ours `batch_size`, captum's
`perturbations_per_eval`, the same number).

Prints `name: value` lines per case: both times (median of repeats, runs interleaved),
the ratio ours / captum (<= 1 means ours is at least as fast) and the largest difference
between the two maps. Exits 1 if the maps differ or ours is slower than captum in a case
(with `--quick`, only if the maps differ: one repeat of the smallest case times nothing).

    .venv/bin/python benchmarks/bench_occlusion.py [--threads 1] [--device cuda] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _timing import add_device_arguments, checked_device, print_device, timed
from captum.attr import Occlusion

from course_lib.visualize import occlusion_map

BATCH = 64
SLACK = 1.05  # timing noise on a shared machine; a real regression is far larger


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 10),
    )


def resnet18() -> nn.Module:
    from torchvision.models import resnet18 as build

    return build(weights=None, num_classes=10)


CASES = [
    # name, model builder, image shape, window, stride, repeats
    ("small_cnn_32px_w4_s2", small_cnn, (3, 32, 32), (3, 4, 4), (3, 2, 2), 7),
    ("small_cnn_32px_w5_s3_per_channel", small_cnn, (3, 32, 32), (1, 5, 5), (1, 3, 3), 7),
    ("resnet18_48px_w8_s4", resnet18, (3, 48, 48), (3, 8, 8), (3, 4, 4), 3),
]


def run_case(name, build, shape, window, stride, repeats, device, speed_gate=True) -> bool:
    torch.manual_seed(0)
    model = build().eval().to(device)
    image = torch.rand(shape).to(device)
    captum = Occlusion(model)

    def ours_fn():
        return occlusion_map(model, image, 3, window, stride, baseline=0.0, batch_size=BATCH)

    def theirs_fn():
        return captum.attribute(
            image[None], sliding_window_shapes=window, strides=stride, baselines=0.0, target=3,
            perturbations_per_eval=BATCH,
        )[0]

    ours_fn(), theirs_fn()  # warm up both (allocator, kernels)
    ours_times, theirs_times = [], []
    for _ in range(repeats):
        t, ours = timed(ours_fn, device)
        ours_times.append(t)
        t, theirs = timed(theirs_fn, device)
        theirs_times.append(t)
    ours_s, theirs_s = statistics.median(ours_times), statistics.median(theirs_times)
    difference = (ours - theirs).abs().max().item()
    scale = theirs.abs().max().item()
    positions = 1
    for n, w, s in zip(shape, window, stride):
        positions *= -(-(n - w) // s) + 1
    print(f"{name}.occlusions: {positions}")
    print(f"{name}.ours_s: {ours_s:.4f}")
    print(f"{name}.captum_s: {theirs_s:.4f}")
    print(f"{name}.ratio_ours_over_captum: {ours_s / theirs_s:.3f}")
    print(f"{name}.max_abs_difference: {difference:.2e}")
    same = difference <= 1e-4 * max(1.0, scale)
    faster = ours_s <= theirs_s * SLACK or not speed_gate
    if not same:
        print(f"{name}.error: the maps differ by {difference:.2e}", file=sys.stderr)
    if not faster:
        print(f"{name}.error: ours is slower than captum", file=sys.stderr)
    return same and faster


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="occlusion_map against captum's Occlusion")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice; 1 gives steadier times on a busy machine)")
    add_device_arguments(parser, "one repeat of the smallest case, no speed check (a smoke run)")
    args = parser.parse_args(argv)
    device = checked_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print_device(device)
    print(f"batch: {BATCH}")
    cases = [(*CASES[0][:5], 1)] if args.quick else CASES
    ok = [run_case(*case, device=device, speed_gate=not args.quick) for case in cases]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
