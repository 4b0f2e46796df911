"""Draw the pictures of `course_lib.visualize` for the docs: docs/images/visualize_*.png.

    .venv/bin/python scripts/make_doc_images.py            # writes docs/images/
    .venv/bin/python scripts/make_doc_images.py --out DIR  # anywhere else (the slow test does)

Everything comes from data bundled with scikit-learn (digits) and scikit-image (two
photos, for colour filters), and from two small CNNs trained here for a few seconds; all seeded and run on
one CPU thread, so a rerun redraws the same pictures. No downloads. About 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib import visualize as vis  # noqa: E402

PNG = dict(dpi=110, metadata={"Software": None})  # no version stamp: reruns give the same bytes


# ---------------------------------------------------------------------------------------
# Data and models
# ---------------------------------------------------------------------------------------


def digits16() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 digits as (N, 1, 16, 16) in [0, 1], and their labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32)[:, None] / 16
    return F.interpolate(images, size=(16, 16), mode="bilinear"), torch.tensor(data.target)


def digits_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),        # 0 1 2: 8x8
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),       # 3 4 5: 4x4
        nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, 10),  # 6 7 8 9
    )


def photos() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-image's cat (chelsea) and coffee photos, downscaled, (3, H, W) in [0, 1]."""
    from skimage import data

    def load(image, size):
        x = torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)[None] / 255
        return F.interpolate(x, size=size, mode="area")[0]

    return load(data.chelsea(), (75, 112)), load(data.coffee(), (80, 120))


def photo_cnn() -> nn.Sequential:
    """Fully convolutional, so a model trained on 32x32 crops runs on any image size."""
    return nn.Sequential(
        nn.Conv2d(3, 12, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(12, 24, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(24, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 2),
    )


def random_crops(image: torch.Tensor, count: int, size: int, generator) -> torch.Tensor:
    _, h, w = image.shape
    rows = torch.randint(0, h - size + 1, (count,), generator=generator).tolist()
    cols = torch.randint(0, w - size + 1, (count,), generator=generator).tolist()
    return torch.stack([image[:, r:r + size, c:c + size] for r, c in zip(rows, cols)])


def fit(model: nn.Module, batches, lr: float) -> nn.Module:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for x, y in batches:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()


def train_digits(images, labels):
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)

    def batches(epochs=8, size=64):
        for _ in range(epochs):
            order = torch.randperm(len(images), generator=generator)
            for first in range(0, len(order), size):
                index = order[first:first + size]
                yield images[index], labels[index]

    return fit(digits_cnn(), batches(), lr=3e-3)


def train_photos(cat, coffee):
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)

    def batches(steps=300, half=16):
        for _ in range(steps):
            x = torch.cat([random_crops(cat, half, 32, generator), random_crops(coffee, half, 32, generator)])
            yield x, torch.cat([torch.zeros(half, dtype=torch.long), torch.ones(half, dtype=torch.long)])

    return fit(photo_cnn(), batches(), lr=3e-3)


# ---------------------------------------------------------------------------------------
# The pictures
# ---------------------------------------------------------------------------------------


def draw(out: Path) -> list[Path]:
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig, name):
        path = out / f"visualize_{name}.png"
        fig.savefig(path, **PNG)
        written.append(path)
        print(f"wrote {path}")

    images, labels = digits16()
    digits = train_digits(images, labels)
    with torch.no_grad():
        accuracy = (digits(images).argmax(1) == labels).float().mean().item()
    print(f"digits_cnn_train_accuracy: {accuracy:.3f}")
    cat, coffee = photos()
    photo = train_photos(cat, coffee)

    # activations and weights
    maps = vis.activations(digits, images[:1], "1")["1"]
    save(vis.plot_feature_maps(maps[0], title=f"conv1 + ReLU maps of a {labels[0].item()}"), "feature_maps")
    dead = vis.dead_channels(digits, images, "4")
    print(f"digits_conv2_dead_fraction: {dead.fraction:.3f}")
    save(vis.plot_filters(vis.filters(photo), title="first-layer filters (cat vs coffee CNN)"), "filters_rgb")
    conv2_filters = vis.plot_filters(vis.filters(digits, "3"), max_filters=8, title="conv2 filters per input channel")
    save(conv2_filters, "filters_conv2")

    # embeddings
    features, _ = vis.embed(digits, images)
    points = vis.tsne(features, seed=0)
    trust = vis.trustworthiness(features, points, n_neighbors=5)
    knn_map, knn_features = vis.knn_accuracy(points, labels, 5), vis.knn_accuracy(features, labels, 5)
    print(f"tsne_trustworthiness: {trust:.4f}")
    print(f"tsne_knn_accuracy_map: {knn_map:.4f}")
    print(f"tsne_knn_accuracy_features: {knn_features:.4f}")
    save(vis.plot_embedding(points, labels, images=images[:, 0], min_distance=0.07, zoom=0.9,
                            title="t-SNE of the penultimate features (digits)"), "tsne")

    # occlusion: a black 4x4 square (the digits' background) slides over a digit; shown for
    # the one among the first 50 whose class probability the square can lower the most
    grids = [(vis.occlusion_probability(digits, images[i], int(labels[i]), (4, 4), (1, 1)), i) for i in range(50)]
    grid, index = min(grids, key=lambda pair: pair[0].min().item())
    digit, target = images[index], int(labels[index])
    print(f"occlusion_digit_index: {index}")
    print(f"occlusion_probability_min_max: {grid.min().item():.3f} {grid.max().item():.3f}")
    attribution = vis.occlusion_map(digits, digit, target, window=(1, 3, 3), stride=(1, 1, 1), baseline=0.0)
    save(vis.plot_occlusion(digit, attribution, title=f"occlusion attribution for class {target}"), "occlusion")
    save(vis.plot_occlusion_probability(digit, grid, (4, 4), (1, 1), title=f"p({target}) as a black 4x4 square moves"),
         "occlusion_probability")

    # synthesized input and the images that excite one unit
    result = vis.maximize_activation(digits, "9", 3, steps=200, lr=0.05, image_size=(1, 16, 16), jitter=1,
                                     blur_every=4, blur_sigma=0.5, value_range=(0.0, 1.0), seed=0)
    save(vis.plot_synthesis(*result, title="an input that maximizes the logit of 3"), "synthesis")
    channel = int(vis.activations(digits, images, "4")["4"].mean(dim=(0, 2, 3)).argmax())
    patches = vis.top_activating_patches(digits, images, "4", channel, k=10)
    top = vis.plot_top_patches(images, patches, title=f"digit patches that excite conv2 channel {channel}")
    save(top, "top_patches")
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="folder for the PNG files")
    args = parser.parse_args(argv)
    draw(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
