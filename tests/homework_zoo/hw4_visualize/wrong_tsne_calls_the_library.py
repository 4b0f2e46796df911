# "The lecture's library already has one": course_lib's own t-SNE instead of configuring scikit-learn's.
# expect: loses test_tsne_map
# %% knn_and_tsne
from course_lib import visualize

def knn_accuracy(points, labels, k):
    points = torch.as_tensor(points, dtype=torch.float64)
    labels = torch.as_tensor(labels)
    d = torch.cdist(points, points)
    d.fill_diagonal_(float("inf"))
    nearest = d.topk(k, largest=False).indices
    votes = torch.nn.functional.one_hot(labels[nearest], int(labels.max()) + 1).sum(1)
    return (votes.argmax(1) == labels).double().mean().item()

def tsne_map(features, seed):
    return visualize.tsne(np.asarray(features, dtype=np.float64), seed=seed)
