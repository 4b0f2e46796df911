# Takes the whole network's output (the logits after the last FC) as the features.
# expect: loses test_extract_features
# %% features_and_classifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

def extract_features(backbone, images):
    backbone.eval()
    with torch.no_grad():
        return backbone(images)

def train_classifier(features, labels):
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return classifier.fit(features.numpy(), labels.numpy())
