"""Real data sets for the lecture, offline first.

Every data set here yields `(image, label)` pairs with `image: (C, H, W) float32` in
[0, 1] and `label: int`, and exposes `.targets` (an int64 tensor of all labels) and
`.classes` (the class names, `classes[label]`).

Bundled or shipped by installed packages (no network, ever):

* `load_mnist("test")`      MNIST test set, 10,000 x (1, 28, 28), bundled in
                            `course_lib/assets/mnist/` (MD5-checked, parsed from IDX here).
* `load_digits()`           scikit-learn's 1,797 x (1, 8, 8) handwritten digits.
* `load_textures()`         scikit-image brick / grass / gravel, cut into patches.
* `load_faces()`            scikit-image `lfw_subset`: 100 faces, 100 non-faces, 25x25.
* `load_photos()`           scikit-image photos (cat, astronaut, coffee, rocket) as a dict;
                            `to_model_input` resizes / crops / normalizes one for a model.

Through torchvision, when the files are on disk or the network is reachable (otherwise a
`DownloadError` says what to download and where to put it; attempts time out quickly):

* `load_mnist("train")`, `load_cifar10(train=...)`, stored under `data_dir()`
  (`$COURSE_DATA`, default `~/.cache/dl-course/data`).

Tools: `small_subset` and `train_val_split` (stratified, seeded), `mnist_transfer_split`
(the documented split the bundled backbone was trained on), `cache_to_disk` (one
contiguous `.npy` array read back through a memmap).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import socket
import threading
import urllib.parse
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler, Subset

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
MNIST_DIR = ASSETS_DIR / "mnist"
# The MD5s torchvision publishes in `torchvision.datasets.MNIST.resources`.
MNIST_TEST_FILES = {
    "images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
DIGIT_CLASSES = [str(d) for d in range(10)]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DATA_ENV = "COURSE_DATA"
NETWORK_TIMEOUT_S = 10.0


class DownloadError(RuntimeError):
    """Data or weights are neither on disk nor downloadable; the message says what to fetch."""


# ---------------------------------------------------------------------------------------
# The dataset classes
# ---------------------------------------------------------------------------------------


class ImageDataset(Dataset):
    """Images held in memory as one tensor.

    images:  (N, C, H, W) uint8 (0..255, scaled to [0, 1] on access) or float32 in [0, 1]
    targets: (N,) int64
    classes: class names, `classes[label]`
    transform: optional callable applied to each `(C, H, W)` float image on access
    """

    def __init__(self, images: torch.Tensor, targets, classes: Sequence[str], transform: Callable | None = None):
        targets = torch.as_tensor(targets, dtype=torch.int64)
        if images.ndim != 4 or images.shape[0] != targets.shape[0]:
            raise ValueError(
                f"expected images (N, C, H, W) and targets (N,), got {tuple(images.shape)} and {tuple(targets.shape)}"
            )
        self.images = images
        self.targets = targets
        self.classes = list(classes)
        self.transform = transform

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int):
        image = self.images[index]  # (C, H, W)
        image = image.float() / 255 if image.dtype == torch.uint8 else image.float()
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])

    def subset(self, indices) -> "ImageDataset":
        """A new `ImageDataset` of the rows `indices` (same classes and transform)."""
        indices = torch.as_tensor(indices, dtype=torch.int64)
        return ImageDataset(self.images[indices], self.targets[indices], self.classes, self.transform)

    def __repr__(self) -> str:
        shape = tuple(self.images.shape[1:])
        return f"ImageDataset({len(self)} images of shape {shape}, {len(self.classes)} classes)"


class LabelledSubset(Subset):
    """`torch.utils.data.Subset` that keeps `.targets` and `.classes` of its parent."""

    def __init__(self, dataset: Dataset, indices):
        indices = torch.as_tensor(indices, dtype=torch.int64)
        super().__init__(dataset, indices.tolist())
        self.targets = targets_of(dataset)[indices]
        self.classes = list(getattr(dataset, "classes", []) or [])


def targets_of(dataset: Dataset) -> torch.Tensor:
    """All labels of `dataset` as an int64 tensor (N,): `.targets` if present, else by iterating."""
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return torch.as_tensor(targets, dtype=torch.int64)
    if isinstance(dataset, Subset):
        return targets_of(dataset.dataset)[torch.as_tensor(dataset.indices, dtype=torch.int64)]
    return torch.tensor([int(dataset[i][1]) for i in range(len(dataset))], dtype=torch.int64)


# ---------------------------------------------------------------------------------------
# MNIST: the bundled test set (IDX parsed here) and the training set via torchvision
# ---------------------------------------------------------------------------------------


def file_digest(path, algorithm: str) -> str:
    """The hex digest of a file's bytes with `hashlib` algorithm `algorithm` ("md5", "sha256", ...)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_md5(path: Path) -> str:
    """The MD5 hex digest of a file (the checksum torchvision publishes for MNIST)."""
    return file_digest(path, "md5")


