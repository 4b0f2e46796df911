"""Training throughput of SmallCNN on the CPU, through `course_lib.train.fit` and a plain loop.

    python benchmarks/bench_train_throughput.py

Batches of bundled MNIST test images are prepared in memory first, so the figures time
the model and the loop, not data loading. The peer is a plain PyTorch loop
(zero_grad / forward / backward / step); `fit_vs_plain_loop` is fit's images/s over the
plain loop's (1.0 = no overhead). Prints `name: value` lines, for 1 thread and for
torch's default thread count (on a shared machine the multi-threaded figure is noisy).
"""

from __future__ import annotations

import time

import torch
from torch import nn

from course_lib import data, models, train

BATCH_SIZE = 128
BATCHES = 15
REPEATS = 3
WARMUP = 5


def batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    mnist = data.load_mnist("test")
    x = mnist.images[: BATCH_SIZE * BATCHES].float() / 255  # (N, 1, 28, 28)
    return list(zip(x.split(BATCH_SIZE), mnist.targets[: BATCH_SIZE * BATCHES].split(BATCH_SIZE)))


def plain_loop(model, loader) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    start = time.perf_counter()
    for x, y in loader:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    return len(loader) * BATCH_SIZE / (time.perf_counter() - start)


def with_fit(model, loader) -> float:
    start = time.perf_counter()
    train.fit(model, loader, epochs=1, optimizer="sgd", lr=0.01, device="cpu", progress=False)
    return len(loader) * BATCH_SIZE / (time.perf_counter() - start)


def eval_rate(model, loader) -> float:
    start = time.perf_counter()
    train.predict(model, [x for x, _ in loader])
    return len(loader) * BATCH_SIZE / (time.perf_counter() - start)


def main() -> None:
    torch.manual_seed(0)
    loader = batches()
    backbone = {**models.backbone_manifest()["model"], "num_classes": 10}  # 3 blocks with batch norm
    print(f"batch_size: {BATCH_SIZE}")
    # intra-op threads share the CPU with whatever else runs: 1 thread is the steadier figure
    for threads in sorted({1, torch.get_num_threads()}):
        torch.set_num_threads(threads)
        for name, kwargs in {"smallcnn": {}, "smallcnn_bn3": backbone}.items():
            model = models.SmallCNN(**kwargs)
            plain_loop(model, loader[:WARMUP])
            plain, fitted = 0.0, 0.0
            for _ in range(REPEATS):  # interleaved, best of each: other load hits both alike
                plain = max(plain, plain_loop(model, loader))
                fitted = max(fitted, with_fit(model, loader))
            prefix = f"{name}_threads{threads}"
            print(f"{prefix}_train_images_per_s: {fitted:.0f}")
            print(f"{prefix}_plain_loop_images_per_s: {plain:.0f}")
            print(f"{prefix}_fit_vs_plain_loop: {fitted / plain:.2f}")
            print(f"{prefix}_eval_images_per_s: {eval_rate(model, loader):.0f}")


if __name__ == "__main__":
    main()
