"""Claim: the optimizer (SGD, momentum, Adam, RMSProp) matters less than its learning rate;
each works in its own range, and too small or too large a rate fails.

Setup: `SmallCNN(8, 16, input_size=8)` on scikit-learn's 8x8 digits (`data.load_digits`,
split once 70/30 with seed 0); every optimizer of `train.make_optimizer` at every learning
rate of `LRS`, `epochs` passes with batch 32 (the seed sets the init and the batch order).
Metric: `test_accuracy` per (optimizer, lr, seed). The comparisons use each optimizer's
lecture default (`train.DEFAULT_LR`: SGD 0.1, momentum 0.01, Adam and RMSProp 1e-3).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from course_lib import data as course_data
from course_lib.device import seed_everything
from course_lib.evidence import plotting
from course_lib.evidence._common import score, train
from course_lib.evidence.table import EvidenceTable, Record, run_table
from course_lib.evidence.verdicts import Comparison
from course_lib.experiment import as_tensors
from course_lib.models import SmallCNN
from course_lib.train import DEFAULT_LR, OPTIMIZERS

NAME = "optimizers"
TITLE = "Optimizers and the learning rate"
CLAIM = ("SGD, momentum, Adam and RMSProp each work in their own range of learning rates; "
         "too small a rate learns too slowly, too large a rate fails.")
LRS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


@dataclass(frozen=True)
class Settings:
    epochs: int = 3
    batch_size: int = 32
    lrs: tuple[float, ...] = LRS


FULL = Settings()
FAST = replace(FULL, epochs=1)


def condition(optimizer: str, lr: float) -> str:
    return f"{optimizer}, lr {lr:g}"


def run(seeds=range(5), fast: bool = False, device=None) -> EvidenceTable:
    s = FAST if fast else FULL
    pool, test = course_data.train_val_split(course_data.load_digits(), val_fraction=0.3, seed=0)
    (x, y), (test_x, test_y) = as_tensors(pool), as_tensors(test)

    def one_seed(seed: int) -> list[Record]:
        records = []
        for optimizer in OPTIMIZERS:
            for lr in s.lrs:
                seed_everything(seed)
                model = SmallCNN(channels=(8, 16), input_size=8)
                train(model, x, y, epochs=s.epochs, batch_size=s.batch_size, optimizer=optimizer, lr=lr, seed=seed,
                      device=device)
                records.append(Record(condition(optimizer, lr), seed, "test_accuracy", score(model, test_x, test_y)[1]))
        return records

    return run_table(NAME, seeds, one_seed, dict(vars(s), fast=fast, train_size=len(y), test_size=len(test_y),
                                                 model="SmallCNN(8, 16, input_size=8)", data="sklearn digits 8x8"))


def comparisons(table: EvidenceTable) -> list[Comparison]:
    lrs = table.setup["lrs"]
    found = []
    for optimizer in OPTIMIZERS:
        default = (condition(optimizer, DEFAULT_LR[optimizer]), "test_accuracy")
        for extreme in (lrs[0], lrs[-1]):
            if extreme != DEFAULT_LR[optimizer]:
                found.append(Comparison(f"{optimizer}: default lr {DEFAULT_LR[optimizer]:g} above lr {extreme:g}",
                                        default, (condition(optimizer, extreme), "test_accuracy")))
    found.append(Comparison("at lr 1e-3: Adam above plain SGD", (condition("adam", 1e-3), "test_accuracy"),
                            (condition("sgd", 1e-3), "test_accuracy")))
    return found


def table_metrics(table: EvidenceTable) -> list[str]:
    return ["test_accuracy"]


def plot(table: EvidenceTable):
    """Test accuracy against the learning rate (log scale), one line per optimizer, 95% bands."""
    fig, (ax,) = plotting.figure(width=6.0)
    lrs = table.setup["lrs"]
    for optimizer in OPTIMIZERS:
        plotting.interval_lines(ax, table, [(condition(optimizer, lr), "test_accuracy") for lr in lrs], lrs,
                                label=optimizer, marker="o")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"8x8 digits, {table.setup['epochs']} epochs ({plotting.caption(table)})", fontsize=9)
    return fig
