# blocks[-train_last:] looks right, but blocks[-0:] is every block: train_last=0 trains everything.
# expect: loses test_fine_tuning
# %% fine_tuning
from torch.nn.modules.batchnorm import _BatchNorm

def prepare_fine_tuning(model, blocks, train_last):
    model.requires_grad_(False)
    for block in blocks[-train_last:]:
        block.requires_grad_(True)
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.register_forward_pre_hook(lambda m, inputs: setattr(m, "training", False))
