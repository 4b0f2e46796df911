"""The transfer-learning experiment of the lecture: when does a pretrained backbone help?

`transfer_experiment(target)` takes the bundled backbone (`models.pretrained_backbone()`,
a SmallCNN trained on MNIST digits 0-4) to a task it never saw, with 5, 10, 50 and all
labels per class, and compares five ways to get a classifier:

* scratch        the same SmallCNN architecture, random init, every parameter trained
* linear_probe   `extract_features` (the 576-d input of the last Linear) of the frozen
                 backbone + `linear_probe` (standardize + logistic regression)
* finetune_last  `freeze(blocks=model.features, train_last=1)`: the last conv block and a
                 new head train; the frozen blocks' BatchNorm stays in eval (`freeze_bn`)
* finetune_all   every parameter of the backbone and a new head train
* lora           `apply_lora(r=4)` on the three convs + a new head; the rest (BatchNorm
                 included, `freeze_bn`) is frozen

Every method replaces the backbone's 5-way head with a new `nn.Linear(576, K)` for the
target's K classes (the linear probe's logistic regression is that layer, fitted by
scikit-learn). Targets:

* "similar"    MNIST digits 5-9 (`data.mnist_transfer_split()["similar"]`, relabelled
               0-4): same kind of images, new classes.
* "different"  scikit-image textures brick / grass / gravel (`data.load_textures`): the
               photos are already greyscale (scikit-image ships them as 2-D uint8), and
               they are cut into non-overlapping 28x28 patches (`patch_size=28`, 324 per
               class), so they fit the backbone's (1, 28, 28) input with no resize.
               Chosen over `load_faces` (200 images, 2 classes): three classes and enough
               patches for 50 labels per class plus a test set of 100 per class.

Each target holds out a fixed test set (`TARGETS[...].test_per_class` examples of every
class, drawn once with seed 0; stratified); the rest is the labelled pool the training
subsets come from (`data.small_subset(pool, n, seed)`; None = the whole pool). Nothing
is tuned on the test set: every run trains for a fixed schedule and is evaluated once.

Training (every neural method alike): Adam, lr 1e-3 with a cosine decay to 0 over the
run (stepped per epoch), batch 32, cross-entropy, no augmentation, `epochs` passes over
the labelled set but at least `min_steps` optimizer steps (so 25 images are not trained
for one step): full mode 3 epochs / 150 steps. The last model is evaluated (no early
stopping, no validation set). Each (method, labels, seed) run seeds everything with its
seed: the drawn subset, the new head's and the scratch model's init and the batch order
follow from it, so a rerun gives the same numbers on the same device and thread count.

Run time (measured on a shared 2-core x86_64 VM, one torch thread; docs/transfer.md):
full mode 160 s ("similar") and 105 s ("different") of CPU time, 3.5 min and 2 min of
wall time at load ~3 (6 min and 3 min at load ~4.5); fast mode about 20 s and 10 s.

`fast` (default: `COURSE_FAST=1`) shrinks epochs, min_steps, seeds (the first one) and
the test set (its first `FAST_TEST_PER_CLASS` = 40 per class); the pool, the methods
and the code path stay the same.

The result is a `TransferTable`: one `TransferRow` per method x label count with the
per-seed accuracies, their mean, sample std (ddof=1; 0 for one seed) and min / max, the
trainable parameter count and the mean seconds per run. `plot_transfer(table)` draws it
(min-max bands); `to_markdown(table)` formats it. `when_to_transfer(tables)` reads the tables
into the slides' "when to transfer" cells by one stated rule (`VERDICT_RULE`), next to the
slides' own cells ("NA" where the slides leave one empty); `when_to_transfer_markdown` formats them.
"""

from __future__ import annotations

import copy
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from course_lib import data as course_data
from course_lib.device import get_device, module_device, seed_everything
from course_lib.kernels import FAST_ENV
from course_lib.models import SmallCNN, backbone_manifest, pretrained_backbone
from course_lib.train import evaluate, fit
from course_lib.transfer import apply_lora, extract_features, freeze, freeze_bn, linear_probe, trainable_parameters

if TYPE_CHECKING:  # matplotlib is imported when the plot is drawn, not at import time
    from matplotlib.figure import Figure

