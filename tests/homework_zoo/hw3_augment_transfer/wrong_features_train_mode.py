# Forgets eval mode: dropout and batch norm still behave as in training.
# expect: loses test_extract_features
# %% features_and_classifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

def extract_features(backbone, images):
    with torch.no_grad():
        x = backbone.features(images)
        return backbone.head[:-1](x)

def train_classifier(features, labels):
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return classifier.fit(features.numpy(), labels.numpy())
