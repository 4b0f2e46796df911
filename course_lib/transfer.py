"""Transfer learning: CNN codes + linear probes, fine-tuning the last k blocks, LoRA.

Three ways to reuse a trained network, cheapest first:

1. Feature extraction: `extract_features` collects the "CNN code" (by default the input
   of the last `nn.Linear`, i.e. the penultimate activations) and `linear_probe` fits a
   logistic regression on them.
2. Fine-tuning the last k blocks: `freeze(model, train_last=k)`; `freeze_bn` keeps the
   BatchNorm running statistics of a frozen backbone from drifting in `model.train()`.
3. Low-rank adaptation (LoRA, Hu et al. 2021): `apply_lora` wraps chosen `nn.Linear` /
   `nn.Conv2d` layers in `LoRALinear` / `LoRAConv2d`: the base weight W is frozen and the
   layer computes W x + (alpha / r) B A x with trainable A (r x in) and B (out x r, zero at
   the start, so the adapted model starts equal to the base model). The layout matches
   Hugging Face peft's `lora.Linear` / `lora.Conv2d`, so outputs equal peft's on the same
   weights (see `LoRAConv2d` for the one place peft 0.21 differs: dilation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from course_lib.device import eval_mode, module_device

# ---------------------------------------------------------------------------------------
# Feature extraction and linear probes
# ---------------------------------------------------------------------------------------


def extract_features(
    model: nn.Module, loader: Iterable, layer: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The "CNN code" of every example in `loader`.

    loader: yields (inputs, labels, ...) batches, inputs (B, ...) - moved to the model's
    device. layer: None takes the INPUT of the model's last `nn.Linear` (the last one
    registered, normally the classifier; a `LoRALinear` counts as one) - the
    penultimate activations; a name from
    `model.named_modules()` takes that module's OUTPUT instead.
    Each batch's activations are flattened to (B, D). The model runs in eval mode under
    `torch.no_grad()`; every module's mode is restored afterwards.
    Returns (features (N, D), labels (N,)), both on the CPU (ready for scikit-learn).
    """
    # BEGIN ANSWER hw3.Q3
    module = _last_linear(model) if layer is None else _named_module(model, layer)
    captured: list[torch.Tensor] = []
    if layer is None:
        handle = module.register_forward_pre_hook(lambda mod, args: captured.append(args[0]))
    else:
        handle = module.register_forward_hook(lambda mod, args, out: captured.append(out))
    device = module_device(model)
    features, labels = [], []
    try:
        with eval_mode(model), torch.no_grad():
            for batch in loader:
                inputs, targets = _inputs_and_labels(batch)
                captured.clear()
                model(inputs.to(device))
                features.append(_single_capture(captured, layer).flatten(1).cpu())  # (B, D)
                labels.append(torch.as_tensor(targets).reshape(-1).cpu())
    finally:
        handle.remove()
    if not features:
        raise ValueError("the loader yielded no batches; pass a non-empty DataLoader")
    return torch.cat(features), torch.cat(labels)
    # END ANSWER


def _last_linear(model: nn.Module) -> nn.Module:
    """The last registered nn.Linear; a LoRALinear counts as one (its inner layers do not)."""
    modules = [model] + [m for _, m in _lora_free_modules(model)]
    linears = [m for m in modules if isinstance(m, (nn.Linear, LoRALinear))]
    if not linears:
        raise ValueError(
            "the model has no nn.Linear, so there is no default feature layer; "
            "pass layer='<name>' (one of model.named_modules()) to take that layer's output"
        )
    return linears[-1]


