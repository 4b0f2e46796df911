# Reads perplexity as "how much of the data each point looks at" and sets it to half the
# points: every point attends to everyone, and the clusters melt into one blob.
# expect: loses test_tsne_map
# %% knn_and_tsne
from sklearn.manifold import TSNE

def knn_accuracy(points, labels, k):
    points = torch.as_tensor(points, dtype=torch.float64)
    labels = torch.as_tensor(labels)
    d = torch.cdist(points, points)
    d.fill_diagonal_(float("inf"))
    nearest = d.topk(k, largest=False).indices
    votes = torch.nn.functional.one_hot(labels[nearest], int(labels.max()) + 1).sum(1)
    return (votes.argmax(1) == labels).double().mean().item()

def tsne_map(features, seed):
    x = np.asarray(features, dtype=np.float64)
    return TSNE(n_components=2, perplexity=len(x) / 2, init="pca", learning_rate="auto", max_iter=1000,
                random_state=seed).fit_transform(x)