def check_md5(path: Path, expected: str) -> None:
    """Raise `ValueError` naming the file and both hashes if `path` does not have MD5 `expected`."""
    actual = file_md5(path)
    if actual != expected:
        raise ValueError(
            f"{path} is corrupt or not the published file: MD5 {actual}, expected {expected}. "
            "Fix: reinstall course_lib (pip install -e .) or copy the original file from "
            f"{MNIST_URL}{Path(path).name} to {path}"
        )


def read_idx(path: Path) -> np.ndarray:
    """Parse a gzip-compressed IDX file (MNIST's format) into a uint8 array.

    Header: 2 zero bytes, a type byte (0x08 = uint8), the number of dimensions, then one
    big-endian int32 per dimension; the data follow in row-major order.
    """
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    zeros, dtype_code, ndim = int.from_bytes(raw[0:2], "big"), raw[2], raw[3]
    if zeros != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not a uint8 IDX file (header bytes {raw[:4]!r})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but holds {data.size} values; the file is truncated")
    return data.reshape(shape)


@lru_cache(maxsize=1)
def _mnist_test_arrays(directory: str) -> tuple[np.ndarray, np.ndarray]:
    paths = {key: Path(directory) / name for key, (name, _) in MNIST_TEST_FILES.items()}
    for key, (_, md5) in MNIST_TEST_FILES.items():
        if not paths[key].exists():
            raise FileNotFoundError(
                f"the bundled MNIST file {paths[key]} is missing; reinstall course_lib (pip install -e .)"
            )
        check_md5(paths[key], md5)
    return read_idx(paths["images"]), read_idx(paths["labels"])


def load_mnist(
    split: str = "test", root=None, download: bool = True, transform: Callable | None = None
) -> ImageDataset:
    """MNIST digits: `(image (1, 28, 28) float32 in [0, 1], label int)`, classes '0'..'9'.

    split="test": the bundled 10,000-image test set (MD5-checked, no network).
    split="train": the 60,000-image training set through torchvision, from
    `root/MNIST/raw` (default root: `data_dir()`), downloaded there if `download` and the
    network is reachable; otherwise `DownloadError` says what to fetch and where.
    """
    if split == "test":
        images, labels = _mnist_test_arrays(str(MNIST_DIR))
        images = torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 1, 28, 28) uint8
        return ImageDataset(images, torch.from_numpy(labels.astype(np.int64)), DIGIT_CLASSES, transform)
    if split != "train":
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root) if root is not None else data_dir()
    _add_bundled_test_files(root / "MNIST" / "raw")
    dataset = _torchvision_dataset("MNIST", root, download, _mnist_train_help(root), train=True)
    return ImageDataset(dataset.data.unsqueeze(1), dataset.targets, DIGIT_CLASSES, transform)


def load_cifar10(
    root=None, train: bool = True, download: bool = True, transform: Callable | None = None
) -> ImageDataset:
    """CIFAR-10 through torchvision: `(image (3, 32, 32) float32 in [0, 1], label int)`.

    Read from `root/cifar-10-batches-py` (default root: `data_dir()`), downloaded there if
    `download` and the network is reachable; otherwise `DownloadError` says what to fetch.
    """
    root = Path(root) if root is not None else data_dir()
    dataset = _torchvision_dataset("CIFAR10", root, download, _cifar10_help(root), train=train)
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()  # (N, 3, 32, 32) uint8
    return ImageDataset(images, dataset.targets, dataset.classes, transform)


