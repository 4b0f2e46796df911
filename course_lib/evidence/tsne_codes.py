"""Claim: a t-SNE map of CNN codes groups images by meaning, "rather than pixels".

Setup: per seed, `per_class` digits per class drawn with the seed from the MNIST digits the
bundled backbone never trained on: "held-out 0-4" (its own classes) and "unseen 5-9" (new
classes). Two representations of the same images: raw pixels (784) and the backbone's codes
(576, `visualize.embed`). Each is mapped to 2-D by `visualize.tsne` (PCA to 50 first, seed
= the run's seed). Metrics: `knn_space` and `knn_map`, the leave-one-out 5-NN accuracy of the
digit labels in the representation and in its map (`visualize.knn_accuracy`: how well the
classes stay together), and `trustworthiness` of the map for its own representation
(5 neighbours).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from course_lib import data as course_data
from course_lib.evidence import plotting
from course_lib.evidence.table import EvidenceTable, Record, run_table
from course_lib.evidence.verdicts import Comparison
from course_lib.experiment import as_tensors
from course_lib.models import pretrained_backbone
from course_lib.visualize import embed, knn_accuracy, trustworthiness, tsne

NAME = "tsne_codes"
TITLE = "t-SNE: CNN codes group by meaning, pixels less so"
CLAIM = 't-SNE of CNN codes groups images by meaning "rather than pixels".'
SPLITS = {"held-out 0-4": "heldout", "unseen 5-9": "similar"}
REPRESENTATIONS = ("pixels", "CNN codes")
K = 5


@dataclass(frozen=True)
class Settings:
    per_class: int = 60
    max_iter: int = 500


FULL = Settings()
FAST = replace(FULL, per_class=40)


def condition(split: str, representation: str) -> str:
    return f"{split}, {representation}"


def representations(backbone, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Pixels (N, 784) and the backbone's codes (N, 576) of images x (N, 1, 28, 28)."""
    return {"pixels": x.flatten(1), "CNN codes": embed(backbone, x)[0]}


def run(seeds=range(5), fast: bool = False, device=None) -> EvidenceTable:
    s = FAST if fast else FULL
    backbone = pretrained_backbone(map_location="cpu")
    parts = course_data.mnist_transfer_split()

    def one_seed(seed: int) -> list[Record]:
        records = []
        for split, part in SPLITS.items():
            x, y = as_tensors(course_data.small_subset(parts[part], s.per_class, seed))
            for name, features in representations(backbone, x).items():
                points = tsne(features, seed=seed, pca_components=50, max_iter=s.max_iter)
                for metric, value in (("knn_space", knn_accuracy(features, y, K)),
                                      ("knn_map", knn_accuracy(points, y, K)),
                                      ("trustworthiness", trustworthiness(features, points, K))):
                    records.append(Record(condition(split, name), seed, metric, value))
        return records

    return run_table(NAME, seeds, one_seed, dict(vars(s), fast=fast, k=K, pca_components=50))


def comparisons(table: EvidenceTable) -> list[Comparison]:
    return [Comparison(f"{split}: 5-NN accuracy in the t-SNE map, CNN codes above pixels",
                       (condition(split, "CNN codes"), "knn_map"), (condition(split, "pixels"), "knn_map"))
            for split in SPLITS]


def table_metrics(table: EvidenceTable) -> list[str]:
    return ["knn_space", "knn_map", "trustworthiness"]


def plot(table: EvidenceTable):
    """5-NN accuracy in the map and trustworthiness, pixels against codes, per split."""
    fig, axes = plotting.figure(ncols=2)
    labels = ("5-NN accuracy in the 2-D map", "trustworthiness")
    for ax, metric, label in zip(axes, ("knn_map", "trustworthiness"), labels):
        for representation, offset in zip(REPRESENTATIONS, (-0.1, 0.1)):
            plotting.interval_points(ax, table, [condition(split, representation) for split in SPLITS], metric,
                                     list(SPLITS), offset=offset, label=representation)
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
        ax.set_title(f"{label} ({plotting.caption(table)})", fontsize=9)
    return fig