METHODS = ("scratch", "linear_probe", "finetune_last", "finetune_all", "lora")
LABELS_PER_CLASS = (5, 10, 50, None)
SEEDS = (0, 1, 2)
EPOCHS, FAST_EPOCHS = 3, 1
MIN_STEPS, FAST_MIN_STEPS = 150, 10
FAST_TEST_PER_CLASS = 40
BATCH_SIZE = 32
OPTIMIZER, LR = "adam", 1e-3
LORA_RANK = 4
TEST_SPLIT_SEED = 0
EVAL_BATCH_SIZE = 500
# Distinct markers and dashes, so methods with equal accuracies stay visible on top of each other.
METHOD_STYLES = {
    "scratch": dict(marker="o", linestyle="-"),
    "linear_probe": dict(marker="s", linestyle="--"),
    "finetune_last": dict(marker="^", linestyle="-."),
    "finetune_all": dict(marker="D", linestyle=":"),
    "lora": dict(marker="v", linestyle="-"),
}


# ---------------------------------------------------------------------------------------
# Targets: the labelled pool and the fixed test set
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A target task: `load()` gives an `ImageDataset` of (1, 28, 28) images in [0, 1]."""

    name: str
    description: str
    load: Callable[[], course_data.ImageDataset]
    test_per_class: int


def _similar() -> course_data.ImageDataset:
    return course_data.mnist_transfer_split()["similar"]  # digits 5-9, labels 0-4


def _different() -> course_data.ImageDataset:
    return course_data.load_textures(patch_size=28)  # greyscale 28x28 patches, 324 per class


TARGETS = {
    "similar": Target("similar", "MNIST digits 5-9 (backbone saw 0-4)", _similar, test_per_class=200),
    "different": Target("different", "textures: brick / grass / gravel", _different, test_per_class=100),
}


@dataclass
class TargetData:
    """A target split once: `pool` to draw labelled subsets from, a fixed `test` set."""

    pool: course_data.ImageDataset
    test: course_data.ImageDataset
    classes: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def pool_per_class(self) -> dict[str, int]:
        """How many pool examples each class has (the most `labels_per_class` can ask for)."""
        counts = torch.bincount(self.pool.targets, minlength=self.num_classes)
        return {name: int(count) for name, count in zip(self.classes, counts)}


def holdout_indices(targets, per_class: int, seed: int = TEST_SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Stratified hold-out: (pool indices, test indices), `per_class` of each class in test.

    targets: (N,) labels. Test indices keep the seeded permutation's order within each
    class, so the first m of a class in test are the same for every m (fast mode uses that).
    """
    test, pool = course_data.stratified_split(targets, per_class, seed)
    if any(len(members) == 0 for members in pool):
        raise ValueError(f"a class has exactly {per_class} examples: holding out {per_class} leaves none to train on; "
                         "hold out fewer per class")
    test_idx = np.stack(test, axis=1).reshape(-1)  # interleaved: class 0, 1, ..., 0, 1, ...
    return np.sort(np.concatenate(pool)), test_idx


def load_target(target: str, test_per_class: int | None = None) -> TargetData:
    """The pool and the test set of `target` ("similar" or "different").

    test_per_class: keep only the first that many test examples per class (None: all
    `TARGETS[target].test_per_class`); the pool does not change.
    """
    spec = _target(target)
    if test_per_class is not None and not 1 <= test_per_class <= spec.test_per_class:
        raise ValueError(
            f"test_per_class must be in 1..{spec.test_per_class} for target {target!r}, got {test_per_class}"
        )
    dataset = spec.load()
    pool_idx, test_idx = holdout_indices(dataset.targets, spec.test_per_class)
    if test_per_class is not None:
        test_idx = test_idx[: test_per_class * len(dataset.classes)]  # interleaved, so stratified
    return TargetData(dataset.subset(pool_idx), dataset.subset(np.sort(test_idx)), list(dataset.classes))


def _target(name: str) -> Target:
    if name not in TARGETS:
        raise ValueError(f"unknown target {name!r}; choose one of: {', '.join(TARGETS)}")
    return TARGETS[name]


