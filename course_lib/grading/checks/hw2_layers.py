"""Checkers for hw2_bn_dropout_init: batch-norm forward and backward, inverted dropout,
Xavier and He initialization."""

from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F

from course_lib import initialization, layers
from course_lib.grading.checks.compare import (
    CheckFailure, call_student, expect_close, grading_device, quiet_and_strict, random_tensor,
)
from course_lib.grading.checks.guard import AUTOGRAD, forbid

# what course_lib.grading re-exports
__all__ = ["check_batchnorm_forward", "check_batchnorm_backward", "check_dropout_forward", "check_init_std"]


BN_FORBIDDEN = [F.batch_norm, torch.batch_norm, torch.nn.modules.batchnorm._BatchNorm.forward,
                layers.batchnorm_forward, layers.batchnorm_backward]
DROPOUT_FORBIDDEN = [F.dropout, torch.dropout, torch.nn.Dropout.forward, layers.dropout_forward]


def _bn_shapes(seed: int):
    rng = random.Random(seed)
    shapes = [(8, 4), (4, 3, 5, 6)]
    shapes.append((rng.randint(3, 12), rng.randint(1, 6)))
    shapes.append((rng.randint(2, 4), rng.randint(1, 4), rng.randint(1, 5), rng.randint(2, 5)))
    return shapes


def check_batchnorm_forward(batchnorm_forward, seed: int = 0):
    """batchnorm_forward(x, gamma, beta, bn_param) -> (out, cache); in train mode the
    running statistics in bn_param are updated like nn.BatchNorm's (momentum 0.1)."""
    device = grading_device()
    generator = torch.Generator().manual_seed(seed + 2)
    with quiet_and_strict():
        for shape in _bn_shapes(seed):
            features = shape[1]
            gamma, beta = random_tensor(generator, features, device=device), random_tensor(generator, features, device=device)
            theirs = {"mode": "train", "momentum": 0.1, "eps": 1e-5}
            ours = {"mode": "train", "momentum": 0.1, "eps": 1e-5,
                    "running_mean": torch.zeros_like(gamma), "running_var": torch.ones_like(gamma)}
            theirs.update(running_mean=ours["running_mean"].clone(), running_var=ours["running_var"].clone())
            for step in range(3):
                x = 2 * random_tensor(generator, *shape, device=device) + 1
                case = f"train step {step + 1}, x of shape {shape}"
                with forbid(BN_FORBIDDEN, "batchnorm_forward"):
                    result = call_student(batchnorm_forward, (x.clone(), gamma, beta, theirs), case, "batchnorm_forward")
                out = _first(result, case)
                expected = layers.batchnorm_forward(x, gamma, beta, ours)[0]
                expect_close(out, expected, case, "out", "Normalize with the batch mean and the *biased* variance (divide by N), per feature or per channel.")
                expect_close(theirs.get("running_mean"), ours["running_mean"], case, "bn_param['running_mean']",
                             "running = (1 - momentum) * running + momentum * batch statistic, updated in place.")
                expect_close(theirs.get("running_var"), ours["running_var"], case, "bn_param['running_var']",
                             "PyTorch stores the *unbiased* batch variance (divide by N - 1) in running_var.")
            theirs["mode"] = ours["mode"] = "eval"
            x = random_tensor(generator, *shape, device=device)
            case = f"eval mode, x of shape {shape}"
            with forbid(BN_FORBIDDEN, "batchnorm_forward"):
                out = _first(call_student(batchnorm_forward, (x.clone(), gamma, beta, theirs), case, "batchnorm_forward"), case)
            expect_close(out, layers.batchnorm_forward(x, gamma, beta, ours)[0], case, "out",
                         "In eval mode normalize with running_mean and running_var, and leave them unchanged.")


def _first(result, case):
    if not isinstance(result, tuple) or len(result) != 2:
        raise CheckFailure(f"case {case}: batchnorm_forward should return a pair (out, cache), got {type(result).__name__}")
    return result[0]


