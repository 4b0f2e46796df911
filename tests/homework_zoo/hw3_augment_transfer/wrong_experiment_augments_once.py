# Augments the training set once, before training: the model sees one fixed shifted copy.
# expect: loses test_augmentation_experiment
# %% augmentation_experiment
def train_with_augmentation(images, labels, augment_fn, steps, seed):
    torch.manual_seed(seed)
    model = SmallCNN(channels=(8, 16))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    if augment_fn is not None:
        images, labels = augment_fn(images, labels, torch.Generator().manual_seed(seed + 1))
    for _ in range(steps):
        index = torch.randint(len(images), (20,), generator=generator)
        loss = F.cross_entropy(model(images[index]), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model
