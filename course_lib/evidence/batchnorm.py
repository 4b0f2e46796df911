"""Claim: batch norm trains in fewer steps and is less sensitive to initialization.

Setup: a three-block `SmallCNN` (8, 16, 16 channels) with and without batch norm, plain
SGD (lr 0.1, batch 20) on 40 MNIST images per class drawn with the seed, three
initializations: PyTorch's default, He (`kaiming_normal`) and a too-small N(0, 0.01^2)
(`initialization.init_`). Held-out accuracy (the first `val_size` test images) is measured after
every epoch (20 steps); the last is `final_accuracy`. Metrics per (batch norm, init, seed): `accuracy_step_<k>` and
`final_accuracy`; per (batch norm, seed): `init_range`, the largest minus the smallest final
accuracy over the three initializations (smaller = less sensitive).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from course_lib.device import seed_everything
from course_lib.evidence import plotting
from course_lib.evidence._common import draw, mnist_split, train
from course_lib.evidence.table import EvidenceTable, Record, run_table
from course_lib.evidence.verdicts import Comparison
from course_lib.initialization import init_
from course_lib.models import SmallCNN

NAME = "batchnorm"
TITLE = "Batch normalization: fewer steps, less sensitive to initialization"
CLAIM = "Batch norm trains in fewer steps and is less sensitive to initialization."
INITS = ("default", "kaiming_normal", "normal")
INIT_LABELS = {"default": "PyTorch default", "kaiming_normal": "He", "normal": "N(0, 0.01^2)"}


@dataclass(frozen=True)
class Settings:
    per_class: int = 40
    batch_size: int = 20
    epochs: int = 4
    lr: float = 0.1
    val_size: int = 300
    early_epoch: int = 2  # the "fewer steps" comparison reads accuracy after this many epochs


FULL = Settings()
FAST = replace(FULL, per_class=20, batch_size=10, epochs=2, val_size=200)


def condition(batch_norm: bool, init: str | None = None) -> str:
    name = "BN" if batch_norm else "no BN"
    return name if init is None else f"{name}, {init}"


def steps_per_epoch(s: Settings) -> int:
    return -(-10 * s.per_class // s.batch_size)


def run(seeds=range(5), fast: bool = False, device=None) -> EvidenceTable:
    s = FAST if fast else FULL
    split = mnist_split(s.val_size)

    def one_seed(seed: int) -> list[Record]:
        x, y = draw(split.pool, s.per_class, seed)
        records = []
        for batch_norm in (False, True):
            finals = []
            for init in INITS:
                seed_everything(seed)
                model = SmallCNN(channels=(8, 16, 16), batch_norm=batch_norm)
                if init != "default":
                    init_(model, init, std=0.01)
                history = train(model, x, y, epochs=s.epochs, batch_size=s.batch_size, optimizer="sgd", lr=s.lr,
                                seed=seed, val=(split.test_x, split.test_y), device=device)
                name = condition(batch_norm, init)
                for epoch, accuracy in enumerate(history.val_accuracy, 1):
                    records.append(Record(name, seed, f"accuracy_step_{epoch * steps_per_epoch(s)}", accuracy))
                records.append(Record(name, seed, "final_accuracy", history.val_accuracy[-1]))
                finals.append(history.val_accuracy[-1])
            records.append(Record(condition(batch_norm), seed, "init_range", max(finals) - min(finals)))
        return records

    return run_table(NAME, seeds, one_seed, dict(vars(s), fast=fast, steps_per_epoch=steps_per_epoch(s),
                                                 model="SmallCNN(8, 16, 16)", optimizer="sgd"))


def comparisons(table: EvidenceTable) -> list[Comparison]:
    early = f"accuracy_step_{table.setup['early_epoch'] * table.setup['steps_per_epoch']}"
    found = [Comparison(f"early held-out accuracy, {INIT_LABELS[init]} init: BN above no BN",
                        (condition(True, init), early), (condition(False, init), early)) for init in INITS]
    found.append(Comparison("spread of final accuracy over the three inits: no BN above BN",
                            (condition(False), "init_range"), (condition(True), "init_range")))
    return found


def table_metrics(table: EvidenceTable) -> list[str]:
    early = f"accuracy_step_{table.setup['early_epoch'] * table.setup['steps_per_epoch']}"
    return [early, "final_accuracy", "init_range"]


def plot(table: EvidenceTable):
    """Left: held-out accuracy against steps per (BN, init), 95% bands. Right: init_range."""
    fig, (curves, spread) = plotting.figure(ncols=2)
    per_epoch = table.setup["steps_per_epoch"]
    steps = [per_epoch * e for e in range(1, table.setup["epochs"] + 1)]
    for batch_norm, style in ((False, "--"), (True, "-")):
        for init, color in zip(INITS, ("tab:blue", "tab:orange", "tab:green")):
            plotting.interval_lines(curves, table, [(condition(batch_norm, init), f"accuracy_step_{k}") for k in steps],
                                    steps, label=f"{condition(batch_norm)}, {INIT_LABELS[init]}", linestyle=style,
                                    marker="o", color=color)
    curves.set_xlabel("SGD steps")
    curves.set_ylabel("held-out accuracy")
    curves.legend(fontsize=7)
    curves.grid(alpha=0.3)
    curves.set_title(f"training curves ({plotting.caption(table)})", fontsize=9)
    plotting.interval_points(spread, table, [condition(False), condition(True)], "init_range")
    spread.set_ylabel("best - worst final accuracy over 3 inits")
    spread.set_title("sensitivity to initialization (lower = less)", fontsize=9)
    return fig