def _named_module(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        names = [n for n in modules if n]
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise ValueError(f"the model has no module named {name!r}; choose one of: {shown}")
    return modules[name]


def _inputs_and_labels(batch):
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise ValueError(
        "expected the loader to yield (inputs, labels) batches, "
        f"got {type(batch).__name__}; wrap tensors in a TensorDataset(inputs, labels)"
    )


def _single_capture(captured: list[torch.Tensor], layer: str | None) -> torch.Tensor:
    if len(captured) != 1:
        where = "the last nn.Linear" if layer is None else f"layer {layer!r}"
        raise RuntimeError(
            f"{where} ran {len(captured)} times in one forward pass; pass layer='<name>' "
            "of a module that runs exactly once"
        )
    return captured[0]


@dataclass
class ProbeResult:
    """A fitted linear probe: the scikit-learn pipeline and its accuracies (in [0, 1])."""

    classifier: object  # sklearn Pipeline(StandardScaler, LogisticRegression)
    train_accuracy: float
    test_accuracy: float | None = None


def linear_probe(
    train_features,
    train_labels,
    test_features=None,
    test_labels=None,
    C: float = 1.0,
    max_iter: int = 2000,
) -> ProbeResult:
    """Fit a logistic regression on standardized features (a "linear probe").

    train_features: (N, D) tensor or array; train_labels: (N,). The classifier is
    `make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))`, so
    `classifier.predict` takes raw (unstandardized) features. test_features/test_labels
    (M, D)/(M,) are optional; test_accuracy is None without them.
    """
    # BEGIN ANSWER hw3.Q3
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _numpy(train_features), _numpy(train_labels)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    classifier.fit(x, y)
    result = ProbeResult(classifier, float(classifier.score(x, y)))
    if (test_features is None) != (test_labels is None):
        raise ValueError("pass both test_features and test_labels, or neither")
    if test_features is not None:
        result.test_accuracy = float(classifier.score(_numpy(test_features), _numpy(test_labels)))
    return result
    # END ANSWER


def _numpy(values):
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return values


# ---------------------------------------------------------------------------------------
# Freezing
# ---------------------------------------------------------------------------------------


def trainable_parameters(model: nn.Module) -> int:
    """Number of parameter elements with `requires_grad` (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def default_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The blocks `freeze` counts from the end, as (name, module) pairs in order.

    If the model has a `features` submodule with children: the children of `features`,
    then the model's other direct children (e.g. `head` or `classifier`). Otherwise the
    model's direct children (e.g. torchvision ResNet: conv1, bn1, layer1..layer4, fc).
    Blocks without parameters (ReLU, pooling, dropout) are left out, so k counts only
    blocks that can be trained.
    """
    features = getattr(model, "features", None)
    if isinstance(features, nn.Module) and len(features._modules) > 0:
        candidates = [(f"features.{name}", m) for name, m in features.named_children()]
        candidates += [(name, m) for name, m in model.named_children() if m is not features]
    else:
        candidates = list(model.named_children())
    return [(name, m) for name, m in candidates if any(True for _ in m.parameters())]


def freeze(
    model: nn.Module, train_last: int = 0, blocks: Sequence[nn.Module] | None = None
) -> list[str]:
    """Freeze every parameter of `model` except those of the last `train_last` blocks.

    blocks: the ordered list of blocks to count from the end (modules inside `model`);
    default `default_blocks(model)`. Every parameter's `requires_grad` is reset: True
    for the parameters of the last k blocks, False for all others. BatchNorm running
    statistics are not parameters - see `freeze_bn`.
    Returns the names of the blocks left trainable.
    """
    # BEGIN ANSWER hw3.Q5
    named = default_blocks(model) if blocks is None else _names_of(model, blocks)
    if not 0 <= train_last <= len(named):
        listed = ", ".join(name for name, _ in named)
        raise ValueError(
            f"train_last={train_last} but the model has {len(named)} blocks ({listed}); "
            f"use 0 <= train_last <= {len(named)}"
        )
    model.requires_grad_(False)
    trainable = named[len(named) - train_last:]
    for _, block in trainable:
        block.requires_grad_(True)
    return [name for name, _ in trainable]
    # END ANSWER


def _names_of(model: nn.Module, blocks: Sequence[nn.Module]) -> list[tuple[str, nn.Module]]:
    names = {id(m): name for name, m in model.named_modules()}
    missing = [i for i, block in enumerate(blocks) if id(block) not in names]
    if missing:
        raise ValueError(f"blocks {missing} are not submodules of the model; pass modules from inside it")
    return [(names[id(block)], block) for block in blocks]


def _keep_bn_eval(module: nn.Module, args) -> None:
    module.training = False  # forward pre-hook: normalize with (and never update) running stats


def freeze_bn(model: nn.Module) -> int:
    """Keep every BatchNorm layer in eval mode, even after a later `model.train()`.

    Approach: each `_BatchNorm` gets a forward pre-hook that sets `training = False`
    right before it runs, so it normalizes with its running statistics and never
    updates them (running_mean, running_var, num_batches_tracked stay fixed) whatever
    mode was set in between. Its weight and bias stay trainable unless frozen
    separately. Calling it twice adds no second hook. `unfreeze_bn` undoes it.
    Returns the number of BatchNorm layers affected.
    """
    # BEGIN ANSWER hw3.Q5
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    for layer in layers:
        layer.training = False
        if _keep_bn_eval not in layer._forward_pre_hooks.values():
            layer.register_forward_pre_hook(_keep_bn_eval)
    return len(layers)
    # END ANSWER


def unfreeze_bn(model: nn.Module) -> int:
    """Remove `freeze_bn`'s hooks (the layers follow `model.train()` / `eval()` again)."""
    # BEGIN ANSWER hw3.Q5
    count = 0
    for layer in model.modules():
        hooks = getattr(layer, "_forward_pre_hooks", {})
        for key in [k for k, hook in hooks.items() if hook is _keep_bn_eval]:
            del hooks[key]
            count += 1
    return count
    # END ANSWER


# ---------------------------------------------------------------------------------------
# LoRA
# ---------------------------------------------------------------------------------------


class _LoRABase(nn.Module):
    """Shared parts: frozen base, scaling alpha / r, merge / unmerge."""

    def __init__(self, base: nn.Module, r: int, alpha: float | None):
        # BEGIN ANSWER hw3.Q4
        super().__init__()
        self.base = base.requires_grad_(False)
        self.r = r
        self.alpha = float(r if alpha is None else alpha)
        self.scaling = self.alpha / r
        self.merged = False
        # END ANSWER

    def reset_lora_parameters(self) -> None:
        """A: Kaiming-uniform with a = sqrt(5) (nn.Linear's default, as in peft); B: zeros."""
        # BEGIN ANSWER hw3.Q4
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        # END ANSWER

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """base(x) + (alpha / r) B(A(x)); just base(x) while merged (W already holds the update)."""
        # BEGIN ANSWER hw3.Q4
        out = self.base(x)
        if self.merged:
            return out
        return out + self.lora_B(self.lora_A(x)) * self.scaling
        # END ANSWER

    @torch.no_grad()
    def merge(self) -> None:
        """Fold (alpha / r) B A into the base weight; forward then runs the base layer only.

        For inference: A and B get no gradient while merged. A no-op if already merged.
        """
        # BEGIN ANSWER hw3.Q4
        if not self.merged:
            self._fold(+1)
            self.merged = True
        # END ANSWER

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract the update from the base weight again (up to rounding). No-op if unmerged."""
        if self.merged:
            self._fold(-1)
            self.merged = False

    def _fold(self, sign: int) -> None:
        # BEGIN ANSWER hw3.Q4
        self.base.weight.add_(self.delta_weight(), alpha=sign)
        # END ANSWER

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}, merged={self.merged}"


def _check_rank(r: int, limit: int, limit_text: str, layer: nn.Module) -> None:
    if not isinstance(r, int) or r < 1 or r > limit:
        raise ValueError(
            f"LoRA rank r={r} is outside 1..{limit} for {layer}: the rank must be at least 1 "
            f"and at most {limit_text} = {limit}; choose 1 <= r <= {limit}"
        )


class LoRALinear(_LoRABase):
    """LoRA for `nn.Linear`: y = W x + b + (alpha / r) B A x with W, b frozen.

    base: nn.Linear(in, out). A: nn.Linear(in, r, bias=False) - weight (r, in),
    Kaiming-uniform; B: nn.Linear(r, out, bias=False) - weight (out, r), zeros.
    alpha: None means alpha = r (scaling 1). Trainable parameters: r (in + out).
    Rank: 1 <= r <= min(in, out), else ValueError. x: (..., in) -> (..., out).
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float | None = None):
        # BEGIN ANSWER hw3.Q4
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}; use LoRAConv2d for convs")
        _check_rank(r, min(base.in_features, base.out_features), "min(in_features, out_features)", base)
        super().__init__(base, r, alpha)
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Linear(base.in_features, r, bias=False, **factory)
        self.lora_B = nn.Linear(r, base.out_features, bias=False, **factory)
        self.reset_lora_parameters()
        # END ANSWER

    def delta_weight(self) -> torch.Tensor:
        """(alpha / r) B A: (out, in), the update of the base weight."""
        # BEGIN ANSWER hw3.Q4
        return self.scaling * (self.lora_B.weight @ self.lora_A.weight)
        # END ANSWER


