"""course_lib.data against its oracles: torchvision's MNIST parser and published MD5s,
scikit-learn's digits, scikit-image's images, torchvision's transforms."""

import gzip
import shutil
import time

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from course_lib import data

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # published label counts




def _assert_item_conventions(dataset, channels, size):
    image, label = dataset[0]
    assert image.shape == (channels, size, size)
    assert image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert isinstance(label, int)
    assert dataset.targets.dtype == torch.int64 and dataset.targets.shape == (len(dataset),)
    assert 0 <= int(dataset.targets.min()) and int(dataset.targets.max()) < len(dataset.classes)


# --- MNIST -------------------------------------------------------------------------------


def test_bundled_mnist_md5s_are_torchvisions_and_the_files_match_them():
    from torchvision.datasets import MNIST

    published = dict(MNIST.resources)
    for name, md5 in data.MNIST_TEST_FILES.values():
        assert published[name] == md5
        assert data.file_md5(data.MNIST_DIR / name) == md5
    assert (data.MNIST_DIR / "README.md").read_text().count("CC BY-SA 3.0") >= 1


def test_load_mnist_test_equals_torchvisions_parse_of_the_same_files(tmp_path):
    from torchvision.datasets import MNIST

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, _ in data.MNIST_TEST_FILES.values():
        with gzip.open(data.MNIST_DIR / name) as src, open(raw / name.removesuffix(".gz"), "wb") as dst:
            shutil.copyfileobj(src, dst)
    # torchvision's check needs the train files to exist too; its parser reads only t10k here.
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"")
    reference = MNIST(str(tmp_path), train=False, download=False)
    ours = data.load_mnist("test")
    assert len(ours) == 10_000
    assert torch.equal((ours.images[:, 0]), reference.data)
    assert torch.equal(ours.targets, reference.targets.long())
    assert torch.bincount(ours.targets).tolist() == MNIST_TEST_COUNTS
    _assert_item_conventions(ours, 1, 28)
    image, label = ours[123]
    assert torch.equal(image[0], reference.data[123].float() / 255) and label == int(reference.targets[123])


def test_corrupt_mnist_file_names_file_hashes_and_fix(tmp_path, monkeypatch):
    for name, _ in data.MNIST_TEST_FILES.values():
        shutil.copyfile(data.MNIST_DIR / name, tmp_path / name)
    labels = tmp_path / data.MNIST_TEST_FILES["labels"][0]
    corrupted = bytearray(labels.read_bytes())
    corrupted[-100] ^= 0xFF  # one flipped byte
    labels.write_bytes(bytes(corrupted))
    monkeypatch.setattr(data, "MNIST_DIR", tmp_path)
    data._mnist_test_arrays.cache_clear()
    try:
        with pytest.raises(ValueError) as error:
            data.load_mnist("test")
    finally:
        data._mnist_test_arrays.cache_clear()
    message = str(error.value)
    assert str(labels) in message and data.MNIST_TEST_FILES["labels"][1] in message
    assert data.file_md5(labels) in message and "Fix" in message


def test_read_idx_rejects_a_truncated_file(tmp_path):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + bytes([1, 2, 3]))
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(path)


def test_unknown_split_is_rejected():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.load_mnist("validation")


def test_mnist_train_without_files_or_network_says_what_to_download(tmp_path, no_network):
    start = time.perf_counter()
    with pytest.raises(data.DownloadError) as error:
        data.load_mnist("train", root=tmp_path)
    assert time.perf_counter() - start < 10
    message = str(error.value)
    assert "train-images-idx3-ubyte.gz" in message and str(tmp_path / "MNIST" / "raw") in message
    assert data.MNIST_URL in message


def test_mnist_train_download_failure_inside_torchvision_is_reported(tmp_path, no_network, monkeypatch):
    monkeypatch.setattr(data, "network_reachable", lambda url, timeout=0: True)  # probe passes, fetch fails
    with pytest.raises(data.DownloadError, match="train-labels-idx1-ubyte.gz"):
        data.load_mnist("train", root=tmp_path)
    with pytest.raises(data.DownloadError, match="download=False"):
        data.load_mnist("train", root=tmp_path, download=False)


def test_cifar10_without_files_or_network_says_what_to_download(tmp_path, no_network, monkeypatch):
    with pytest.raises(data.DownloadError) as error:
        data.load_cifar10(root=tmp_path)
    assert "cifar-10-python.tar.gz" in str(error.value) and str(tmp_path) in str(error.value)
    monkeypatch.setattr(data, "network_reachable", lambda url, timeout=0: True)
    with pytest.raises(data.DownloadError, match="URLError"):
        data.load_cifar10(root=tmp_path, train=False)


def test_network_reachable_is_false_without_network(no_network):
    start = time.perf_counter()
    assert data.network_reachable("https://example.invalid/x", timeout=2) is False
    assert time.perf_counter() - start < 3


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert data.data_dir() == tmp_path


