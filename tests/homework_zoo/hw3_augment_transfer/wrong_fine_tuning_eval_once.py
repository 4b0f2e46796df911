# Freezes the right parameters and calls model.eval() on the batch norms once; the training
# loop's model.train() switches them back, and their running statistics drift again.
# expect: loses test_fine_tuning
# %% fine_tuning
def prepare_fine_tuning(model, blocks, train_last):
    for p in model.parameters():
        p.requires_grad = False
    for block in blocks[len(blocks) - train_last:]:
        for p in block.parameters():
            p.requires_grad = True
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.eval()
