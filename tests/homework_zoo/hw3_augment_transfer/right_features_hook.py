# Correct: a forward pre-hook catches the input of the last nn.Linear; the modes are restored.
# expect: full marks
# %% features_and_classifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

def extract_features(backbone, images):
    last = [m for m in backbone.modules() if isinstance(m, nn.Linear)][-1]
    caught = []
    handle = last.register_forward_pre_hook(lambda module, inputs: caught.append(inputs[0]))
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            backbone(images)
    finally:
        handle.remove()
        backbone.train(was_training)
    return caught[0]

class ScaledLogistic:
    def __init__(self, features, labels):
        self.scaler = StandardScaler().fit(features)
        self.model = LogisticRegression(C=0.5, max_iter=3000).fit(self.scaler.transform(features), labels)

    def predict(self, features):
        return self.model.predict(self.scaler.transform(features))

def train_classifier(features, labels):
    return ScaledLogistic(features.numpy(), labels.numpy())
