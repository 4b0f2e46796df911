# Counts votes with collections.Counter: on a tie, most_common returns the label met first,
# the nearest neighbour's, not the smallest label.
# expect: loses test_knn_accuracy
# %% knn_and_tsne
from collections import Counter
from sklearn.manifold import TSNE

def knn_accuracy(points, labels, k):
    points = np.asarray(points, dtype=np.float64)
    labels = np.asarray(labels)
    d = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    correct = 0
    for i in range(len(points)):
        nearest = np.argsort(d[i])[:k]
        label = Counter(labels[nearest].tolist()).most_common(1)[0][0]
        correct += label == labels[i]
    return float(correct / len(points))

def tsne_map(features, seed):
    return TSNE(n_components=2, init="pca", learning_rate="auto", max_iter=1000,
                random_state=seed).fit_transform(np.asarray(features, dtype=np.float64))