def as_tensors(dataset: course_data.ImageDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 1, 28, 28) float32 in [0, 1], labels (N,) int64) of an `ImageDataset`."""
    images = dataset.images
    images = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    return images, dataset.targets.clone()


class Batches:
    """Mini-batches `(x (B, ...), y (B,))` of in-memory tensors, reshuffled on every pass.

    The order comes from a generator seeded with `seed` once, so the sequence of epochs is
    the same on every run. `len()` is the number of batches per pass (last one smaller).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = True, seed: int = 0):
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.y) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.y)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.x[index], self.y[index]


# ---------------------------------------------------------------------------------------
# Models, one per method
# ---------------------------------------------------------------------------------------


def new_head(model: SmallCNN, num_classes: int) -> SmallCNN:
    """Replace the last Linear by a fresh, trainable `nn.Linear(feature_dim, num_classes)`."""
    model.head[-1] = nn.Linear(model.feature_dim, num_classes).to(module_device(model))
    return model


def build_model(method: str, backbone: SmallCNN, num_classes: int, seed: int = 0) -> SmallCNN:
    """The model `method` trains (for "linear_probe": the frozen backbone + new head it equals).

    backbone: the pretrained SmallCNN (not modified; a copy is adapted). The scratch model,
    or the new head, is initialized right after `torch.manual_seed(seed)`, so the same seed
    gives every pretrained method the same head. Trainable parameters (K classes,
    D = backbone.feature_dim = 576): scratch / finetune_all: all; finetune_last: last conv
    block (conv + BatchNorm) + head; linear_probe: head only, D K + K; lora: A and B of each
    conv (r (9 c_in + c_out), r = LORA_RANK) + head.
    """
    _check_names([method], METHODS, "method")
    torch.manual_seed(seed)
    device = module_device(backbone)
    if method == "scratch":
        config = dict(backbone_manifest()["model"], num_classes=num_classes)
        return SmallCNN(**config).to(device)
    model = new_head(copy.deepcopy(backbone), num_classes)
    if method == "linear_probe":
        model.requires_grad_(False)
    elif method == "finetune_last":
        freeze(model, train_last=1, blocks=list(model.features))
        for block in list(model.features)[:-1]:
            freeze_bn(block)
    elif method == "lora":
        apply_lora(model, r=LORA_RANK, target_modules=nn.Conv2d)
        freeze_bn(model)
    model.head.requires_grad_(True)  # the new head always trains
    return model


# ---------------------------------------------------------------------------------------
# One run: train a method on a labelled subset, score it on the test set
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    """One (method, labels per class, seed) run."""

    accuracy: float  # on the target's test set, in [0, 1]
    trainable_parameters: int
    train_size: int
    seconds: float  # wall time: build + train + evaluate (probe: extract + fit + score)


def epochs_for(train_size: int, epochs: int, min_steps: int, batch_size: int = BATCH_SIZE) -> int:
    """Passes over `train_size` examples: `epochs`, or more to reach `min_steps` batches."""
    per_epoch = math.ceil(train_size / batch_size)
    return max(epochs, math.ceil(min_steps / per_epoch))


def run_once(method: str, backbone: SmallCNN, train_set, test_set, num_classes: int, seed: int,
             epochs: int, min_steps: int, device) -> RunResult:
    """Train `method` on `train_set` (an `ImageDataset`) and score it on `test_set`."""
    start = time.perf_counter()
    seed_everything(seed)
    model = build_model(method, backbone, num_classes, seed)
    x, y = as_tensors(train_set)
    test_x, test_y = as_tensors(test_set)
    test_batches = Batches(test_x, test_y, EVAL_BATCH_SIZE, shuffle=False)
    if method == "linear_probe":
        train_features, train_labels = extract_features(backbone, Batches(x, y, EVAL_BATCH_SIZE, shuffle=False))
        test_features, test_labels = extract_features(backbone, test_batches)
        accuracy = linear_probe(train_features, train_labels, test_features, test_labels).test_accuracy
    else:
        train_batches = Batches(x, y, BATCH_SIZE, shuffle=True, seed=seed)
        n_epochs = epochs_for(len(y), epochs, min_steps)
        fit(model, train_batches, epochs=n_epochs, optimizer=OPTIMIZER, lr=LR, device=device, progress=False,
            scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n_epochs))
        accuracy = evaluate(model, test_batches, device=device)[1]
    return RunResult(float(accuracy), trainable_parameters(model), len(y), time.perf_counter() - start)


