# Takes the k smallest distances without leaving the point out: its own distance 0 makes it
# one of its own voters.
# expect: loses test_knn_accuracy
# %% knn_and_tsne
from sklearn.manifold import TSNE

def knn_accuracy(points, labels, k):
    points = torch.as_tensor(points, dtype=torch.float64)
    labels = torch.as_tensor(labels)
    d = torch.cdist(points, points)
    nearest = d.argsort(dim=1)[:, :k]
    correct = 0
    for i in range(len(points)):
        votes = torch.bincount(labels[nearest[i]], minlength=int(labels.max()) + 1)
        correct += int(votes.argmax() == labels[i])
    return correct / len(points)

def tsne_map(features, seed):
    return TSNE(n_components=2, init="pca", learning_rate="auto", max_iter=1000,
                random_state=seed).fit_transform(np.asarray(features, dtype=np.float64))
