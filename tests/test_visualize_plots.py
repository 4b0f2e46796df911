"""Every plot function draws headless (Agg) and returns a Figure; files go to tmp_path only.
The pictures for the docs are made by scripts/make_doc_images.py (the slow test runs it)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnnotationBbox

from course_lib.visualize import (
    Patch,
    plot_embedding,
    plot_feature_maps,
    plot_filters,
    plot_occlusion,
    plot_occlusion_probability,
    plot_synthesis,
    plot_top_patches,
    to_display,
)

ROOT = Path(__file__).resolve().parents[1]


def saved(fig, tmp_path, name):
    assert isinstance(fig, Figure)
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    assert path.stat().st_size > 1000
    return fig


def images_in(fig):
    return [image for ax in fig.axes for image in ax.get_images()]


def test_feature_maps(tmp_path):
    fig = saved(plot_feature_maps(torch.randn(1, 5, 7, 9), title="conv1"), tmp_path, "maps")
    assert len(images_in(fig)) == 5
    assert images_in(fig)[0].get_array().shape == (7, 9)
    assert len(images_in(plot_feature_maps(torch.randn(40, 4, 4), max_maps=12))) == 12
    with pytest.raises(ValueError, match="pick one image"):
        plot_feature_maps(torch.randn(2, 5, 7, 9))


def test_filters_rgb_and_per_channel(tmp_path):
    rgb = saved(plot_filters(torch.rand(6, 3, 5, 5)), tmp_path, "rgb")
    assert len(images_in(rgb)) == 6 and images_in(rgb)[0].get_array().shape == (5, 5, 3)
    deep = saved(plot_filters(torch.rand(4, 10, 3, 3), max_channels=6, title="conv2"), tmp_path, "deep")
    assert len(images_in(deep)) == 4 * 6
    grey = plot_filters(torch.rand(7, 1, 3, 3))
    assert len(images_in(grey)) == 7 and images_in(grey)[0].get_array().shape == (3, 3)


def test_embedding_with_classes_and_thumbnails(tmp_path):
    rng = np.random.default_rng(0)
    points, labels = rng.normal(size=(60, 2)), np.arange(60) % 3
    fig = saved(plot_embedding(points, labels, images=torch.rand(60, 8, 8), min_distance=0.2), tmp_path, "tsne")
    ax = fig.axes[0]
    thumbnails = [a for a in ax.artists if isinstance(a, AnnotationBbox)]
    assert 1 <= len(thumbnails) < 60  # the spacing rule skipped crowded points
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]
    named = plot_embedding(points, labels, class_names=["cat", "dog", "owl"])
    assert [t.get_text() for t in named.axes[0].get_legend().get_texts()] == ["cat", "dog", "owl"]
    saved(plot_embedding(points), tmp_path, "plain")
    with pytest.raises(ValueError, match="one image per point"):
        plot_embedding(points, labels, images=torch.rand(5, 8, 8))


def test_occlusion_plots(tmp_path):
    image = torch.rand(3, 20, 24)
    attribution = torch.randn(3, 20, 24, dtype=torch.float64)
    fig = saved(plot_occlusion(image, attribution, title="cat"), tmp_path, "occlusion")
    np.testing.assert_allclose(images_in(fig)[1].get_array(), attribution.sum(dim=0).numpy())  # summed over channels
    grid = torch.rand(7, 9)  # window (4, 4), stride (3, 3): ceil(16/3) + 1 = 7 rows, ceil(20/3) + 1 = 9 cols
    fig = saved(plot_occlusion_probability(image, grid, (3, 4, 4), (3, 3, 3)), tmp_path, "probability")
    overlay = images_in(fig)[-1]
    left, right, bottom, top = overlay.get_extent()
    # first cell centred on the first occluder's centre (pixel 1.5), cells one stride wide
    assert (left + right) / 2 == pytest.approx(1.5 + 3 * (9 - 1) / 2)
    assert right - left == pytest.approx(3 * 9) and bottom - top == pytest.approx(3 * 7)
    plot_occlusion_probability(image[0:1], grid, (4, 4), 3)


def test_synthesis_and_top_patches(tmp_path):
    fig = saved(plot_synthesis(torch.rand(3, 16, 16), torch.linspace(0, 1, 50)), tmp_path, "synthesis")
    assert len(fig.axes) == 2 and len(fig.axes[1].get_lines()[0].get_xdata()) == 50
    assert len(plot_synthesis(torch.rand(1, 16, 16)).axes) == 1
    images = torch.rand(4, 3, 20, 20)
    patches = [Patch(2, (1, 1), 3.5, ((0, 7), (2, 9))), Patch(0, (4, 4), 2.0, ((10, 20), (12, 20)))]
    fig = saved(plot_top_patches(images, patches), tmp_path, "patches")
    assert [im.get_array().shape for im in images_in(fig)] == [(7, 7, 3), (10, 8, 3)]
    assert fig.axes[0].get_title() == "#2: 3.50"
    with pytest.raises(ValueError, match="no patches"):
        plot_top_patches(images, [])


def test_to_display_scales_to_unit_range():
    grey = to_display(torch.tensor([[[-2.0, 0.0], [2.0, 1.0]]]))
    np.testing.assert_allclose(grey, [[0.0, 0.5], [1.0, 0.75]])
    assert to_display(torch.rand(3, 4, 5)).shape == (4, 5, 3)
    assert to_display(torch.rand(8, 4, 5)).shape == (4, 5)  # other channel counts: averaged to grey
    assert (to_display(torch.ones(1, 3, 3)) == 0.5).all()


@pytest.mark.slow
def test_doc_image_script_writes_every_picture(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_doc_images.py"), "--out", str(tmp_path)],
                   check=True, env=env, cwd=ROOT, timeout=600)
    written = sorted(p.name for p in tmp_path.glob("*.png"))
    committed = sorted(p.name for p in (ROOT / "docs" / "images").glob("visualize_*.png"))
    assert written == committed and len(written) >= 7
