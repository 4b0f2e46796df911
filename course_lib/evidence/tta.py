"""Claim: test-time augmentation (flips, multiple scales, ten crops) improves accuracy.

Setup: per seed, two `SmallCNN(8, 16)` models trained as in `augmentation` (Adam, lr 3e-3,
batch 20, `steps` steps on `per_class` MNIST images per class), one without augmentation
("none") and one with `pipeline("geometric")`. Each is scored on the fixed test set with one
view and with `augment.tta_predict` (logits averaged over views): "flip" (image + mirror),
"multiscale" (zoom 1.0, 1.15, 1.3, centre-cropped back) and "tencrop" (the digits padded to
32x32 with background, then torchvision's ten 28x28 crops: four corners + centre, and the
same of the mirror image). Metrics: `accuracy` per (model, view, seed) and `gain` = TTA -
single view per (model, view, seed), paired on the same model.

Expectation before running: mirroring does not keep a digit's label (a mirrored 2 is not a
2), so flip and ten-crop (half of its views mirrored) should hurt on digits; multiscale can
help only a model that saw zooms in training.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch.nn.functional as F

from course_lib import data as course_data
from course_lib.augment import TTA_VIEWS, tta_predict
from course_lib.device import seed_everything
from course_lib.evidence import plotting
from course_lib.evidence._common import mnist_split
from course_lib.evidence.augmentation import train_augmented
from course_lib.evidence.table import EvidenceTable, Record, run_table
from course_lib.evidence.verdicts import Comparison
from course_lib.models import SmallCNN
from course_lib.train import predict

NAME = "tta"
TITLE = "Test-time augmentation: flip, multiscale, ten-crop"
CLAIM = "Test-time augmentation (averaging over flipped, rescaled and cropped views) improves accuracy."
MODELS = ("none", "geometric")
PAD = 2  # ten-crop: pad 28x28 digits to 32x32, crop 28x28


@dataclass(frozen=True)
class Settings:
    per_class: int = 50
    steps: int = 150
    batch_size: int = 20
    lr: float = 3e-3
    test_size: int = 1000


FULL = Settings()
FAST = replace(FULL, per_class=20, steps=80, test_size=400)


def condition(model: str, view: str) -> str:
    return f"{model}-trained, {view}"


def tta_accuracies(model, x, y) -> dict[str, float]:
    """Accuracy of `model` on (x (N, 1, 28, 28), y) with one view and with each TTA view."""
    model.eval()
    accuracy = {"single view": (predict(model, x).argmax(1) == y).float().mean().item()}
    for view in TTA_VIEWS:
        images, options = (F.pad(x, (PAD,) * 4), {"crop_size": x.shape[-1]}) if view == "tencrop" else (x, {})
        accuracy[view] = (tta_predict(model, images, view, **options).argmax(1) == y).float().mean().item()
    return accuracy


def run(seeds=range(5), fast: bool = False, device=None) -> EvidenceTable:
    s = FAST if fast else FULL
    split = mnist_split(s.test_size)

    def one_seed(seed: int) -> list[Record]:
        subset = course_data.small_subset(split.pool, s.per_class, seed)
        records = []
        for trained_with in MODELS:
            seed_everything(seed)
            model = SmallCNN(channels=(8, 16))
            train_augmented(model, subset, trained_with, s.steps, s.batch_size, s.lr, seed, device)
            accuracy = tta_accuracies(model, split.test_x.to(device), split.test_y.to(device))
            for view, value in accuracy.items():
                records.append(Record(condition(trained_with, view), seed, "accuracy", value))
                if view != "single view":
                    records.append(Record(condition(trained_with, view), seed, "gain", value - accuracy["single view"]))
        return records

    return run_table(NAME, seeds, one_seed, dict(vars(s), fast=fast, model="SmallCNN(8, 16)", views=list(TTA_VIEWS)))


def comparisons(table: EvidenceTable) -> list[Comparison]:
    return [Comparison(f"{trained}-trained model: {view} TTA above a single view",
                       (condition(trained, view), "accuracy"), (condition(trained, "single view"), "accuracy"))
            for trained in MODELS for view in TTA_VIEWS]


def table_metrics(table: EvidenceTable) -> list[str]:
    return ["accuracy", "gain"]


def plot(table: EvidenceTable):
    """The gain of each TTA view over a single view, per training, with 95% intervals."""
    fig, (ax,) = plotting.figure(width=6.0)
    for trained, offset in zip(MODELS, (-0.1, 0.1)):
        plotting.interval_points(ax, table, [condition(trained, v) for v in TTA_VIEWS], "gain", list(TTA_VIEWS),
                                 offset=offset, label=f"trained with {trained}")
    ax.axhline(0, color="grey", linewidth=1)
    ax.set_ylabel("TTA accuracy - single-view accuracy")
    ax.legend(fontsize=8)
    ax.set_title(f"test-time augmentation on MNIST digits ({plotting.caption(table)})", fontsize=9)
    return fig