class LoRAConv2d(_LoRABase):
    """LoRA for `nn.Conv2d`, laid out as peft's `lora.Conv2d`.

    base: nn.Conv2d(in, out, (kh, kw), stride, padding, dilation, groups=g).
    A: nn.Conv2d(in, r, (kh, kw), same stride, padding, dilation and padding_mode as
       the base, groups=1, bias=False), Kaiming-uniform - it sees ALL input channels.
    B: nn.Conv2d(r, out, 1, groups=g, bias=False), zeros - output group j reads rank
       channels j r/g .. (j+1) r/g - 1.
    y = base(x) + (alpha / r) B(A(x)); alpha None means alpha = r.

    Trainable parameters: r * in * kh * kw + out * r / g.
    Rank: 1 <= r <= min(out, in * kh * kw) - the rank of the weight seen as an
    (out) x (in kh kw) matrix - and r a multiple of g (B's groups); else ValueError.

    With g > 1 the update (`delta_weight`, (out, in, kh, kw)) mixes channels across
    groups, so it does not fit the grouped base weight (out, in / g, kh, kw): `merge`
    then turns the base into the equivalent dense conv (weight (out, in, kh, kw),
    groups=1: g times the weights and MACs) and `unmerge` restores the grouped weight
    from the diagonal blocks. (peft refuses to merge when g > 1.) Difference from peft
    0.21: peft builds A without the base's dilation and padding_mode (peft issue #3697),
    so for dilation > 1 peft's shapes do not match; ours follows the base.
    """

    def __init__(self, base: nn.Conv2d, r: int, alpha: float | None = None):
        # BEGIN ANSWER hw3.Q6
        if not isinstance(base, nn.Conv2d):
            raise TypeError(f"LoRAConv2d wraps an nn.Conv2d, got {type(base).__name__}; use LoRALinear for linears")
        kh, kw = base.kernel_size
        groups = base.groups
        limit = min(base.out_channels, base.in_channels * kh * kw)
        _check_rank(r, limit, "min(out_channels, in_channels * kh * kw)", base)
        if r % groups:
            raise ValueError(
                f"LoRA rank r={r} is not a multiple of groups={groups} for {base}: B is a 1x1 conv "
                f"with the base's groups; choose r in {groups}, {2 * groups}, ... up to {limit}"
            )
        super().__init__(base, r, alpha)
        self.groups = groups
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Conv2d(
            base.in_channels, r, base.kernel_size, base.stride, base.padding, base.dilation,
            groups=1, bias=False, padding_mode=base.padding_mode, **factory,
        )
        self.lora_B = nn.Conv2d(r, base.out_channels, 1, groups=groups, bias=False, **factory)
        self.reset_lora_parameters()
        # END ANSWER

    def delta_weight(self) -> torch.Tensor:
        """(alpha / r) B A as one dense conv kernel: (out, in, kh, kw), groups=1.

        B's grouped 1x1 weight (out, r/g, 1, 1) is expanded to the block-diagonal
        (out, r) matrix, then contracted with A's weight (r, in, kh, kw).
        """
        # BEGIN ANSWER hw3.Q6
        b = self.lora_B.weight[:, :, 0, 0]  # (out, r/g)
        b_full = torch.block_diag(*b.chunk(self.groups, dim=0))  # (out, r)
        return self.scaling * torch.einsum("or,rikl->oikl", b_full, self.lora_A.weight)
        # END ANSWER

    def _fold(self, sign: int) -> None:
        # BEGIN ANSWER hw3.Q6
        if self.groups == 1:
            return super()._fold(sign)
        if sign > 0:  # grouped -> dense (groups=1) + delta
            weight = _grouped_to_dense(self.base.weight, self.groups) + self.delta_weight()
            self.base.groups = 1
        else:  # dense - delta -> grouped (the off-diagonal blocks are zero up to rounding)
            weight = _dense_to_grouped(self.base.weight - self.delta_weight(), self.groups)
            self.base.groups = self.groups
        self.base.weight = nn.Parameter(weight, requires_grad=False)
        # END ANSWER