# ---------------------------------------------------------------------------------------
# The experiment and its table
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferRow:
    """One method at one label count, over all seeds.

    labels_per_class: None = all pool labels (then `train_size` is the pool size).
    accuracies: test accuracy of each seed, in seed order. accuracy_std: sample standard
    deviation over seeds (ddof=1; 0.0 for one seed). seconds: mean wall time of one run.
    """

    method: str
    labels_per_class: int | None
    train_size: int
    accuracies: tuple[float, ...]
    trainable_parameters: int
    seconds: float

    @property
    def accuracy_mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def accuracy_std(self) -> float:
        return float(np.std(self.accuracies, ddof=1)) if len(self.accuracies) > 1 else 0.0

    @property
    def accuracy_min(self) -> float:
        return float(min(self.accuracies))

    @property
    def accuracy_max(self) -> float:
        return float(max(self.accuracies))


@dataclass
class TransferTable:
    """The result of `transfer_experiment`: rows in method-major, label-count order, and the setup."""

    target: str
    description: str
    classes: list[str]
    rows: list[TransferRow]
    seeds: tuple[int, ...]
    labels_per_class: tuple[int | None, ...]
    methods: tuple[str, ...]
    epochs: int
    min_steps: int
    pool_per_class: dict[str, int]
    test_size: int
    fast: bool
    device: str
    num_threads: int
    seconds: float  # the whole experiment, wall time
    versions: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Every field as plain lists, dicts and numbers (JSON-ready); `from_dict` reads it back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, fields: dict) -> TransferTable:
        """The table `as_dict` wrote (e.g. read back from JSON)."""
        rows = [TransferRow(**{**row, "accuracies": tuple(row["accuracies"])}) for row in fields["rows"]]
        tuples = {name: tuple(fields[name]) for name in ("seeds", "labels_per_class", "methods")}
        return cls(**{**fields, **tuples, "rows": rows})

    def row(self, method: str, labels_per_class: int | None) -> TransferRow:
        """The row of `method` at `labels_per_class` (KeyError naming what exists if absent)."""
        for row in self.rows:
            if row.method == method and row.labels_per_class == labels_per_class:
                return row
        raise KeyError(f"no row for method={method!r}, labels_per_class={labels_per_class!r}; "
                       f"the table has methods {self.methods} and labels {self.labels_per_class}")


def _check_names(given: Sequence[str], valid: Sequence[str], what: str) -> None:
    unknown = [name for name in given if name not in valid]
    if unknown:
        raise ValueError(f"unknown {what} name(s) {unknown}; valid {what}s: {', '.join(valid)}")


def _check_labels(labels_per_class, pool_per_class: dict[str, int], target: str) -> None:
    smallest_class = min(pool_per_class, key=pool_per_class.get)
    available = pool_per_class[smallest_class]
    for n in labels_per_class:
        if n is None:
            continue
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"labels_per_class entries must be positive ints or None (all), got {n!r}")
        if n > available:
            raise ValueError(
                f"labels_per_class={n} is more than target {target!r} has: class {smallest_class!r} has only "
                f"{available} training examples (pool per class: {pool_per_class}); use at most {available}, "
                "or None for all of them"
            )


def fast_mode(fast: bool | None = None) -> bool:
    """`fast` if given, else whether the environment sets COURSE_FAST=1."""
    return os.environ.get(FAST_ENV) == "1" if fast is None else bool(fast)


