# Forgets torch.no_grad(): the features drag the autograd graph along.
# expect: loses test_extract_features
# %% features_and_classifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

def extract_features(backbone, images):
    backbone.eval()
    return backbone.head[:-1](backbone.features(images))

def train_classifier(features, labels):
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return classifier.fit(features.detach().numpy(), labels.numpy())
