"""Claim: "unclean data may also be good enough": training labels with some noise still
give a useful classifier.

Setup: `SmallCNN(8, 16)` trained with Adam (lr 3e-3, batch 25) for `epochs` passes over
`per_class` MNIST images per class drawn with the seed, of which a fraction (`NOISE`) has
its label replaced by a different class drawn uniformly (`flip_labels`); scored on the clean
fixed test set. Metrics: `test_accuracy` per (noise, seed) and `drop` = clean accuracy -
accuracy at that noise, paired by seed (same images, init and batch order at every level).

"Good enough" needs a margin, fixed here before the full run: the claim holds at a noise
level when the whole 95% interval of the drop lies below `MARGIN` (5 accuracy points).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from course_lib.device import seed_everything
from course_lib.evidence import plotting
from course_lib.evidence._common import draw, mnist_split, score, train
from course_lib.evidence.table import EvidenceTable, Record, run_table
from course_lib.evidence.verdicts import Comparison
from course_lib.models import SmallCNN

NAME = "label_noise"
TITLE = 'Label noise: "unclean data may also be good enough"'
CLAIM = '"Unclean data may also be good enough": a CNN trained with some wrong labels still classifies well.'
NOISE = (0.0, 0.1, 0.2, 0.3, 0.4)
NUM_CLASSES = 10
MARGIN = 0.05


@dataclass(frozen=True)
class Settings:
    per_class: int = 60
    epochs: int = 4
    batch_size: int = 25
    lr: float = 3e-3
    test_size: int = 1000


FULL = Settings()
FAST = replace(FULL, per_class=20, epochs=4, test_size=400)


def flip_labels(y: torch.Tensor, fraction: float, seed: int, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """A copy of labels y (N,) with round(fraction N) of them, chosen at random with `seed`,
    replaced by a different class drawn uniformly."""
    generator = torch.Generator().manual_seed(seed)
    noisy = y.clone()
    chosen = torch.randperm(len(y), generator=generator)[: round(fraction * len(y))]
    shift = torch.randint(1, num_classes, (len(chosen),), generator=generator)  # never 0: always a different class
    noisy[chosen] = (y[chosen] + shift) % num_classes
    return noisy


def condition(fraction: float) -> str:
    return f"{round(100 * fraction)}% wrong"


def run(seeds=range(5), fast: bool = False, device=None) -> EvidenceTable:
    s = FAST if fast else FULL
    split = mnist_split(s.test_size)

    def one_seed(seed: int) -> list[Record]:
        x, y = draw(split.pool, s.per_class, seed)
        accuracy = {}
        for fraction in NOISE:
            seed_everything(seed)
            model = SmallCNN(channels=(8, 16))
            train(model, x, flip_labels(y, fraction, seed), epochs=s.epochs, batch_size=s.batch_size,
                  optimizer="adam", lr=s.lr, seed=seed, device=device)
            accuracy[fraction] = score(model, split.test_x, split.test_y)[1]
        return ([Record(condition(f), seed, "test_accuracy", a) for f, a in accuracy.items()]
                + [Record(condition(f), seed, "drop", accuracy[0.0] - a) for f, a in accuracy.items() if f > 0])

    return run_table(NAME, seeds, one_seed, dict(vars(s), fast=fast, noise=list(NOISE), model="SmallCNN(8, 16)"))


def comparisons(table: EvidenceTable) -> list[Comparison]:
    return [Comparison(f"{condition(f)}: accuracy drop below the {MARGIN:.2f} margin", MARGIN, (condition(f), "drop"))
            for f in NOISE[1:]]


def table_metrics(table: EvidenceTable) -> list[str]:
    return ["test_accuracy", "drop"]


def plot(table: EvidenceTable):
    """Clean test accuracy against the fraction of wrong training labels."""
    fig, (ax,) = plotting.figure(width=5.5)
    xs = [100 * f for f in NOISE]
    for f in NOISE:
        values = table.values(condition(f), "test_accuracy")
        ax.plot([100 * f] * len(values), values, ".", color="grey", alpha=0.4)
    ci = [table.interval(condition(f), "test_accuracy") for f in NOISE]
    ax.errorbar(xs, [c.mean for c in ci], yerr=[[c.mean - c.low for c in ci], [c.high - c.mean for c in ci]],
                fmt="o-", capsize=4)
    ax.set_xlabel("training labels replaced by a wrong class (%)")
    ax.set_ylabel("test accuracy (clean labels)")
    ax.grid(alpha=0.3)
    ax.set_title(f"label noise ({plotting.caption(table)})", fontsize=9)
    return fig
