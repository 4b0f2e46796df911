"""Claim (Razavian et al. 2014): off-the-shelf CNN codes with a linear classifier beat
hand-engineered features, and raw pixels, on a task the network was not trained for.

Setup: the bundled backbone (`models.pretrained_backbone()`, a SmallCNN trained on MNIST
digits 0-4 only) and two tasks it never saw, from `experiment.load_target`: "similar" (MNIST
digits 5-9) and "different" (scikit-image brick / grass / gravel patches). Three feature
sets per image: raw pixels (784), HOG (`skimage.feature.hog`: 9 orientations, 7x7-pixel
cells, 2x2-cell blocks: 324 numbers) and the backbone's codes (the 576 inputs of its last
linear layer, `transfer.extract_features`). The same linear classifier on each
(`transfer.linear_probe`: standardize + logistic regression), trained on `per_class`
labelled images per class drawn with the seed from the target's pool, scored on its fixed
test set. Metric: `test_accuracy` per (target, features, labels per class, seed).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from course_lib import data as course_data
from course_lib.evidence import plotting
from course_lib.evidence.table import EvidenceTable, Record, run_table
from course_lib.evidence.verdicts import Comparison
from course_lib.experiment import Batches, as_tensors, load_target
from course_lib.models import pretrained_backbone
from course_lib.transfer import extract_features, linear_probe

NAME = "razavian"
TITLE = "CNN codes against hand-engineered features and raw pixels (Razavian et al. 2014)"
CLAIM = ("CNN features off the shelf, with a linear classifier, beat hand-engineered features (and raw pixels) "
         "on a task the network was not trained for.")
FEATURES = ("pixels", "HOG", "CNN codes")
TARGETS = ("similar", "different")
TARGET_LABELS = {"similar": "MNIST 5-9", "different": "textures"}


@dataclass(frozen=True)
class Settings:
    sizes: tuple[int, ...] = (10, 50)
    targets: tuple[str, ...] = TARGETS
    test_per_class: int | None = None  # None: the target's whole test set


FULL = Settings()
FAST = replace(FULL, sizes=(10,), test_per_class=60)


def hog_features(images: torch.Tensor) -> np.ndarray:
    """HOG of each (1, 28, 28) image: (N, 324) (9 orientations, 7x7 cells, 2x2-cell blocks)."""
    from skimage.feature import hog

    return np.stack([hog(image[0].numpy(), orientations=9, pixels_per_cell=(7, 7), cells_per_block=(2, 2))
                     for image in images])


def feature_sets(x: torch.Tensor, y: torch.Tensor, backbone) -> dict[str, np.ndarray]:
    """The three feature sets of images x (N, 1, 28, 28): name -> (N, D) array."""
    codes, _ = extract_features(backbone, Batches(x, y, 500, shuffle=False))
    return {"pixels": x.flatten(1).numpy(), "HOG": hog_features(x), "CNN codes": codes.numpy()}


def condition(target: str, features: str, per_class: int) -> str:
    return f"{TARGET_LABELS[target]}, {features}, {per_class}/class"


def run(seeds=range(5), fast: bool = False, device=None) -> EvidenceTable:
    s = FAST if fast else FULL
    backbone = pretrained_backbone(map_location="cpu")
    prepared = {}
    for target in s.targets:
        data = load_target(target, s.test_per_class)
        pool_x, pool_y = as_tensors(data.pool)
        test_x, test_y = as_tensors(data.test)
        prepared[target] = (data.pool, feature_sets(pool_x, pool_y, backbone), feature_sets(test_x, test_y, backbone),
                            test_y.numpy())

    def one_seed(seed: int) -> list[Record]:
        records = []
        for target, (pool, pool_features, test_features, test_y) in prepared.items():
            for n in s.sizes:
                rows = _subset_rows(pool, n, seed)
                labels = pool.targets.numpy()[rows]
                for name in FEATURES:
                    probe = linear_probe(pool_features[name][rows], labels, test_features[name], test_y)
                    records.append(Record(condition(target, name, n), seed, "test_accuracy", probe.test_accuracy))
        return records

    return run_table(NAME, seeds, one_seed, dict(vars(s), fast=fast, features=list(FEATURES),
                                                 backbone="bundled SmallCNN, MNIST digits 0-4"))


def _subset_rows(pool: course_data.ImageDataset, per_class: int, seed: int) -> np.ndarray:
    """The rows `data.small_subset(pool, per_class, seed)` picks, as indices into the pool."""
    chosen, _ = course_data.stratified_split(pool.targets.numpy(), per_class, seed)
    return np.sort(np.concatenate(chosen))


def comparisons(table: EvidenceTable) -> list[Comparison]:
    found = []
    for target in table.setup["targets"]:
        for n in table.setup["sizes"]:
            codes = (condition(target, "CNN codes", n), "test_accuracy")
            found.append(Comparison(f"{TARGET_LABELS[target]}, {n}/class: CNN codes above HOG", codes,
                                    (condition(target, "HOG", n), "test_accuracy")))
            found.append(Comparison(f"{TARGET_LABELS[target]}, {n}/class: CNN codes above pixels", codes,
                                    (condition(target, "pixels", n), "test_accuracy")))
    return found


def table_metrics(table: EvidenceTable) -> list[str]:
    return ["test_accuracy"]


def plot(table: EvidenceTable):
    """Test accuracy per feature set and labelled-set size, one panel per target."""
    targets = table.setup["targets"]
    fig, axes = plotting.figure(ncols=len(targets))
    sizes = table.setup["sizes"]
    for ax, target in zip(axes, targets):
        for name, offset in zip(FEATURES, (-0.15, 0.0, 0.15)):
            plotting.interval_points(ax, table, [condition(target, name, n) for n in sizes], "test_accuracy",
                                     [f"{n} / class" for n in sizes], offset=offset, label=name)
        ax.set_ylabel("test accuracy, linear classifier")
        ax.set_title(f"{TARGET_LABELS[target]} (backbone saw digits 0-4; {plotting.caption(table)})", fontsize=8)
        ax.legend(fontsize=8)
    return fig
