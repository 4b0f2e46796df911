from sklearn.manifold import TSNE

def knn_accuracy(points, labels, k):
    X = np.asarray(points, dtype=float)
    y = np.asarray(labels)
    d2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    order = np.argsort(d2, axis=1, kind="stable")[:, :k]
    hits = 0
    for i, row in enumerate(order):
        values, counts = np.unique(y[row], return_counts=True)
        hits += values[counts.argmax()] == y[i]
    return hits / len(y)

def tsne_map(features, seed):
    return TSNE(n_components=2, max_iter=1000, init="pca", learning_rate="auto", random_state=seed).fit_transform(np.asarray(features))
