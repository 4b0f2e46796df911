"""Training and evaluation loops: `fit`, `evaluate`, `predict`.

`fit` trains a classifier with cross-entropy (or a given loss) and returns a `History` of
per-epoch train / validation loss and accuracy and wall time. It runs on
`course_lib.device.get_device()` unless told otherwise, uses mixed precision
(`torch.autocast` + `GradScaler`) only on CUDA, and shows a tqdm progress bar only when
stderr is a terminal and `COURSE_QUIET` is not set (nbgrader counts stderr text as a
failure, so tests and graders stay silent).

Losses and accuracies are means over examples (not over batches), so a smaller last
batch counts for exactly what it holds.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from course_lib.device import eval_mode, get_device, module_device

QUIET_ENV = "COURSE_QUIET"
MOMENTUM = 0.9
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.01, "adam": 1e-3, "rmsprop": 1e-3}
OPTIMIZERS = tuple(DEFAULT_LR)


@dataclass
class History:
    """Per-epoch records of a `fit` run; the val lists stay empty without a val loader."""

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.train_loss)

    def as_dict(self) -> dict[str, list[float]]:
        return asdict(self)


def make_optimizer(name: str, parameters: Iterable, lr: float | None = None, weight_decay: float = 0.0):
    """The optimizer called `name`, with the lecture's defaults.

    sgd: SGD(lr=0.1); momentum: SGD(lr=0.01, momentum=0.9); adam: Adam(lr=1e-3);
    rmsprop: RMSprop(lr=1e-3). `lr` overrides the default; `weight_decay` is L2 (coupled).
    """
    if name not in DEFAULT_LR:
        raise ValueError(
            f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)} or pass a torch.optim.Optimizer"
        )
    lr = DEFAULT_LR[name] if lr is None else lr
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, weight_decay=weight_decay)
    if name == "momentum":
        return torch.optim.SGD(parameters, lr=lr, momentum=MOMENTUM, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    return torch.optim.RMSprop(parameters, lr=lr, weight_decay=weight_decay)


def fit(model: nn.Module, train_loader: Iterable, val_loader: Iterable | None = None, epochs: int = 1,
        optimizer: str | torch.optim.Optimizer = "sgd", lr: float | None = None, weight_decay: float = 0.0,
        device=None, amp: bool | None = None, progress: bool | None = None,
        loss_fn: Callable | None = None, scheduler: Callable | None = None) -> History:
    """Train `model` for `epochs` epochs on batches `(x (B, ...), y (B,))`; return a `History`.

    optimizer: a name from `OPTIMIZERS` (built by `make_optimizer` with `lr`, `weight_decay`)
        or a ready `torch.optim.Optimizer` over the model's parameters.
    device: where to train (default `get_device()`); the model is moved there.
    amp: mixed precision (float16 autocast + GradScaler); None = on exactly when on CUDA.
    progress: show a tqdm bar; None = only if stderr is a terminal and COURSE_QUIET is unset.
    loss_fn: mean-reduced loss(logits, y), default cross-entropy.
    scheduler: optional `optimizer -> LRScheduler`, stepped once after each epoch.
    """
    device = torch.device(device) if device is not None else get_device()
    use_amp = _use_amp(amp, device)
    model.to(device)
    opt = _optimizer(optimizer, model, lr, weight_decay)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    sched = scheduler(opt) if scheduler is not None else None
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    history = History()
    for epoch in range(epochs):
        start = time.perf_counter()
        history.lr.append(opt.param_groups[0]["lr"])
        bar = _bar(train_loader, progress, f"epoch {epoch + 1}/{epochs}")
        loss, accuracy = _train_epoch(model, bar, opt, loss_fn, device, use_amp, scaler)
        history.train_loss.append(loss)
        history.train_accuracy.append(accuracy)
        if val_loader is not None:
            val_loss, val_accuracy = evaluate(model, val_loader, device=device, loss_fn=loss_fn)
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_accuracy)
        if sched is not None:
            sched.step()
        history.seconds.append(time.perf_counter() - start)
        _close_bar(bar, history)
    return history


def _train_epoch(model, batches, opt, loss_fn, device, use_amp, scaler) -> tuple[float, float]:
    """One pass over `batches` in train mode: (mean loss, accuracy) over the examples seen."""
    model.train()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    count = 0
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            logits = model(x)  # (B, K)
            loss = loss_fn(logits, y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        total_loss += loss.detach().float() * y.shape[0]
        correct += (logits.argmax(dim=1) == y).sum()
        count += y.shape[0]
    if count == 0:
        raise ValueError("train_loader yielded no batches; check the dataset and batch size")
    return total_loss.item() / count, correct.item() / count


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device=None, loss_fn: Callable | None = None) -> tuple[float, float]:
    """(mean loss, accuracy) of `model` over every example of `loader`, in eval mode.

    loader yields `(x (B, ...), y (B,))`. device: default the model's own device (the model
    is not moved). Every module's train/eval mode is restored afterwards.
    """
    device = torch.device(device) if device is not None else module_device(model)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    total_loss, correct, count = 0.0, 0, 0
    with eval_mode(model):
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)  # (B, K)
            total_loss += loss_fn(logits.float(), y).item() * y.shape[0]
            correct += (logits.argmax(dim=1) == y).sum().item()
            count += y.shape[0]
    if count == 0:
        raise ValueError("the loader yielded no batches; nothing to evaluate")
    return total_loss / count, correct / count


@torch.no_grad()
def predict(model: nn.Module, data, batch_size: int = 256) -> torch.Tensor:
    """Logits of `model` in eval mode, run on the model's device.

    data: a tensor x (N, ...) -> logits (N, K) on x's device; or a DataLoader / iterable
    of batches `x` or `(x, y)`, or a Dataset of `(x, y)` -> logits (N, K) on the CPU.
    """
    device = module_device(model)
    with eval_mode(model):
        if isinstance(data, torch.Tensor):
            outputs = [model(chunk.to(device)).to(data.device) for chunk in data.split(batch_size)]
            return torch.cat(outputs)
        if isinstance(data, Dataset):
            data = DataLoader(data, batch_size=batch_size, shuffle=False)
        outputs = []
        for batch in data:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            outputs.append(model(x.to(device)).cpu())
        return torch.cat(outputs)


def _optimizer(optimizer, model, lr, weight_decay):
    if isinstance(optimizer, torch.optim.Optimizer):
        if lr is not None:
            raise ValueError("lr applies only when optimizer is a name; set the lr in your optimizer instead")
        return optimizer
    return make_optimizer(optimizer, model.parameters(), lr, weight_decay)


def _use_amp(amp: bool | None, device: torch.device) -> bool:
    if amp is None:
        return device.type == "cuda"
    if amp and device.type != "cuda":
        raise ValueError(f"amp=True needs a CUDA device, got {device}; use amp=None (automatic) or amp=False")
    return bool(amp)


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether to draw progress bars: `progress` if given, else stderr is a TTY and not COURSE_QUIET."""
    if progress is not None:
        return bool(progress)
    quiet = os.environ.get(QUIET_ENV, "").strip().lower() not in ("", "0", "false", "no")
    return not quiet and sys.stderr.isatty()


def _bar(loader, progress, description):
    if not progress_enabled(progress):
        return loader
    from tqdm.auto import tqdm

    return tqdm(loader, desc=description, file=sys.stderr, leave=True, dynamic_ncols=True)


def _close_bar(bar, history: History) -> None:
    if not hasattr(bar, "set_postfix"):
        return
    postfix = {"loss": f"{history.train_loss[-1]:.4f}", "acc": f"{history.train_accuracy[-1]:.3f}"}
    if history.val_accuracy:
        postfix.update(val_loss=f"{history.val_loss[-1]:.4f}", val_acc=f"{history.val_accuracy[-1]:.3f}")
    bar.set_postfix(postfix)
    bar.close()