def transfer_experiment(target: str = "similar", labels_per_class: Sequence[int | None] = LABELS_PER_CLASS,
                        seeds: Sequence[int] = SEEDS, methods: Sequence[str] = METHODS,
                        epochs: int | None = None, min_steps: int | None = None, fast: bool | None = None,
                        device=None, num_threads: int | None = None) -> TransferTable:
    """Run every method at every label count with every seed on `target`; return the table.

    target: "similar" (MNIST 5-9) or "different" (textures). labels_per_class: labelled
    examples per class, None = the whole pool; a count above the smallest class's pool
    raises ValueError (no clamping). epochs / min_steps: training length (see
    `epochs_for`; defaults 3 / 150, fast 1 / 10). fast: None reads COURSE_FAST=1; it keeps
    the first seed only, the default epochs / min_steps become the fast ones, and the
    test set keeps `FAST_TEST_PER_CLASS` per class. device: default `get_device()`.
    num_threads: torch CPU threads during the run (restored afterwards); None = unchanged.
    Rows come method by method, label counts in the given order.
    """
    _target(target)
    _check_names(list(methods), METHODS, "method")
    if not seeds:
        raise ValueError("seeds is empty; pass at least one seed, e.g. seeds=(0,)")
    fast = fast_mode(fast)
    seeds = tuple(seeds)[:1] if fast else tuple(seeds)
    epochs = epochs if epochs is not None else (FAST_EPOCHS if fast else EPOCHS)
    min_steps = min_steps if min_steps is not None else (FAST_MIN_STEPS if fast else MIN_STEPS)
    device = torch.device(device) if device is not None else get_device()
    data = load_target(target, FAST_TEST_PER_CLASS if fast else None)
    _check_labels(labels_per_class, data.pool_per_class(), target)
    saved_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    start = time.perf_counter()
    try:
        backbone = pretrained_backbone(map_location=device)
        rows = [_row(method, n, seeds, backbone, data, epochs, min_steps, device)
                for method in methods for n in labels_per_class]
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(saved_threads)
    return TransferTable(
        target, TARGETS[target].description, data.classes, rows, seeds, tuple(labels_per_class), tuple(methods),
        epochs, min_steps, data.pool_per_class(), len(data.test), fast, str(device), threads,
        time.perf_counter() - start, {"torch": torch.__version__, "python": platform.python_version()},
    )


def _row(method, n, seeds, backbone, data: TargetData, epochs, min_steps, device) -> TransferRow:
    runs = []
    for seed in seeds:
        train_set = data.pool if n is None else course_data.small_subset(data.pool, n, seed)
        runs.append(run_once(method, backbone, train_set, data.test, data.num_classes, seed, epochs, min_steps, device))
    return TransferRow(method, n, runs[0].train_size, tuple(r.accuracy for r in runs),
                       runs[0].trainable_parameters, float(np.mean([r.seconds for r in runs])))


# ---------------------------------------------------------------------------------------
# Reading the table: the slides' "when to transfer" verdict
# ---------------------------------------------------------------------------------------

# Cheapest first: fewest trainable parameters; scratch last, since it throws the backbone away.
COST_ORDER = ("linear_probe", "lora", "finetune_last", "finetune_all", "scratch")
METHOD_ADVICE = {
    "linear_probe": "linear classifier on the top layer (frozen features)",
    "lora": "LoRA adapters on every conv + new head",
    "finetune_last": "fine-tune the last conv block + new head",
    "finetune_all": "fine-tune all layers",
    "scratch": "train from scratch",
}
DATA_SIZES = {"small": "very little data", "large": "quite a lot of data"}  # the slides' rows
SLIDE_COLUMNS = {"similar": "very similar dataset", "different": "very different dataset"}
SLIDE_NA = "NA"
SLIDE_CELLS = {  # the slides' own cells; they leave very little data on a very different dataset empty
    ("small", "similar"): "use a linear classifier on the top layer",
    ("small", "different"): SLIDE_NA,
    ("large", "similar"): "fine-tune a few layers",
    ("large", "different"): "fine-tune a larger number of layers",
}
VERDICT_RULE = (
    "Rule for each measured cell (`course_lib.experiment.when_to_transfer`): among the methods whose mean "
    "accuracy is within noise of the best (noise = the larger of the two rows' seed std and two binomial "
    "standard errors of the best accuracy on the test set), pick the cheapest (fewest trainable parameters; "
    "scratch counts as most expensive since it discards the backbone). \"Very little data\" is the table's "
    "smallest label count, \"quite a lot\" its largest."
)


@dataclass(frozen=True)
class TransferVerdict:
    """One cell of the "when to transfer" table: what the numbers say, and what the slides say.

    size: the slides' row, "small" (very little data) or "large" (quite a lot); target: the
    column, "similar" or "different"; labels_per_class: the label count read for the row
    (None = all). method: the measured verdict, the cheapest method (`COST_ORDER`) within
    noise of the best. tied: the rows within noise of the best, best first; below: the
    others, best first. gain: the best pretrained mean minus scratch's. slide: the slides'
    own cell, `SLIDE_NA` where they leave it empty (never filled in from the numbers).
    """

    size: str
    target: str
    labels_per_class: int | None
    method: str
    tied: tuple[TransferRow, ...]
    below: tuple[TransferRow, ...]
    gain: float
    slide: str

    @property
    def advice(self) -> str:
        return METHOD_ADVICE[self.method]

    @property
    def pick(self) -> TransferRow:
        return next(row for row in self.tied if row.method == self.method)


