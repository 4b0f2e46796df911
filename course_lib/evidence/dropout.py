"""Claim: dropout narrows the train/test gap, and a higher p regularizes more.

Setup: `SmallCNN(8, 16, dropout=p)` (dropout on the 784 features before the last linear
layer; PyTorch's p = drop probability) for p in `PS`, trained with Adam (lr 1e-3, batch 50)
for `epochs` passes over 30 MNIST images per class drawn with the seed: long enough to fit
the training set. Then, in eval mode: `train_accuracy`, `test_accuracy` (fixed test set),
`accuracy_gap` = train - test accuracy and `loss_gap` = test - train cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise

from course_lib.device import seed_everything
from course_lib.evidence import plotting
from course_lib.evidence._common import draw, mnist_split, score, train
from course_lib.evidence.table import EvidenceTable, Record, run_table
from course_lib.evidence.verdicts import Comparison
from course_lib.models import SmallCNN

NAME = "dropout"
TITLE = "Dropout: a smaller train/test gap, more so for higher p"
CLAIM = "Dropout narrows the train/test gap; a higher dropout probability p regularizes more."
PS = (0.0, 0.5, 0.8)


@dataclass(frozen=True)
class Settings:
    per_class: int = 30
    batch_size: int = 50
    epochs: int = 20
    lr: float = 1e-3
    test_size: int = 1000


FULL = Settings()
FAST = replace(FULL, epochs=8, test_size=500)


def condition(p: float) -> str:
    return f"p={p}"


def run(seeds=range(5), fast: bool = False, device=None) -> EvidenceTable:
    s = FAST if fast else FULL
    split = mnist_split(s.test_size)

    def one_seed(seed: int) -> list[Record]:
        x, y = draw(split.pool, s.per_class, seed)
        records = []
        for p in PS:
            seed_everything(seed)
            model = SmallCNN(channels=(8, 16), dropout=p)
            train(model, x, y, epochs=s.epochs, batch_size=s.batch_size, optimizer="adam", lr=s.lr, seed=seed,
                  device=device)
            train_loss, train_accuracy = score(model, x, y)
            test_loss, test_accuracy = score(model, split.test_x, split.test_y)
            for metric, value in (("train_accuracy", train_accuracy), ("test_accuracy", test_accuracy),
                                  ("accuracy_gap", train_accuracy - test_accuracy),
                                  ("loss_gap", test_loss - train_loss)):
                records.append(Record(condition(p), seed, metric, value))
        return records

    return run_table(NAME, seeds, one_seed, dict(vars(s), fast=fast, ps=list(PS), model="SmallCNN(8, 16)",
                                                 optimizer="adam"))


def comparisons(table: EvidenceTable) -> list[Comparison]:
    found = []
    for metric in ("accuracy_gap", "loss_gap"):
        for low_p, high_p in pairwise(PS):
            found.append(Comparison(f"{metric.replace('_', ' ')}: p={low_p} above p={high_p}",
                                    (condition(low_p), metric), (condition(high_p), metric)))
    return found


def table_metrics(table: EvidenceTable) -> list[str]:
    return ["train_accuracy", "test_accuracy", "accuracy_gap", "loss_gap"]


def plot(table: EvidenceTable):
    """Accuracy gap and loss gap against p, means with 95% intervals."""
    fig, axes = plotting.figure(ncols=2)
    conditions = [condition(p) for p in PS]
    for ax, metric, label in zip(axes, ("accuracy_gap", "loss_gap"),
                                 ("train - test accuracy", "test - train cross-entropy")):
        plotting.interval_points(ax, table, conditions, metric)
        ax.set_xlabel("dropout p (drop probability)")
        ax.set_ylabel(label)
        ax.set_title(f"{label} ({plotting.caption(table)})", fontsize=9)
    return fig