def _grouped_to_dense(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """(out, in/g, kh, kw) grouped kernel -> the block-diagonal dense (out, in, kh, kw)."""
    out, in_per_group = weight.shape[:2]
    dense = weight.new_zeros(out, in_per_group * groups, *weight.shape[2:])
    out_per_group = out // groups
    for j in range(groups):
        rows = slice(j * out_per_group, (j + 1) * out_per_group)
        dense[rows, j * in_per_group:(j + 1) * in_per_group] = weight[rows]
    return dense


def _dense_to_grouped(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """The diagonal blocks of a dense (out, in, kh, kw) kernel: (out, in/g, kh, kw)."""
    out, channels = weight.shape[:2]
    out_per_group, in_per_group = out // groups, channels // groups
    blocks = [
        weight[j * out_per_group:(j + 1) * out_per_group, j * in_per_group:(j + 1) * in_per_group]
        for j in range(groups)
    ]
    return torch.cat(blocks).clone()


LORA_LAYERS = (LoRALinear, LoRAConv2d)


def apply_lora(
    model: nn.Module,
    r: int,
    alpha: float | None = None,
    target_modules: Sequence[str | type] | str | type = (nn.Linear, nn.Conv2d),
) -> nn.Module:
    """Wrap the targeted Linear / Conv2d layers of `model` in LoRA layers, in place.

    target_modules: one target or a sequence of them. A string matches the module whose
    qualified name (from `model.named_modules()`) equals it or ends with "." + it (so
    "fc" matches "fc" and "head.fc", as in peft); a type (nn.Linear, nn.Conv2d) matches
    every module of that type. Layers already inside a LoRA layer are never wrapped
    again (a name that matches a LoRA layer is skipped). Default: every nn.Linear and
    nn.Conv2d.
    Afterwards every parameter is frozen except the A and B of all LoRA layers of the
    model. Returns the model. Raises ValueError if a string target matches nothing, if a
    target matches a module that is not nn.Linear / nn.Conv2d, if nothing is matched, or
    if a rank is invalid for a layer (the message names the layer).
    """
    targets = [target_modules] if isinstance(target_modules, (str, type)) else list(target_modules)
    matched = _match_targets(model, targets)
    wrappers: dict[int, nn.Module] = {}
    for name, module in matched:
        if id(module) not in wrappers:
            wrappers[id(module)] = _wrap(name, module, r, alpha)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, wrappers[id(module)])
    model.requires_grad_(False)
    for layer in model.modules():
        if isinstance(layer, LORA_LAYERS):
            layer.lora_A.requires_grad_(True)
            layer.lora_B.requires_grad_(True)
    return model


def _lora_free_modules(model: nn.Module, prefix: str = ""):
    """(name, module) pairs of `model`, not descending into existing LoRA layers."""
    for name, child in model.named_children():
        full = f"{prefix}{name}"
        yield full, child
        if not isinstance(child, LORA_LAYERS):
            yield from _lora_free_modules(child, full + ".")


def _match_targets(model: nn.Module, targets: list) -> list[tuple[str, nn.Module]]:
    modules = list(_lora_free_modules(model))
    if isinstance(model, (nn.Linear, nn.Conv2d)):
        raise ValueError("the model itself is a single layer; wrap it directly with LoRALinear / LoRAConv2d")
    matched: dict[str, nn.Module] = {}
    for target in targets:
        if isinstance(target, str):
            hits = [(n, m) for n, m in modules if n == target or n.endswith("." + target)]
            if not hits:
                available = [n for n, m in modules if isinstance(m, (nn.Linear, nn.Conv2d))]
                raise ValueError(
                    f"target {target!r} matches no module; Linear/Conv2d modules are: "
                    + (", ".join(available) or "none")
                )
        elif isinstance(target, type) and issubclass(target, nn.Module):
            hits = [(n, m) for n, m in modules if isinstance(m, target)]
        else:
            raise ValueError(f"a target is a module name or a module type, got {target!r}")
        for name, module in hits:
            if isinstance(module, LORA_LAYERS):
                continue  # already adapted
            if not isinstance(module, (nn.Linear, nn.Conv2d)):
                raise ValueError(
                    f"target {target!r} matched {name} ({type(module).__name__}); "
                    "LoRA wraps nn.Linear and nn.Conv2d only - name those layers instead"
                )
            matched[name] = module
    if not matched:
        raise ValueError("no module matched target_modules; name Linear/Conv2d layers or pass nn.Linear / nn.Conv2d")
    return list(matched.items())


def _wrap(name: str, module: nn.Module, r: int, alpha: float | None) -> nn.Module:
    try:
        if isinstance(module, nn.Conv2d):
            return LoRAConv2d(module, r, alpha)
        return LoRALinear(module, r, alpha)
    except ValueError as error:
        raise ValueError(f"{name}: {error}; or leave {name!r} out of target_modules") from error


def lora_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The LoRA layers of `model` by qualified name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LORA_LAYERS)}


def merge_lora(model: nn.Module) -> None:
    """`merge()` every LoRA layer of the model (for inference)."""
    for layer in lora_layers(model).values():
        layer.merge()


def unmerge_lora(model: nn.Module) -> None:
    """`unmerge()` every LoRA layer of the model."""
    for layer in lora_layers(model).values():
        layer.unmerge()