def tie_margin(best: TransferRow, row: TransferRow, test_size: int) -> float:
    """How far below `best`'s mean `row`'s mean may be and still tie: the larger of the two rows'
    seed std and two binomial standard errors of the best accuracy on `test_size` test images."""
    p = best.accuracy_mean
    return max(best.accuracy_std, row.accuracy_std, 2 * math.sqrt(p * (1 - p) / test_size))


def within_noise(table: TransferTable, labels_per_class: int | None) -> tuple[list[TransferRow], list[TransferRow]]:
    """(tied, below) at one label count: the rows within `tie_margin` of the best mean, and the rest.

    Both lists are sorted best first (equal means keep the table's method order).
    """
    rows = sorted((table.row(m, labels_per_class) for m in table.methods), key=lambda r: -r.accuracy_mean)
    best = rows[0]
    tied = [r for r in rows if best.accuracy_mean - r.accuracy_mean <= tie_margin(best, r, table.test_size) + 1e-12]
    return tied, [r for r in rows if r not in tied]


def pretrained_gain(table: TransferTable, labels_per_class: int | None) -> float:
    """Mean accuracy of the best pretrained method minus scratch's, at one label count."""
    pretrained = [table.row(m, labels_per_class).accuracy_mean for m in table.methods if m != "scratch"]
    return max(pretrained) - table.row("scratch", labels_per_class).accuracy_mean


def when_to_transfer(tables: Sequence[TransferTable]) -> list[TransferVerdict]:
    """The slides' "when to transfer" table, filled in from `transfer_experiment` results.

    tables: one `TransferTable` per column, its `target` "similar" or "different"; each
    needs "scratch", at least one pretrained method and at least two label counts. The
    row "small" reads each table's smallest label count, "large" its largest (None, all
    labels, counts as the largest). Each cell's verdict follows `VERDICT_RULE`; its slide
    cell is `SLIDE_CELLS[(size, target)]`, "NA" where the slides have none.
    Returns the cells row by row ("small" first), columns in the order of `tables`.
    """
    for table in tables:
        _check_verdict_table(table)
    verdicts = []
    for size in DATA_SIZES:
        for table in tables:
            counts = sorted(table.labels_per_class, key=lambda n: math.inf if n is None else n)
            n = counts[0] if size == "small" else counts[-1]
            tied, below = within_noise(table, n)
            pick = min(tied, key=lambda r: COST_ORDER.index(r.method))
            verdicts.append(TransferVerdict(size, table.target, n, pick.method, tuple(tied), tuple(below),
                                            pretrained_gain(table, n), SLIDE_CELLS[(size, table.target)]))
    return verdicts


def _check_verdict_table(table: TransferTable) -> None:
    if table.target not in SLIDE_COLUMNS:
        raise ValueError(f"table.target is {table.target!r}; the slides' columns are {', '.join(SLIDE_COLUMNS)}")
    if "scratch" not in table.methods or len(table.methods) < 2:
        raise ValueError(f"the {table.target!r} table has methods {table.methods}; the verdict compares pretrained "
                         "methods with scratch: run transfer_experiment with 'scratch' and at least one other method")
    if len(set(table.labels_per_class)) < 2:
        raise ValueError(f"the {table.target!r} table has label counts {table.labels_per_class}; the slides' rows need "
                         "a small and a large one: run transfer_experiment with at least two labels_per_class")


# ---------------------------------------------------------------------------------------
# Presenting the table
# ---------------------------------------------------------------------------------------


def labels_text(n: int | None, table: TransferTable | None = None) -> str:
    """'5', '50', or 'all' (with the pool's smallest class size when a table is given)."""
    if n is not None:
        return str(n)
    return f"all (>={min(table.pool_per_class.values())})" if table is not None else "all"


