"""Claim: data augmentation helps when data is scarce.

Setup: `SmallCNN(8, 16)` trained with Adam (lr 3e-3, batch 20) for a fixed `steps` on
`per_class` MNIST images per class drawn with the seed, without augmentation ("none", the
evaluation transform) and with `augment.pipeline("geometric", 28)` (rotation, shift, zoom,
shear: labels survive; flips would not) applied per image, every time it is drawn. Two data
sizes, `SIZES` images per class. Metrics: `test_accuracy` per (augmentation, size, seed) and
`gain` = geometric - none per (size, seed) (paired: same images, init and batch order).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from course_lib import data as course_data
from course_lib.augment import pipeline
from course_lib.device import seed_everything
from course_lib.evidence import plotting
from course_lib.evidence._common import mnist_split, score
from course_lib.evidence.table import EvidenceTable, Record, run_table
from course_lib.evidence.verdicts import Comparison
from course_lib.models import SmallCNN
from course_lib.train import fit

NAME = "augmentation"
TITLE = "Augmentation helps when data is scarce"
CLAIM = "Data augmentation helps when data is scarce."
AUGMENTS = ("none", "geometric")


@dataclass(frozen=True)
class Settings:
    sizes: tuple[int, ...] = (10, 100)
    steps: int = 150
    batch_size: int = 20
    lr: float = 3e-3
    test_size: int = 1000


FULL = Settings()
FAST = replace(FULL, steps=80, test_size=500)


def condition(augment: str | None, per_class: int) -> str:
    return f"{per_class}/class" if augment is None else f"{augment}, {per_class}/class"


def train_augmented(model, subset: course_data.ImageDataset, augment: str, steps: int, batch_size: int, lr: float,
                    seed: int, device=None):
    """Train on `subset` with the named pipeline applied per image, for `steps` batches in all."""
    subset.transform = pipeline(augment, subset.images.shape[-1])
    generator = torch.Generator().manual_seed(seed)
    sampler = torch.utils.data.RandomSampler(subset, replacement=True, num_samples=steps * batch_size,
                                             generator=generator)
    loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, sampler=sampler)
    return fit(model, loader, epochs=1, optimizer="adam", lr=lr, device=device, progress=False)


def run(seeds=range(5), fast: bool = False, device=None) -> EvidenceTable:
    s = FAST if fast else FULL
    split = mnist_split(s.test_size)

    def one_seed(seed: int) -> list[Record]:
        records = []
        for per_class in s.sizes:
            subset = course_data.small_subset(split.pool, per_class, seed)
            accuracy = {}
            for augment in AUGMENTS:
                seed_everything(seed)
                model = SmallCNN(channels=(8, 16))
                train_augmented(model, subset, augment, s.steps, s.batch_size, s.lr, seed, device)
                accuracy[augment] = score(model, split.test_x, split.test_y)[1]
                records.append(Record(condition(augment, per_class), seed, "test_accuracy", accuracy[augment]))
            records.append(Record(condition(None, per_class), seed, "gain", accuracy["geometric"] - accuracy["none"]))
        return records

    return run_table(NAME, seeds, one_seed, dict(vars(s), fast=fast, model="SmallCNN(8, 16)", optimizer="adam"))


def comparisons(table: EvidenceTable) -> list[Comparison]:
    sizes = table.setup["sizes"]
    found = [Comparison(f"{n} images per class: geometric above none",
                        (condition("geometric", n), "test_accuracy"), (condition("none", n), "test_accuracy"))
             for n in sizes]
    if len(sizes) > 1:
        found.append(Comparison(f"gain larger with {sizes[0]} than with {sizes[-1]} images per class",
                                (condition(None, sizes[0]), "gain"), (condition(None, sizes[-1]), "gain")))
    return found


def table_metrics(table: EvidenceTable) -> list[str]:
    return ["test_accuracy", "gain"]


def plot(table: EvidenceTable):
    """Left: test accuracy per data size, none vs geometric. Right: the paired gain per size."""
    fig, (acc, gain) = plotting.figure(ncols=2)
    sizes = table.setup["sizes"]
    labels = [f"{n} / class" for n in sizes]
    for augment, offset in zip(AUGMENTS, (-0.1, 0.1)):
        plotting.interval_points(acc, table, [condition(augment, n) for n in sizes], "test_accuracy", labels,
                                 offset=offset, label=augment)
    acc.set_ylabel("test accuracy")
    acc.legend(fontsize=8)
    acc.set_title(f"augmentation on little data ({plotting.caption(table)})", fontsize=9)
    plotting.interval_points(gain, table, [condition(None, n) for n in sizes], "gain", labels)
    gain.axhline(0, color="grey", linewidth=1)
    gain.set_ylabel("geometric - none (test accuracy)")
    gain.set_title("gain from augmentation, paired by seed", fontsize=9)
    return fig