def _add_bundled_test_files(raw: Path) -> None:
    """Copy the bundled t10k archives into torchvision's `MNIST/raw` so only train files are fetched."""
    raw.mkdir(parents=True, exist_ok=True)
    for name, _ in MNIST_TEST_FILES.values():
        if not (raw / name).exists() and not (raw / name.removesuffix(".gz")).exists():
            shutil.copyfile(MNIST_DIR / name, raw / name)


def data_dir() -> Path:
    """Where torchvision data sets go: `$COURSE_DATA`, else `~/.cache/dl-course/data`."""
    configured = os.environ.get(DATA_ENV, "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "dl-course" / "data"


def _mnist_train_help(root: Path) -> str:
    raw = Path(root) / "MNIST" / "raw"
    return (
        f"the MNIST training set is not in {raw} and could not be downloaded. Fix: download "
        f"train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz from {MNIST_URL} into {raw}/ "
        "(or run torchvision.datasets.MNIST(root, download=True) on a machine with network and copy "
        f"the MNIST folder into {root}/), or set {DATA_ENV} to a folder that holds it. "
        "The test set needs no download: load_mnist('test')."
    )


def _cifar10_help(root: Path) -> str:
    return (
        f"CIFAR-10 is not in {Path(root) / 'cifar-10-batches-py'} and could not be downloaded. Fix: "
        f"download {CIFAR10_URL} (md5 {CIFAR10_MD5}) and extract it into {root}/ so that "
        f"{Path(root) / 'cifar-10-batches-py'} exists (or just put the .tar.gz in {root}/: it is "
        f"checked and extracted on first use), or set {DATA_ENV} to a folder that holds it."
    )


def _torchvision_dataset(name: str, root: Path, download: bool, help_text: str, **kwargs):
    import torchvision.datasets as tv_datasets

    factory = getattr(tv_datasets, name)
    try:
        return factory(str(root), download=False, **kwargs)
    except RuntimeError:
        pass  # not on disk (torchvision: "Dataset not found")
    if not download:
        raise DownloadError(f"{help_text} (download=False)")
    url = MNIST_URL if name == "MNIST" else CIFAR10_URL
    archives_on_disk = all(p.exists() or p.with_suffix("").exists() for p in _archives(name, root))
    if not archives_on_disk and not network_reachable(url):
        raise DownloadError(f"{help_text} (no network: {urllib.parse.urlsplit(url).hostname} is unreachable)")
    try:
        with network_timeout():
            return factory(str(root), download=True, **kwargs)
    except (OSError, RuntimeError) as error:  # URLError and socket timeouts are OSErrors
        raise DownloadError(f"{help_text} ({type(error).__name__}: {error})") from error


def _archives(name: str, root: Path) -> list[Path]:
    """The archives torchvision downloads; once present (or extracted) it needs no network."""
    if name == "MNIST":
        return [root / "MNIST" / "raw" / f"{part}-idx{d}-ubyte.gz" for part, d in
                (("train-images", 3), ("train-labels", 1), ("t10k-images", 3), ("t10k-labels", 1))]
    return [root / Path(urllib.parse.urlsplit(CIFAR10_URL).path).name]


def network_reachable(url: str, timeout: float = NETWORK_TIMEOUT_S) -> bool:
    """Whether a TCP connection to `url`'s host opens within `timeout` seconds (DNS included)."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    result: list[bool] = []

    def probe():
        try:
            socket.create_connection((parts.hostname, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)  # DNS lookups ignore socket timeouts
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


@contextlib.contextmanager
def network_timeout(seconds: float = NETWORK_TIMEOUT_S):
    """Within the block, sockets without an explicit timeout give up after `seconds`."""
    saved = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(saved)


# ---------------------------------------------------------------------------------------
# Data sets that installed packages ship
# ---------------------------------------------------------------------------------------


def load_digits(transform: Callable | None = None) -> ImageDataset:
    """scikit-learn's handwritten digits: 1,797 x `(1, 8, 8)` in [0, 1] (pixel / 16), classes '0'..'9'."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = torch.from_numpy(bunch.images / 16.0).float().unsqueeze(1)  # (1797, 1, 8, 8)
    return ImageDataset(images, torch.from_numpy(bunch.target), DIGIT_CLASSES, transform)


TEXTURE_CLASSES = ["brick", "grass", "gravel"]


def load_textures(
    patch_size: int = 32, per_class: int | None = None, transform: Callable | None = None
) -> ImageDataset:
    """Texture patches from scikit-image's 512x512 brick, grass and gravel photos.

    Each photo is cut into non-overlapping `patch_size` squares, row by row (512 // 32 = 16
    per row: 256 patches per class at the default size). `per_class` keeps that many,
    evenly spaced over the photo (deterministic). Returns `(1, p, p)` greyscale images,
    labels 0 brick, 1 grass, 2 gravel (blocks in that order).
    """
    import skimage.data

    patches, labels = [], []
    for label, name in enumerate(TEXTURE_CLASSES):
        cut = _patches(getattr(skimage.data, name)(), patch_size)  # (n, p, p) uint8
        if per_class is not None:
            if not 1 <= per_class <= len(cut):
                raise ValueError(f"per_class must be in 1..{len(cut)} for patch_size={patch_size}, got {per_class}")
            cut = cut[np.linspace(0, len(cut) - 1, per_class).round().astype(int)]
        patches.append(cut)
        labels += [label] * len(cut)
    images = torch.from_numpy(np.concatenate(patches)).unsqueeze(1)  # (N, 1, p, p) uint8
    return ImageDataset(images, labels, TEXTURE_CLASSES, transform)


def _patches(image: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping `size` x `size` patches of a (H, W) image, row by row: (n, size, size)."""
    rows, cols = image.shape[0] // size, image.shape[1] // size
    if rows == 0 or cols == 0:
        raise ValueError(f"patch_size {size} is larger than the image {image.shape}")
    grid = image[: rows * size, : cols * size].reshape(rows, size, cols, size)
    return np.ascontiguousarray(grid.transpose(0, 2, 1, 3).reshape(rows * cols, size, size))


FACE_CLASSES = ["non-face", "face"]


def load_faces(transform: Callable | None = None) -> ImageDataset:
    """scikit-image's `lfw_subset`: 200 x `(1, 25, 25)` greyscale in [0, 1].

    The first 100 are faces (label 1, "face"), the next 100 background patches from the
    same photos (label 0, "non-face"), as scikit-image documents.
    """
    import skimage.data

    images = torch.from_numpy(skimage.data.lfw_subset()).float().unsqueeze(1)  # (200, 1, 25, 25)
    labels = torch.tensor([1] * 100 + [0] * 100)
    return ImageDataset(images, labels, FACE_CLASSES, transform)


PHOTOS = {"cat": "chelsea", "astronaut": "astronaut", "coffee": "coffee", "rocket": "rocket"}


def load_photos(names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Colour photos that scikit-image bundles, as a dict `name -> (3, H, W) float32` in [0, 1].

    A dict, not a data set: the photos differ in size and serve as single inputs for
    visualization (feed one through `to_model_input`). Names: cat (skimage's `chelsea`,
    300x451), astronaut (512x512), coffee (400x600), rocket (427x640).
    """
    import skimage.data

    names = list(PHOTOS) if names is None else list(names)
    unknown = [n for n in names if n not in PHOTOS]
    if unknown:
        raise ValueError(f"unknown photo name(s) {unknown}; choose from {list(PHOTOS)}")
    photos = {}
    for name in names:
        array = getattr(skimage.data, PHOTOS[name])()  # (H, W, 3) uint8
        photos[name] = torch.from_numpy(array).permute(2, 0, 1).float() / 255  # (3, H, W)
    return photos


def to_model_input(photo: torch.Tensor, size: int = 224, resize: int | None = 256,
                   mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """ImageNet-style evaluation preprocessing of `photo`: (3, H, W) or (N, 3, H, W) in [0, 1].

    Resize the shorter side to `resize` (bilinear, antialiased; skipped if None), crop the
    centre `size` x `size`, subtract `mean` and divide by `std` per channel (pass mean=0,
    std=1 to skip). The same as torchvision's Resize(resize) + CenterCrop(size) +
    Normalize(mean, std). Returns (N, 3, size, size) on the input's device.
    """
    x = photo.unsqueeze(0) if photo.ndim == 3 else photo
    if x.ndim != 4:
        raise ValueError(f"expected a photo (C, H, W) or a batch (N, C, H, W), got shape {tuple(photo.shape)}")
    x = x.float()
    if resize is not None:
        x = torch.nn.functional.interpolate(x, size=_short_side_size(x.shape[-2:], resize), mode="bilinear",
                                            align_corners=False, antialias=True)
    x = _center_crop(x, size)
    mean_t = torch.as_tensor(mean, dtype=x.dtype, device=x.device).reshape(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=x.dtype, device=x.device).reshape(-1, 1, 1)
    return (x - mean_t) / std_t


def denormalize(
    x: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
    """Undo `to_model_input`'s normalization for display: x * std + mean, clamped to [0, 1]."""
    shape = (-1, 1, 1)
    mean_t = torch.as_tensor(mean, dtype=x.dtype, device=x.device).reshape(shape)
    std_t = torch.as_tensor(std, dtype=x.dtype, device=x.device).reshape(shape)
    return (x * std_t + mean_t).clamp(0, 1)


def _short_side_size(hw, short: int) -> tuple[int, int]:
    height, width = int(hw[0]), int(hw[1])
    if height <= width:
        return short, int(short * width / height)
    return int(short * height / width), short


def _center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    height, width = x.shape[-2:]
    if height < size or width < size:
        raise ValueError(f"cannot crop {size}x{size} from a {height}x{width} image; resize it first")
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    return x[..., top : top + size, left : left + size]


# ---------------------------------------------------------------------------------------
# Subsets and splits (stratified, seeded)
# ---------------------------------------------------------------------------------------


def small_subset(dataset: Dataset, per_class: int, seed: int = 0):
    """`per_class` examples of every class, drawn at random with `seed` (stratified).

    Returns an `ImageDataset` for an `ImageDataset`, else a `LabelledSubset`; either has
    `.targets` and `.classes`. Indices are kept in ascending order.
    """
    chosen, _ = stratified_split(targets_of(dataset), per_class, seed)
    return _subset(dataset, np.sort(np.concatenate(chosen)))


def train_val_split(dataset: Dataset, val_fraction: float = 0.2, seed: int = 0):
    """Split into `(train, val)` with `round(val_fraction * n_c)` of each class `c` in val.

    Stratified and deterministic for a given `seed`; the two parts never overlap and
    together hold every example. Returns datasets of the kind `small_subset` returns.
    """
    train_idx, val_idx = split_indices(targets_of(dataset), val_fraction, seed)
    return _subset(dataset, train_idx), _subset(dataset, val_idx)


def split_indices(targets, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of `range(len(targets))`: (train indices, val indices), both ascending."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    val, train = stratified_split(targets, lambda size: round(val_fraction * size), seed)
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def stratified_split(targets, take: int | Callable[[int], int], seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The one stratified, seeded split: (taken, rest), each a list of index arrays, one per class.

    targets: (N,) labels. take: how many indices to take from every class, or a function
    of the class size giving that number. Classes come in ascending label order; one
    generator seeded with `seed` permutes each class's indices in turn, `taken[c]` is the
    first `take` of class c's permutation and `rest[c]` the others, both in permuted order.
    Raises ValueError naming the class when a class has fewer than `take` examples.
    """
    targets = np.asarray(targets)
    rng = np.random.default_rng(seed)
    taken, rest = [], []
    for label in np.unique(targets):
        members = rng.permutation(np.flatnonzero(targets == label))
        count = take(len(members)) if callable(take) else take
        if len(members) < count:
            raise ValueError(f"class {label} has only {len(members)} examples, fewer than per_class={count}; "
                             f"ask for at most {len(members)} per class")
        taken.append(members[:count])
        rest.append(members[count:])
    return taken, rest


def _subset(dataset: Dataset, indices: np.ndarray):
    if isinstance(dataset, ImageDataset):
        return dataset.subset(indices)
    return LabelledSubset(dataset, indices)


def mnist_transfer_indices(seed: int = 0, heldout_fraction: float = 0.2) -> dict[str, np.ndarray]:
    """Indices into the bundled MNIST test set for the backbone experiments.

    pretrain: digits 0-4 minus the held-out part (what the bundled backbone saw)
    heldout:  `heldout_fraction` of each digit 0-4 (stratified, `seed`), never trained on
    similar:  every 5-9 image, a "similar task" the backbone never saw
    """
    targets = load_mnist("test").targets.numpy()
    low = np.flatnonzero(targets < 5)
    train_pos, heldout_pos = split_indices(targets[low], heldout_fraction, seed)
    return {"pretrain": low[train_pos], "heldout": low[heldout_pos], "similar": np.flatnonzero(targets >= 5)}


def mnist_transfer_split(seed: int = 0, heldout_fraction: float = 0.2) -> dict[str, ImageDataset]:
    """The split of `mnist_transfer_indices` as data sets.

    "pretrain" and "heldout" keep labels 0-4 (classes '0'..'4'); "similar" has its digits
    5-9 relabelled 0-4 (classes '5'..'9', `classes[label]` is still the digit).
    """
    mnist = load_mnist("test")
    parts = {name: mnist.subset(idx) for name, idx in mnist_transfer_indices(seed, heldout_fraction).items()}
    for name in ("pretrain", "heldout"):
        parts[name].classes = DIGIT_CLASSES[:5]
    similar = parts["similar"]
    parts["similar"] = ImageDataset(similar.images, similar.targets - 5, DIGIT_CLASSES[5:])
    return parts


# ---------------------------------------------------------------------------------------
# Caching a data set to one contiguous array on disk
# ---------------------------------------------------------------------------------------


class CachedDataset(Dataset):
    """A data set cached by `cache_to_disk`, read through a memmap.

    `ds[i]` gives `(image (C, H, W) float32, label)`; `ds.loader(batch_size)` reads whole
    batches as contiguous slices (shuffled batches: one sorted fancy-index per batch).
    """

    def __init__(self, directory):
        directory = Path(directory)
        meta = json.loads((directory / "meta.json").read_text())
        self.directory = directory
        self.images = np.load(directory / "images.npy", mmap_mode="r")  # (N, C, H, W) float32
        self.targets = torch.from_numpy(np.load(directory / "targets.npy"))
        self.classes = meta["classes"]

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index):
        """An int gives one `(image, label)`; a list/slice gives a batch `((B, C, H, W), (B,))`."""
        if isinstance(index, (int, np.integer)):
            return torch.from_numpy(np.array(self.images[index])), int(self.targets[index])
        if isinstance(index, slice):
            return torch.from_numpy(np.array(self.images[index])), self.targets[index]
        index = np.sort(np.asarray(index, dtype=np.int64))  # sorted reads are faster
        return torch.from_numpy(self.images[index]), self.targets[torch.from_numpy(index)]

    def loader(self, batch_size: int, shuffle: bool = False, seed: int | None = None) -> DataLoader:
        """A DataLoader yielding `(x (B, C, H, W), y (B,))` batches read in one go each."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        order = RandomSampler(self, generator=generator) if shuffle else SequentialSampler(self)
        return DataLoader(self, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None)


def cache_to_disk(dataset: Dataset, path, batch_size: int = 256) -> CachedDataset:
    """Run `dataset` once (transforms included) and store it in directory `path`.

    Writes `images.npy` (N, C, H, W) float32, one contiguous array, `targets.npy` (N,)
    int64 and `meta.json` (classes, shape); returns a `CachedDataset` over them. Random
    transforms are frozen: every epoch then sees the same images.
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    first, _ = dataset[0]
    shape = (len(dataset), *first.shape)
    images = np.lib.format.open_memmap(directory / "images.npy", mode="w+", dtype=np.float32, shape=shape)
    targets = np.empty(len(dataset), dtype=np.int64)
    start = 0
    for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        images[start : start + len(x)] = x.numpy()
        targets[start : start + len(x)] = y.numpy()
        start += len(x)
    images.flush()
    del images
    np.save(directory / "targets.npy", targets)
    classes = list(getattr(dataset, "classes", []) or [])
    (directory / "meta.json").write_text(json.dumps({"classes": classes, "shape": list(shape)}))
    return CachedDataset(directory)
