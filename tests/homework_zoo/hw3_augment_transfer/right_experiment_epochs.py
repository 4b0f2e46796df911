# Correct: batches from a seeded random permutation per pass over the data instead of random indices.
# expect: full marks
# %% augmentation_experiment
def train_with_augmentation(images, labels, augment_fn, steps, seed):
    torch.manual_seed(seed)
    model = SmallCNN(channels=(8, 16))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    order_generator = torch.Generator().manual_seed(seed)
    augment_generator = torch.Generator().manual_seed(1000 + seed)
    order, position = torch.randperm(len(images), generator=order_generator), 0
    for _ in range(steps):
        if position + 20 > len(order):
            order, position = torch.randperm(len(images), generator=order_generator), 0
        index = order[position:position + 20]
        position += 20
        x, y = images[index], labels[index]
        if augment_fn is not None:
            x, y = augment_fn(x, y, augment_generator)
        model.train()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model
