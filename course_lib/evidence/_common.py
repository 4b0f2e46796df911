"""What the evidence experiments share: the MNIST split, in-memory training and scoring.

Every experiment draws its small training sets from one fixed pool and scores on one fixed
test set, so seeds change the drawn subset, the initialization and the batch order, never
the yardstick. Training is `course_lib.train.fit` on `experiment.Batches` of in-memory
tensors; scoring is `course_lib.train.evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from course_lib import data as course_data
from course_lib.experiment import Batches, as_tensors
from course_lib.train import History, evaluate, fit

POOL_SPLIT_SEED = 0
EVAL_BATCH = 500


@dataclass
class Split:
    """A training pool (ImageDataset) and a fixed test set as tensors x (N, 1, 28, 28), y (N,)."""

    pool: course_data.ImageDataset
    test_x: torch.Tensor
    test_y: torch.Tensor


def mnist_split(test_size: int) -> Split:
    """The bundled MNIST test set split once (seed 0) into a 70% pool and a 30% test part;
    the test set is the first `test_size` images of that part (at most 3,000)."""
    pool, test = course_data.train_val_split(course_data.load_mnist("test"), val_fraction=0.3, seed=POOL_SPLIT_SEED)
    if not 1 <= test_size <= len(test):
        raise ValueError(f"test_size must be in 1..{len(test)}, got {test_size}")
    x, y = as_tensors(test.subset(range(test_size)))
    return Split(pool, x, y)


def draw(pool: course_data.ImageDataset, per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`per_class` images of each class from `pool` drawn with `seed`: (x (N, C, H, W), y (N,))."""
    return as_tensors(course_data.small_subset(pool, per_class, seed))


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int, optimizer: str,
          lr: float, seed: int, val: tuple[torch.Tensor, torch.Tensor] | None = None, device=None) -> History:
    """`fit` on in-memory (x, y), batches shuffled with `seed`; val (x, y) is scored after each epoch."""
    val_loader = Batches(*val, EVAL_BATCH, shuffle=False) if val is not None else None
    return fit(model, Batches(x, y, batch_size, shuffle=True, seed=seed), val_loader, epochs=epochs,
               optimizer=optimizer, lr=lr, device=device, progress=False)


def score(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of `model` on (x, y), in eval mode."""
    return evaluate(model, Batches(x, y, EVAL_BATCH, shuffle=False))
