# A logistic regression written in torch on the raw features, stopped after 20 small steps.
# expect: loses test_linear_classifier
# %% features_and_classifier
def extract_features(backbone, images):
    backbone.eval()
    with torch.no_grad():
        return backbone.head[:-1](backbone.features(images)).flatten(1)

class Linear:
    def __init__(self, layer):
        self.layer = layer

    def predict(self, features):
        with torch.no_grad():
            return self.layer(features).argmax(1)

def train_classifier(features, labels):
    layer = nn.Linear(features.shape[1], int(labels.max()) + 1)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.001)
    for _ in range(20):
        loss = F.cross_entropy(layer(features), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return Linear(layer)
