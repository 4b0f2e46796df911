"""LoRA against full fine-tuning: trainable parameters and time per training step.

    python benchmarks/bench_lora.py [--device cuda] [--quick]

Two small CNNs, both measured in this one process on one device (random data, SGD; the
two variants are timed in alternation, median of 5 steps each after one warm-up):
a conv net on 1x28x28 (MNIST-sized) and torchvision's resnet18 (weights=None) on
3x64x64. LoRA (rank 8, alpha 8) wraps every Conv2d and Linear; everything else is
frozen. Prints `name: value` lines; `lora_step_ratio_<model>` is the LoRA step time
divided by the full fine-tuning step time (below 1 means LoRA steps are faster).
A LoRA step still back-propagates through the whole frozen network (the gradient must
reach the early adapters), so the saving is in weight gradients and optimizer state,
not in the backward pass itself. On a GPU these batches are small: the step times there
say more about per-kernel launch cost than about arithmetic.
"""

import argparse
import statistics

import torch
import torch.nn.functional as F
from _timing import add_device_arguments, checked_device, print_device, timed
from torch import nn
from torchvision.models import resnet18

from course_lib.transfer import apply_lora, trainable_parameters

RANK = 8


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )


MODELS = {  # name: (builder, input batch shape)
    "small_cnn": (small_cnn, (32, 1, 28, 28)),
    "resnet18": (lambda: resnet18(weights=None, num_classes=10), (8, 3, 64, 64)),
}
QUICK_MODELS = ("small_cnn",)


def step_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """One SGD training step (forward, backward, update) on the trainable parameters."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    model.train()

    def step():
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step


def paired_median_seconds(first, second, device, repeats=5, warmup=1):
    """Median seconds of each function, timed in alternation so load changes hit both alike."""
    for _ in range(warmup):
        first(), second()
    times = ([], [])
    for _ in range(repeats):
        for fn, record in zip((first, second), times):
            record.append(timed(fn, device)[0])
    return statistics.median(times[0]), statistics.median(times[1])


def main(argv=None):
    parser = argparse.ArgumentParser(description="LoRA against full fine-tuning, time per step")
    add_device_arguments(parser, "only the small CNN, 1 step each (a smoke run, not a measurement)")
    args = parser.parse_args(argv)
    device = checked_device(args.device)
    repeats = 1 if args.quick else 5
    print_device(device)
    print(f"lora_rank: {RANK}")
    for name, (build, shape) in MODELS.items():
        if args.quick and name not in QUICK_MODELS:
            continue
        torch.manual_seed(0)
        x, y = torch.randn(shape).to(device), torch.randint(0, 10, (shape[0],)).to(device)
        full = build().to(device)
        lora = apply_lora(build(), RANK, alpha=RANK, target_modules=(nn.Conv2d, nn.Linear)).to(device)
        full_params, lora_params = trainable_parameters(full), trainable_parameters(lora)
        full_s, lora_s = paired_median_seconds(step_fn(full, x, y), step_fn(lora, x, y), device, repeats)
        print(f"input_{name}: {'x'.join(map(str, shape))}")
        print(f"full_trainable_params_{name}: {full_params}")
        print(f"lora_trainable_params_{name}: {lora_params}")
        print(f"lora_trainable_fraction_{name}: {lora_params / full_params:.4f}")
        print(f"full_step_ms_{name}: {full_s * 1e3:.2f}")
        print(f"lora_step_ms_{name}: {lora_s * 1e3:.2f}")
        print(f"lora_step_ratio_{name}: {lora_s / full_s:.2f}")


if __name__ == "__main__":
    main()