def to_markdown(table: TransferTable) -> str:
    """The table as GitHub markdown, one line per method x label count.

    Columns: method, labels per class, training images, test accuracy mean, std (ddof=1)
    and [min, max] over seeds, trainable parameters, mean seconds per run.
    """
    lines = [
        "| method | labels / class | train images | accuracy mean | std | min - max | trainable params | s / run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in table.rows:
        lines.append(
            f"| {row.method} | {labels_text(row.labels_per_class)} | {row.train_size} | {row.accuracy_mean:.3f} | "
            f"{row.accuracy_std:.3f} | {row.accuracy_min:.3f} - {row.accuracy_max:.3f} | "
            f"{row.trainable_parameters:,} | {row.seconds:.2f} |"
        )
    return "\n".join(lines)


def when_to_transfer_markdown(verdicts: Sequence[TransferVerdict]) -> str:
    """The cells of `when_to_transfer` as the slides' 2 x 2 table in GitHub markdown.

    One measured row per data size (each cell: the verdict in bold, its trainable
    parameters, the methods within noise of the best and below it, the pretraining gain),
    each followed by the slides' own row, with "NA" where the slides leave a cell empty.
    """
    targets = list(dict.fromkeys(v.target for v in verdicts))
    header = " | ".join(f"{SLIDE_COLUMNS[t]}: {TARGETS[t].description}" for t in targets)
    lines = [f"| | {header} |", "|---" * (len(targets) + 1) + "|"]
    for size, name in DATA_SIZES.items():
        row = [v for v in verdicts if v.size == size]
        counts = ", ".join(dict.fromkeys(_count_text(v.labels_per_class) for v in row))
        lines.append(f"| {name} ({counts}): measured | " + " | ".join(_verdict_text(v) for v in row) + " |")
        lines.append("| *the slides say* | " + " | ".join(_slide_text(v.slide) for v in row) + " |")
    return "\n".join(lines)


def _count_text(n: int | None) -> str:
    return "all labels" if n is None else f"{n} labels / class"


def _verdict_text(verdict: TransferVerdict) -> str:
    listing = lambda rows: ", ".join(f"{r.method} {r.accuracy_mean:.3f}" for r in rows) or "none"  # noqa: E731
    return (f"**{verdict.advice}** ({verdict.pick.trainable_parameters:,} trainable). Within noise of the best: "
            f"{listing(verdict.tied)}; below: {listing(verdict.below)}. "
            f"Best pretrained vs scratch: {verdict.gain:+.3f}.")


def _slide_text(cell: str) -> str:
    return "*NA* (the slides leave this cell empty)" if cell == SLIDE_NA else f"*{cell}*"


def plot_transfer(table: TransferTable, title: str | None = None) -> Figure:
    """Test accuracy vs labels per class, one line per method (mean over seeds) with a
    shaded min-max band over seeds. Only draws. The y axis starts just below the lowest
    accuracy (a multiple of 0.05); a dashed line marks chance (1 / K) when it is in range.

    The x axis is categorical (the label counts in the table's order, "all" last).
    Returns a new matplotlib Figure (no pyplot: works headless on Agg).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    positions = np.arange(len(table.labels_per_class))
    for method in table.methods:
        rows = [table.row(method, n) for n in table.labels_per_class]
        mean = [r.accuracy_mean for r in rows]
        style = METHOD_STYLES.get(method, {})
        (line,) = ax.plot(positions, mean, label=method.replace("_", " "), markersize=6, alpha=0.9, **style)
        ax.fill_between(positions, [r.accuracy_min for r in rows], [r.accuracy_max for r in rows],
                        color=line.get_color(), alpha=0.15, linewidth=0)
    chance = 1 / len(table.classes)
    bottom = max(0.0, math.floor(20 * (min(r.accuracy_min for r in table.rows) - 0.02)) / 20)
    if chance >= bottom:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(positions, [labels_text(n, table) for n in table.labels_per_class])
    ax.set_xlabel("labelled examples per class")
    ax.set_ylabel(f"test accuracy (chance {chance:.2f})")
    ax.set_ylim(bottom, 1.0 + (1.0 - bottom) * 0.02)
    ax.grid(alpha=0.3)
    seeds = f"{len(table.seeds)} seed{'s' if len(table.seeds) > 1 else ''}, band = min-max"
    ax.set_title(title or f"{table.target}: {table.description}\n{seeds}, test n={table.test_size}", fontsize=10)
    ax.legend(loc="best", fontsize=8)
    return fig
