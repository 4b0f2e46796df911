# Correct: each batch norm's own train() is replaced so that model.train() cannot switch it back;
# parameters frozen through the set of trainable ones.
# expect: full marks
# %% fine_tuning
def prepare_fine_tuning(model, blocks, train_last):
    trainable = set()
    for block in blocks[len(blocks) - train_last:]:
        trainable |= {id(p) for p in block.parameters()}
    for p in model.parameters():
        p.requires_grad = id(p) in trainable
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            m.eval()
            m.train = lambda mode=True, m=m: m
