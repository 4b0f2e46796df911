"""embed / tsne / knn_accuracy / trustworthiness against scikit-learn and plain forward passes.

The t-SNE check runs on scikit-learn's digits (8x8 pixels, 64 features): on a stratified
600-image subset in the default run (about 2 s on 2 cores) and on all 1797 images in the
`slow` run (about 10 s).
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.manifold import trustworthiness as sklearn_trustworthiness
from sklearn.model_selection import LeaveOneOut, cross_val_score, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.visualize import embed, knn_accuracy, trustworthiness, tsne


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


def check_map(X, y, label):
    points = tsne(X, seed=0)
    trust = trustworthiness(X, points, n_neighbors=5)
    knn_map, knn_pixels = knn_accuracy(points, y, k=5), knn_accuracy(X, y, k=5)
    print(f"{label}: trustworthiness {trust:.4f}, 5-NN accuracy map {knn_map:.4f}, pixels {knn_pixels:.4f}")
    assert points.shape == (len(X), 2)
    assert trust > 0.9
    assert abs(knn_map - knn_pixels) <= 0.05


def test_tsne_of_digits_subset_keeps_neighbours_and_classes(digits):
    X, y = digits
    X, _, y, _ = train_test_split(X, y, train_size=600, stratify=y, random_state=0)
    check_map(X, y, "digits, 600 stratified")


@pytest.mark.slow
def test_tsne_of_all_digits_keeps_neighbours_and_classes(digits):
    check_map(*digits, "digits, all 1797")


def test_tsne_is_reproducible_and_checks_perplexity(digits):
    X = digits[0][:80]
    first, second = tsne(X, seed=3, max_iter=250), tsne(torch.tensor(X), seed=3, max_iter=250)
    np.testing.assert_allclose(first, second)
    assert tsne(X, seed=3, max_iter=250, pca_components=10).shape == (80, 2)
    with pytest.raises(ValueError, match="perplexity must be between 0 and the number of points"):
        tsne(X[:20], perplexity=30)


@pytest.mark.parametrize("k", [1, 4, 5])
def test_knn_accuracy_equals_leave_one_out_kneighbors_classifier(digits, k):
    X, y = digits[0][:150], digits[1][:150]
    X = X + np.random.default_rng(0).normal(scale=4.0, size=X.shape)  # harder, so errors happen
    with threadpool_limits(limits=1):  # 150 tiny fits; OpenMP threads only add waiting on 2 busy cores
        expected = cross_val_score(KNeighborsClassifier(n_neighbors=k), X, y, cv=LeaveOneOut()).mean()
    assert expected < 1.0
    assert knn_accuracy(X, y, k=k) == pytest.approx(expected)
    assert knn_accuracy(torch.tensor(X), torch.tensor(y), k=k) == pytest.approx(expected)


def test_trustworthiness_is_scikit_learns(digits):
    X = digits[0][:200]
    embedding = np.random.default_rng(1).normal(size=(200, 2)) + X[:, :2]
    assert trustworthiness(X, embedding, 7) == pytest.approx(sklearn_trustworthiness(X, embedding, n_neighbors=7))
    with pytest.raises(ValueError, match="one map point per row"):
        trustworthiness(X, embedding[:10])


def classifier():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Dropout(0.5), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(16, 6), nn.ReLU(), nn.Linear(6, 10),
    )


def test_embed_takes_the_input_of_the_last_linear(device):
    model = classifier().to(device).train()
    images, labels = torch.randn(23, 1, 8, 8), torch.arange(23) % 10
    features, got_labels = embed(model, DataLoader(TensorDataset(images, labels), batch_size=8))
    assert all(m.training for m in model.modules()), "the train mode must be restored"
    model.eval()
    with torch.no_grad():
        expected = model[:7](images.to(device)).cpu()
    torch.testing.assert_close(features, expected)
    assert features.shape == (23, 6) and features.device.type == "cpu"
    assert torch.equal(got_labels, labels)


def test_embed_of_a_named_layer_from_a_tensor():
    model = classifier().eval()
    images = torch.randn(5, 1, 8, 8)
    features, labels = embed(model, images, layer="3")
    torch.testing.assert_close(features, model[:4](images).flatten(1).detach())
    assert labels is None and features.shape == (5, 16)
    with pytest.raises(ValueError, match="no layer named 'fc'"):
        embed(model, images, layer="fc")
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        embed(model, images[0])