# --- data sets that installed packages ship ---------------------------------------------


def test_load_digits_equals_scikit_learn():
    from sklearn.datasets import load_digits

    reference = load_digits()
    ours = data.load_digits()
    assert len(ours) == 1797 and ours.classes == [str(d) for d in range(10)]
    np.testing.assert_allclose(ours.images[:, 0].numpy() * 16, reference.images, atol=1e-5)
    assert ours.targets.tolist() == reference.target.tolist()
    _assert_item_conventions(ours, 1, 8)


def test_load_textures_are_skimage_blocks():
    import skimage.data
    from skimage.util import view_as_blocks

    ours = data.load_textures(patch_size=32)
    assert ours.classes == ["brick", "grass", "gravel"] and len(ours) == 3 * 256
    for label, name in enumerate(ours.classes):
        blocks = view_as_blocks(getattr(skimage.data, name)(), (32, 32)).reshape(-1, 32, 32)
        members = ours.images[ours.targets == label, 0]
        assert torch.equal(members, torch.from_numpy(blocks))
    _assert_item_conventions(ours, 1, 32)


def test_load_textures_per_class_is_deterministic_and_spread():
    a, b = data.load_textures(patch_size=64, per_class=5), data.load_textures(patch_size=64, per_class=5)
    assert torch.equal(a.images, b.images) and torch.bincount(a.targets).tolist() == [5, 5, 5]
    full = data.load_textures(patch_size=64)
    brick = full.images[full.targets == 0]  # 64 patches
    assert torch.equal(a.images[0], brick[0]) and torch.equal(a.images[4], brick[63])
    with pytest.raises(ValueError, match="per_class"):
        data.load_textures(patch_size=64, per_class=65)


def test_load_faces_first_hundred_are_faces_as_skimage_documents():
    import skimage.data

    assert "100 first images are faces" in skimage.data.lfw_subset.__doc__
    ours = data.load_faces()
    assert len(ours) == 200 and ours.classes[1] == "face"
    assert ours.targets[:100].eq(1).all() and ours.targets[100:].eq(0).all()
    np.testing.assert_allclose(ours.images[:, 0].numpy(), skimage.data.lfw_subset(), atol=1e-6)
    _assert_item_conventions(ours, 1, 25)


def test_load_photos_equal_skimage():
    import skimage.data

    photos = data.load_photos()
    assert list(photos) == ["cat", "astronaut", "coffee", "rocket"]
    for name, photo in photos.items():
        array = getattr(skimage.data, data.PHOTOS[name])()
        assert photo.shape == (3, *array.shape[:2]) and photo.dtype == torch.float32
        assert torch.equal(photo, torch.from_numpy(array).permute(2, 0, 1).float() / 255)
    with pytest.raises(ValueError, match="choose from"):
        data.load_photos(["dog"])


@pytest.mark.parametrize("name", ["cat", "astronaut"])
def test_to_model_input_equals_torchvision_transforms(name):
    from torchvision.transforms import v2

    photo = data.load_photos([name])[name]
    reference = v2.Compose([v2.Resize(256), v2.CenterCrop(224), v2.Normalize(data.IMAGENET_MEAN, data.IMAGENET_STD)])
    for image in (photo, photo.transpose(1, 2)):  # landscape and portrait
        ours = data.to_model_input(image)
        assert ours.shape == (1, 3, 224, 224)
        torch.testing.assert_close(ours[0], reference(image), atol=1e-5, rtol=0)
    restored = data.denormalize(data.to_model_input(photo, resize=None, size=200))
    torch.testing.assert_close(restored[0], v2.CenterCrop(200)(photo), atol=1e-6, rtol=0)


# --- subsets and splits ----------------------------------------------------------------


class _PlainDataset(Dataset):
    """A data set without `.targets`: labels are found by iterating."""

    def __init__(self, n=60, classes=3):
        self.labels = [i % classes for i in range(n)]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return torch.full((1, 2, 2), float(i)), self.labels[i]


def test_small_subset_is_stratified_seeded_and_drawn_from_the_data():
    mnist = data.load_mnist("test")
    a = data.small_subset(mnist, per_class=7, seed=1)
    assert torch.bincount(a.targets).tolist() == [7] * 10
    assert torch.equal(a.images, data.small_subset(mnist, 7, seed=1).images)
    assert not torch.equal(a.images, data.small_subset(mnist, 7, seed=2).images)
    plain = data.small_subset(_PlainDataset(), per_class=4, seed=0)
    assert isinstance(plain, data.LabelledSubset) and len(plain) == 12
    for i in range(len(plain)):
        image, label = plain[i]
        assert label == int(image[0, 0, 0]) % 3 == int(plain.targets[i])
    with pytest.raises(ValueError, match="fewer than per_class"):
        data.small_subset(mnist, per_class=2000)