def check_batchnorm_backward(batchnorm_backward, seed: int = 0):
    """batchnorm_backward(dout, x, gamma, eps=1e-5) -> (dx, dgamma, dbeta), train mode."""
    device = grading_device()
    generator = torch.Generator().manual_seed(seed + 3)
    with quiet_and_strict():
        for shape in _bn_shapes(seed + 100):
            features = shape[1]
            x = random_tensor(generator, *shape, device=device)
            gamma, beta = random_tensor(generator, features, device=device), random_tensor(generator, features, device=device)
            out, cache = layers.batchnorm_forward(x, gamma, beta, {"mode": "train"})
            dout = random_tensor(generator, *out.shape, device=device)
            expected = layers.batchnorm_backward(dout, cache)
            case = f"x of shape {shape}"
            with forbid(BN_FORBIDDEN + AUTOGRAD, "batchnorm_backward"):
                result = call_student(batchnorm_backward, (dout.clone(), x.clone(), gamma.clone(), 1e-5), case, "batchnorm_backward")
            if not isinstance(result, tuple) or len(result) != 3:
                raise CheckFailure(f"case {case}: batchnorm_backward should return (dx, dgamma, dbeta), got {type(result).__name__}")
            hints = ("The mean and variance depend on every x: dx has three terms, not just gamma * dout / std.",
                     "dgamma sums dout * x_hat over the batch (and over H, W for images).",
                     "dbeta sums dout over the batch (and over H, W for images).")
            for name, got, want, hint in zip(("dx", "dgamma", "dbeta"), result, expected, hints):
                expect_close(got, want, case, name, hint)


def check_dropout_forward(dropout_forward, seed: int = 0):
    """dropout_forward(x, p, train, generator) -> out: inverted dropout, p the drop probability."""
    device = grading_device()
    for p in (0.0, 0.25, 0.5, 0.8):
        x = torch.rand(100_000, generator=torch.Generator().manual_seed(seed + 4), dtype=torch.float64).to(device) + 0.5
        with quiet_and_strict():
            generator = torch.Generator(device=device).manual_seed(seed)
            case = f"p={p}, test time"
            with forbid(DROPOUT_FORBIDDEN, "dropout_forward"):
                test_out = call_student(dropout_forward, (x.clone(), p, False, generator), case, "dropout_forward")
            expect_close(test_out, x, case, "the test-time output", "Inverted dropout is the identity at test time: all the scaling happens in training.")
            case = f"p={p}, training"
            with forbid(DROPOUT_FORBIDDEN, "dropout_forward"):
                out = call_student(dropout_forward, (x.clone(), p, True, generator), case, "dropout_forward")
            if not isinstance(out, torch.Tensor) or out.shape != x.shape:
                raise CheckFailure(f"case {case}: the output should be a tensor shaped like x {tuple(x.shape)}")
        _check_dropout_statistics(out, x, p, case)


def _check_dropout_statistics(out, x, p, case):
    dropped = out == 0
    kept_ratio = (out[~dropped] / x[~dropped]) if bool((~dropped).any()) else torch.ones(1, dtype=x.dtype)
    if not torch.allclose(kept_ratio, torch.full_like(kept_ratio, 1 / (1 - p))):
        raise CheckFailure(f"case {case}: kept units should be scaled by 1/(1-p) = {1 / (1 - p):.4g}, "
                           f"found scales between {kept_ratio.min().item():.4g} and {kept_ratio.max().item():.4g}. "
                           "p is the probability of *dropping* a unit; the survivors are divided by the keep probability.")
    # the fraction dropped is Binomial(n, p) / n: six standard errors
    bound = 6 * math.sqrt(p * (1 - p) / x.numel()) + 1e-12
    fraction = dropped.double().mean().item()
    if abs(fraction - p) > bound:
        raise CheckFailure(f"case {case}: {fraction:.4f} of the units were dropped, expected {p} (within {bound:.4f}). "
                           "Drop each unit independently with probability p.")


def check_init_std(xavier_std, he_std, seed: int = 0):
    """xavier_std(fan_in, fan_out) and he_std(fan_in): the standard deviations of
    Xavier-normal (gain 1) and He-normal (ReLU) initialization."""
    rng = random.Random(seed)
    cases = [(256, 256), (784, 100), (27, 64)] + [(rng.randint(1, 5000), rng.randint(1, 5000)) for _ in range(4)]
    with quiet_and_strict():
        for fan_in, fan_out in cases:
            weight = torch.empty(fan_out, fan_in, device="meta")  # only its shape is needed
            case = f"fan_in={fan_in}, fan_out={fan_out}"
            want_xavier = math.sqrt(2.0 / sum(initialization.fans(weight)))
            want_he = initialization.gain("relu") / math.sqrt(initialization.fans(weight)[0])
            for name, fn, args, want, hint in (
                ("xavier_std", xavier_std, (fan_in, fan_out), want_xavier, "Xavier: std = sqrt(2 / (fan_in + fan_out))."),
                ("he_std", he_std, (fan_in,), want_he, "He: std = sqrt(2 / fan_in); the 2 makes up for ReLU zeroing half the units."),
            ):
                got = call_student(fn, args, case, name)
                if not isinstance(got, (int, float)) or not math.isclose(got, want, rel_tol=1e-6):
                    raise CheckFailure(f"case {case}: {name} should be {want:.6g}, got {got!r}. {hint}")
