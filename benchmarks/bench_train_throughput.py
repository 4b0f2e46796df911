"""Training throughput of SmallCNN through `course_lib.train.fit` and a plain loop.

    python benchmarks/bench_train_throughput.py [--device cuda] [--quick]

Batches of bundled MNIST test images are prepared in memory (on the device) first, so the
figures time the model and the loop, not data loading. The peer is a plain PyTorch loop
(zero_grad / forward / backward / step); `fit_vs_plain_loop` is fit's images/s over the
plain loop's (1.0 = no overhead), both in float32 (`fit(amp=False)`). On CUDA, `fit`'s
default mixed precision is timed as well (`fit_amp_train_images_per_s`). Prints
`name: value` lines; on the CPU for 1 thread and for torch's default thread count (on a
shared machine the multi-threaded figure is noisy).
"""

from __future__ import annotations

import argparse

import torch
from _timing import (
    add_device_arguments,
    checked_device,
    print_device,
    synchronize,
    timed,
)
from torch import nn

from course_lib import data, models, train

BATCH_SIZE = 128
BATCHES = 15
REPEATS = 3
WARMUP = 5


def batches(device, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`count` batches (x (B, 1, 28, 28) float in [0, 1], y (B,)) of MNIST test images on `device`."""
    mnist = data.load_mnist("test")
    x = mnist.images[: BATCH_SIZE * count].float() / 255  # (N, 1, 28, 28)
    y = mnist.targets[: BATCH_SIZE * count]
    return list(zip(x.to(device).split(BATCH_SIZE), y.to(device).split(BATCH_SIZE)))


def plain_loop(model, loader, device) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    model.train()

    def epoch():
        for x, y in loader:
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()

    return len(loader) * BATCH_SIZE / timed(epoch, device)[0]


def with_fit(model, loader, device, amp=False) -> float:
    def run():
        return train.fit(model, loader, epochs=1, optimizer="sgd", lr=0.01, device=device, amp=amp, progress=False)

    return len(loader) * BATCH_SIZE / timed(run, device)[0]


def eval_rate(model, loader, device) -> float:
    def run():
        return train.predict(model, [x for x, _ in loader])

    return len(loader) * BATCH_SIZE / timed(run, device)[0]


def measure(name: str, model: nn.Module, loader, device, repeats: int) -> None:
    model.to(device)
    plain_loop(model, loader[:WARMUP], device)
    plain, fitted, amp = 0.0, 0.0, 0.0
    for _ in range(repeats):  # interleaved, best of each: other load hits both alike
        plain = max(plain, plain_loop(model, loader, device))
        fitted = max(fitted, with_fit(model, loader, device))
        if device.type == "cuda":
            amp = max(amp, with_fit(model, loader, device, amp=True))
    synchronize(device)
    print(f"{name}_train_images_per_s: {fitted:.0f}")
    print(f"{name}_plain_loop_images_per_s: {plain:.0f}")
    print(f"{name}_fit_vs_plain_loop: {fitted / plain:.2f}")
    if device.type == "cuda":
        print(f"{name}_fit_amp_train_images_per_s: {amp:.0f}")
    print(f"{name}_eval_images_per_s: {eval_rate(model, loader, device):.0f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="fit against a plain PyTorch loop, images per second")
    add_device_arguments(parser, "2 batches, 1 repeat, 1 thread (a smoke run, not a measurement)")
    args = parser.parse_args(argv)
    device = checked_device(args.device)
    count, repeats = (2, 1) if args.quick else (BATCHES, REPEATS)
    torch.manual_seed(0)
    loader = batches(device, count)
    backbone = {**models.backbone_manifest()["model"], "num_classes": 10}  # 3 blocks with batch norm
    print_device(device)
    print(f"batch_size: {BATCH_SIZE}")
    print(f"batches: {count}")
    # intra-op threads share the CPU with whatever else runs: 1 thread is the steadier figure
    if args.quick:
        thread_counts = [1]
    elif device.type == "cuda":
        thread_counts = [torch.get_num_threads()]
    else:
        thread_counts = sorted({1, torch.get_num_threads()})
    for threads in thread_counts:
        torch.set_num_threads(threads)
        for name, kwargs in {"smallcnn": {}, "smallcnn_bn3": backbone}.items():
            prefix = name if device.type == "cuda" else f"{name}_threads{threads}"
            measure(prefix, models.SmallCNN(**kwargs), loader, device, repeats)


if __name__ == "__main__":
    main()