def test_stratified_split_takes_from_each_class_by_one_seeded_permutation():
    targets = np.array([2, 0, 1, 0, 2, 2, 1, 0, 2, 1, 0, 2])
    taken, rest = data.stratified_split(targets, 2, seed=4)
    rng = np.random.default_rng(4)  # the oracle: permute each class in label order, take the first 2
    for label, (took, kept) in enumerate(zip(taken, rest)):
        members = rng.permutation(np.flatnonzero(targets == label))
        assert np.array_equal(took, members[:2]) and np.array_equal(kept, members[2:])
    by_size, _ = data.stratified_split(targets, lambda size: size // 2, seed=4)
    assert [len(part) for part in by_size] == [2, 1, 2]
    with pytest.raises(ValueError, match="class 1 has only 3 examples, fewer than per_class=4"):
        data.stratified_split(targets, 4, seed=0)


def test_file_digest_matches_hashlib(tmp_path):
    import hashlib

    path = tmp_path / "blob.bin"
    payload = bytes(range(256)) * 5000  # > 1 MiB: more than one chunk
    path.write_bytes(payload)
    for algorithm in ("md5", "sha256"):
        assert data.file_digest(path, algorithm) == hashlib.new(algorithm, payload).hexdigest()


def test_train_val_split_partitions_each_class():
    targets = data.load_digits().targets
    train_idx, val_idx = data.split_indices(targets, 0.25, seed=3)
    assert np.intersect1d(train_idx, val_idx).size == 0
    assert np.array_equal(np.sort(np.concatenate([train_idx, val_idx])), np.arange(len(targets)))
    for label in range(10):
        n = int((targets == label).sum())
        assert int((targets[val_idx] == label).sum()) == round(0.25 * n)
    train, val = data.train_val_split(data.load_digits(), 0.25, seed=3)
    assert len(train) + len(val) == 1797 and torch.equal(val.targets, targets[val_idx])
    with pytest.raises(ValueError, match="between 0 and 1"):
        data.train_val_split(data.load_digits(), 1.0)


def test_mnist_transfer_split_keeps_heldout_and_similar_apart():
    indices = data.mnist_transfer_indices()
    targets = data.load_mnist("test").targets.numpy()
    assert np.intersect1d(indices["pretrain"], indices["heldout"]).size == 0
    low = np.concatenate([indices["pretrain"], indices["heldout"]])
    assert np.array_equal(np.sort(low), np.flatnonzero(targets < 5))
    assert np.array_equal(indices["similar"], np.flatnonzero(targets >= 5))
    parts = data.mnist_transfer_split()
    assert parts["similar"].classes == ["5", "6", "7", "8", "9"]
    assert torch.equal(parts["similar"].targets + 5, torch.from_numpy(targets[indices["similar"]]))
    assert len(parts["heldout"]) == len(indices["heldout"]) == 1027


# --- caching -----------------------------------------------------------------------------


def test_cache_to_disk_round_trips_through_a_memmap(tmp_path):
    textures = data.load_textures(patch_size=32, per_class=20, transform=lambda x: x * 0.5)
    cached = data.cache_to_disk(textures, tmp_path / "cache", batch_size=16)
    assert isinstance(cached.images, np.memmap) and cached.images.flags["C_CONTIGUOUS"]
    assert len(cached) == len(textures) and cached.classes == textures.classes
    for i in (0, 17, len(textures) - 1):
        image, label = cached[i]
        original, original_label = textures[i]
        assert torch.equal(image, original) and label == original_label
    batches = list(cached.loader(batch_size=16))
    assert torch.equal(torch.cat([x for x, _ in batches]), torch.stack([textures[i][0] for i in range(len(textures))]))
    assert torch.equal(torch.cat([y for _, y in batches]), textures.targets)


def test_cached_loader_shuffles_every_example_once_with_its_label(tmp_path):
    cached = data.cache_to_disk(_PlainDataset(n=50), tmp_path)
    seen = []
    for x, y in cached.loader(batch_size=8, shuffle=True, seed=0):
        index = x[:, 0, 0, 0].long()
        assert torch.equal(y, index % 3)
        seen += index.tolist()
    assert sorted(seen) == list(range(50))
    order = [x[:, 0, 0, 0].tolist() for x, _ in cached.loader(8, shuffle=True, seed=0)]
    assert order != [x[:, 0, 0, 0].tolist() for x, _ in cached.loader(8, shuffle=False)]
    assert isinstance(cached.loader(8), DataLoader)


def test_assets_ship_with_the_installed_package():
    import importlib.resources

    root = importlib.resources.files("course_lib") / "assets"
    for name, _md5 in data.MNIST_TEST_FILES.values():
        assert (root / "mnist" / name).is_file()
    assert (root / "mnist" / "README.md").is_file()
    assert (root / "backbone" / "manifest.json").is_file()
