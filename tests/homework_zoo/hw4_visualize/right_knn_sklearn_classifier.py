# Correct: scikit-learn's KNeighborsClassifier refit without each point in turn (its vote
# breaks ties toward the smallest label), and t-SNE with other valid settings.
# expect: full marks
# %% knn_and_tsne
from sklearn.manifold import TSNE
from sklearn.neighbors import KNeighborsClassifier

def knn_accuracy(points, labels, k):
    x = np.asarray(points, dtype=np.float64)
    y = np.asarray(labels)
    correct = 0
    for i in range(len(x)):
        others = np.arange(len(x)) != i
        knn = KNeighborsClassifier(n_neighbors=k).fit(x[others], y[others])
        correct += int(knn.predict(x[i:i + 1])[0] == y[i])
    return correct / len(x)

def tsne_map(features, seed):
    x = np.asarray(features, dtype=np.float64)
    return TSNE(perplexity=20, init="pca", learning_rate=200.0, max_iter=750, random_state=seed).fit_transform(x)
