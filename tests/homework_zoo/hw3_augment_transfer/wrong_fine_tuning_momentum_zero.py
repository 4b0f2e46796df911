# Sets the batch norms' momentum to 0 so the running statistics stop changing, but in training
# mode they still normalize each batch with its own statistics.
# expect: loses test_fine_tuning
# %% fine_tuning
def prepare_fine_tuning(model, blocks, train_last):
    model.requires_grad_(False)
    for block in blocks[len(blocks) - train_last:]:
        block.requires_grad_(True)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.0
