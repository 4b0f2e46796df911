"""Reading a data set from a `cache_to_disk` memmap vs loading it item by item.

    python benchmarks/bench_data_cache.py

The original: the bundled MNIST test set with a typical per-item transform (resize to
32x32, normalize), read through a DataLoader item by item. The cache: the same images
after `cache_to_disk`, read through a DataLoader item by item and through
`CachedDataset.loader`, which reads each batch as one slice. Prints `name: value` lines;
`cache_speedup` is batched-cache images/s over original images/s (best of `REPEATS`).
"""

from __future__ import annotations

import tempfile
import time

import torch
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from course_lib import data

BATCH_SIZE = 256
REPEATS = 3


def images_per_second(batches) -> float:
    """Best-of-REPEATS throughput of one full pass over `batches()` (a fresh iterable each call)."""
    best = 0.0
    for _ in range(REPEATS):
        start, count = time.perf_counter(), 0
        for x, _ in batches():
            count += x.shape[0]
        best = max(best, count / (time.perf_counter() - start))
    return best


def main() -> None:
    torch.set_num_threads(1)  # the per-item transform is single-threaded work either way
    transform = v2.Compose([v2.Resize(32, antialias=True), v2.Normalize([0.1307], [0.3081])])
    original = data.load_mnist("test", transform=transform)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        cached = data.cache_to_disk(original, folder, batch_size=BATCH_SIZE)
        write_s = time.perf_counter() - start
        x_original = next(iter(DataLoader(original, batch_size=8)))[0]
        assert torch.equal(cached[0:8][0], x_original), "the cache does not hold the transformed images"
        original_rate = images_per_second(lambda: DataLoader(original, batch_size=BATCH_SIZE))
        itemwise_rate = images_per_second(lambda: DataLoader(cached, batch_size=BATCH_SIZE))
        batched_rate = images_per_second(lambda: cached.loader(BATCH_SIZE, shuffle=True, seed=0))
        size_mb = cached.images.nbytes / 2**20
    print(f"images: {len(original)}")
    print(f"cache_size_mb: {size_mb:.1f}")
    print(f"cache_write_s: {write_s:.2f}")
    print(f"original_images_per_s: {original_rate:.0f}")
    print(f"cached_itemwise_images_per_s: {itemwise_rate:.0f}")
    print(f"cached_batched_images_per_s: {batched_rate:.0f}")
    print(f"itemwise_speedup: {itemwise_rate / original_rate:.1f}")
    print(f"cache_speedup: {batched_rate / original_rate:.1f}")


if __name__ == "__main__":
    main()
