"""Claim: trained first-layer filters are smooth; noisy filters mean the network needs more training.

Setup: a CNN whose first layer has 16 filters of 7x7 (large enough to see noise or structure):
conv 7x7 (1 -> 16, padding 3) + ReLU, 2x2 max-pool, conv 3x3 (16 -> 16) + ReLU, 2x2 max-pool,
linear. PyTorch's default initialization; one training run per seed with Adam (lr 1e-3, batch 25)
on `per_class` MNIST images per class drawn with the seed, measured after each number of
`steps` (0 = untrained). Metrics:
`roughness` of the first layer (`roughness`: 1 for white noise, 0 for a constant filter) and
`test_accuracy` on the fixed test set.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, replace

import torch
from torch import nn

from course_lib.device import seed_everything
from course_lib.evidence import plotting
from course_lib.evidence._common import draw, mnist_split, score
from course_lib.evidence.table import EvidenceTable, Record, run_table
from course_lib.evidence.verdicts import Comparison
from course_lib.experiment import Batches

NAME = "first_filters"
TITLE = "First-layer filters: noisy until trained"
CLAIM = "Trained first-layer filters are smooth and structured; noisy filters mean the network needs more training."
KERNEL, FILTERS = 7, 16


@dataclass(frozen=True)
class Settings:
    per_class: int = 100
    steps: tuple[int, ...] = (0, 50, 400)
    batch_size: int = 25
    lr: float = 1e-3
    test_size: int = 1000


FULL = Settings()
FAST = replace(FULL, per_class=30, steps=(0, 20, 120), test_size=300)


def build() -> nn.Sequential:
    """(N, 1, 28, 28) -> (N, 10); the first layer has FILTERS filters of KERNEL x KERNEL."""
    return nn.Sequential(nn.Conv2d(1, FILTERS, KERNEL, padding=KERNEL // 2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(FILTERS, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(16 * 7 * 7, 10))


def roughness(weight: torch.Tensor) -> float:
    """Mean squared difference of neighbouring weights over twice the weights' variance, averaged
    over filters: about 1 for independent noise, near 0 for smooth filters. weight: (F, C, k, k)."""
    w = weight.detach().double()
    w = w - w.mean(dim=(1, 2, 3), keepdim=True)
    down, right = w[..., 1:, :] - w[..., :-1, :], w[..., :, 1:] - w[..., :, :-1]
    neighbours = torch.cat([down.flatten(1), right.flatten(1)], 1)
    return ((neighbours ** 2).mean(1) / (2 * (w ** 2).mean(dim=(1, 2, 3)))).mean().item()


def snapshots(seed: int, x: torch.Tensor, y: torch.Tensor, s: Settings, device=None) -> dict[int, nn.Sequential]:
    """Copies of one model (the seed's initialization, in eval mode) after each of `s.steps` Adam
    steps over shuffled batches of (x (N, 1, 28, 28), y (N,)), keyed by the number of steps."""
    seed_everything(seed)
    model = build().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=s.lr)
    batches = itertools.chain.from_iterable(itertools.repeat(Batches(x, y, s.batch_size, shuffle=True, seed=seed)))
    taken = {0: copy.deepcopy(model).eval()} if 0 in s.steps else {}
    for step, (xb, yb) in enumerate(itertools.islice(batches, max(s.steps)), 1):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(xb.to(device)), yb.to(device)).backward()
        optimizer.step()
        if step in s.steps:
            taken[step] = copy.deepcopy(model).eval()
    return taken


def condition(steps: int) -> str:
    return f"{steps} steps"


def measure(seed: int, s: Settings, split, device=None) -> tuple[list[Record], dict[int, torch.Tensor]]:
    """One seed's records and its first-layer weights (FILTERS, 1, KERNEL, KERNEL) after each number of steps."""
    x, y = draw(split.pool, s.per_class, seed)
    records, weights = [], {}
    for steps, model in snapshots(seed, x, y, s, device).items():
        weights[steps] = model[0].weight.detach().cpu().clone()
        records += [Record(condition(steps), seed, "roughness", roughness(model[0].weight)),
                    Record(condition(steps), seed, "test_accuracy", score(model, split.test_x, split.test_y)[1])]
    return records, weights


def run(seeds=range(5), fast: bool = False, device=None) -> EvidenceTable:
    return run_with_filters(seeds, fast, device)[0]


def run_with_filters(seeds=(0,), fast: bool = True,
                     device=None) -> tuple[EvidenceTable, dict[int, dict[int, torch.Tensor]]]:
    """`run`'s table and, per seed, the first-layer weights after each number of steps (for pictures)."""
    s = FAST if fast else FULL
    split = mnist_split(s.test_size)
    weights = {}

    def one_seed(seed: int) -> list[Record]:
        records, weights[seed] = measure(seed, s, split, device)
        return records

    table = run_table(NAME, seeds, one_seed, dict(vars(s), fast=fast, kernel=KERNEL, filters=FILTERS))
    return table, weights


def comparisons(table: EvidenceTable) -> list[Comparison]:
    steps = table.setup["steps"]
    return [Comparison("roughness: untrained above briefly trained", (condition(steps[0]), "roughness"),
                       (condition(steps[1]), "roughness")),
            Comparison("roughness: briefly trained above trained longer", (condition(steps[1]), "roughness"),
                       (condition(steps[2]), "roughness"))]


def table_metrics(table: EvidenceTable) -> list[str]:
    return ["roughness", "test_accuracy"]


def plot(table: EvidenceTable):
    """Roughness of the first-layer filters and test accuracy against training steps."""
    fig, (rough, acc) = plotting.figure(ncols=2, width=4.2)
    conditions = [condition(n) for n in table.setup["steps"]]
    plotting.interval_points(rough, table, conditions, "roughness")
    rough.axhline(1.0, color="grey", linestyle=":", label="white noise")
    rough.set_ylabel("roughness of first-layer filters")
    rough.legend(fontsize=8)
    rough.set_title(f"{FILTERS} filters {KERNEL}x{KERNEL} ({plotting.caption(table)})", fontsize=9)
    plotting.interval_points(acc, table, conditions, "test_accuracy")
    acc.set_ylabel("test accuracy")
    return fig


def plot_filters(weights: dict[int, torch.Tensor], max_filters: int = FILTERS):
    """One row per number of training steps: the first-layer filters (F, 1, k, k), each scaled to its own
    range (grey = 0 for a symmetric range), with the row's roughness."""
    rows = list(weights.items())
    fig, axes = plotting.figure(ncols=1, width=0.6 * max_filters, height=0.75 * len(rows) + 0.4)
    axes[0].remove()
    grid = fig.subplots(len(rows), max_filters, squeeze=False)
    for row, (steps, w) in zip(grid, rows):
        for ax, kernel in zip(row, w[:max_filters, 0]):
            limit = kernel.abs().max().item() or 1.0
            ax.imshow(kernel.numpy(), cmap="gray", vmin=-limit, vmax=limit)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(f"{steps} steps\nrough {roughness(w):.2f}", fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(f"first-layer {KERNEL}x{KERNEL} filters during training (roughness 1 = white noise)", fontsize=9)
    return fig
