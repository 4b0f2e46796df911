"""Claim: W = 0 fails; gradient magnitudes by depth depend on the initialization.

Setup: `initialization.deep_mlp(10, 128, "relu", in_features=784, out_features=10)` on
flattened MNIST digits, initialized by `init_` with each scheme: zero, N(0, 0.01^2) ("too
small"), Xavier (normal) and He (`kaiming_normal`); biases zero. Per seed (the draws and the
images): the Frobenius norm of each hidden layer's weight gradient for the cross-entropy of
one batch of `grad_batch` images (`grad_fc<k>`), then training for `epochs` passes (SGD with
momentum 0.9, lr 0.01, batch 50) on `per_class` images per class and `test_accuracy`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from course_lib.device import seed_everything
from course_lib.evidence import plotting
from course_lib.evidence._common import draw, mnist_split, score, train
from course_lib.evidence.table import EvidenceTable, Record, run_table
from course_lib.evidence.verdicts import Comparison
from course_lib.initialization import deep_mlp, init_

NAME = "init_gradients"
TITLE = "Initialization: W = 0 fails; gradient size by depth depends on the scheme"
CLAIM = "W = 0 fails; gradient magnitudes by depth depend on the initialization (zero, too small, Xavier, He)."
SCHEMES = ("zero", "normal", "xavier_normal", "kaiming_normal")
LABELS = {"zero": "zero", "normal": "N(0, 0.01^2)", "xavier_normal": "Xavier", "kaiming_normal": "He"}
DEPTH, WIDTH = 10, 128


@dataclass(frozen=True)
class Settings:
    per_class: int = 100
    epochs: int = 4
    batch_size: int = 50
    lr: float = 0.01
    grad_batch: int = 256
    test_size: int = 1000


FULL = Settings()
FAST = replace(FULL, per_class=30, epochs=3, test_size=300)


def flat_mlp() -> nn.Sequential:
    """Flatten (N, 1, 28, 28) -> (N, 784), then the deep ReLU MLP."""
    return nn.Sequential(nn.Flatten(), deep_mlp(DEPTH, WIDTH, "relu", in_features=784, out_features=10))


def gradient_norms(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Frobenius norm of each hidden layer's weight gradient (fc1 .. fcDEPTH) for one batch."""
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    mlp = model[1]
    return [getattr(mlp, f"fc{k}").weight.grad.norm().item() for k in range(1, DEPTH + 1)]


def run(seeds=range(5), fast: bool = False, device=None) -> EvidenceTable:
    s = FAST if fast else FULL
    split = mnist_split(s.test_size)

    def one_seed(seed: int) -> list[Record]:
        x, y = draw(split.pool, s.per_class, seed)
        records = []
        for scheme in SCHEMES:
            seed_everything(seed)
            model = init_(flat_mlp(), scheme, std=0.01)
            for k, norm in enumerate(gradient_norms(model, x[: s.grad_batch], y[: s.grad_batch]), 1):
                records.append(Record(scheme, seed, f"grad_fc{k}", norm))
            train(model, x, y, epochs=s.epochs, batch_size=s.batch_size, optimizer="momentum", lr=s.lr,
                  seed=seed, device=device)
            records.append(Record(scheme, seed, "test_accuracy", score(model, split.test_x, split.test_y)[1]))
        return records

    return run_table(NAME, seeds, one_seed, dict(vars(s), fast=fast, depth=DEPTH, width=WIDTH, optimizer="momentum"))


def comparisons(table: EvidenceTable) -> list[Comparison]:
    return [
        Comparison("test accuracy: He above zero init (W = 0 fails)",
                   ("kaiming_normal", "test_accuracy"), ("zero", "test_accuracy")),
        Comparison("test accuracy: He above N(0, 0.01^2)",
                   ("kaiming_normal", "test_accuracy"), ("normal", "test_accuracy")),
        Comparison("gradient norm at layer 1: He above Xavier",
                   ("kaiming_normal", "grad_fc1"), ("xavier_normal", "grad_fc1")),
        Comparison("gradient norm at layer 1: Xavier above N(0, 0.01^2)",
                   ("xavier_normal", "grad_fc1"), ("normal", "grad_fc1")),
    ]


def table_metrics(table: EvidenceTable) -> list[str]:
    return ["grad_fc1", f"grad_fc{DEPTH // 2}", f"grad_fc{DEPTH}", "test_accuracy"]


def plot(table: EvidenceTable):
    """Left: weight-gradient norm by layer per scheme (log scale; zero init is exactly 0 and
    is drawn as a note). Right: test accuracy after training per scheme."""
    fig, (grads, acc) = plotting.figure(ncols=2)
    layers = list(range(1, DEPTH + 1))
    for scheme in SCHEMES[1:]:
        plotting.interval_lines(grads, table, [(scheme, f"grad_fc{k}") for k in layers], layers, label=LABELS[scheme],
                                marker="o")
    zero_max = max(max(table.values("zero", f"grad_fc{k}")) for k in layers)
    grads.set_yscale("log")
    grads.set_xlabel("hidden layer")
    grads.set_ylabel("|| dL/dW ||")
    grads.set_title(f"weight gradients by depth (zero init: all {zero_max:g})", fontsize=9)
    grads.legend(fontsize=8)
    grads.grid(alpha=0.3)
    plotting.interval_points(acc, table, list(SCHEMES), "test_accuracy", [LABELS[s] for s in SCHEMES])
    acc.set_ylabel("test accuracy after training")
    acc.set_title(f"10-layer ReLU MLP ({plotting.caption(table)})", fontsize=9)
    return fig
