"""Checkers for hw2_bn_dropout_init: batch-norm forward and backward, inverted dropout
forward and backward, Xavier and He scales, weight-gradient norms by depth, and the
initialization experiment (zero, too small, Xavier, He).

Every seed draws its own cases; across the visible and hidden seeds the cases cover (N, D)
and non-square (N, C, H, W) inputs, N = 1 and C = 1, float32 and float64, on the grading
device. Messages name the case and the size of the error and point at the idea, never at
the formula.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random

import torch
import torch.nn.functional as F

from course_lib import initialization, layers
from course_lib.grading.checks.compare import (
    CheckFailure,
    call_student,
    expect_close,
    grading_device,
    grading_dtype,
    one_thread,
    random_tensor,
)
from course_lib.grading.checks.compare import quiet_and_strict as _quiet_and_strict
from course_lib.grading.checks.guard import AUTOGRAD, forbid

# what course_lib.grading re-exports
__all__ = ["check_batchnorm_forward", "check_batchnorm_backward", "check_dropout_forward", "check_dropout_backward",
           "check_init_std", "check_gradient_norms", "check_init_experiment"]

HINTS = {
    "Q1": "Batch norm standardizes each feature (each channel, for images: over N, H and W) with statistics of the "
          "current batch in training and with the running averages at test time. Reread the slide on batch norm at "
          "train and test time, and the question's conventions for the variance and for momentum.",
    "Q2": "Draw the computational graph of the forward pass: x reaches the output directly AND through the batch "
          "mean AND through the batch variance. Backpropagate node by node (slide: batch-norm backward), then sum "
          "the paths; dgamma and dbeta collect over every position that shares the parameter.",
    "Q3": "A unit is dropped with probability p. Inverted dropout rescales the survivors during training so the "
          "expected output equals the input; test time then needs nothing (slide: dropout at test time).",
    "Q4": "Dropout multiplies each unit by a number fixed in the forward pass: the gradient goes back through the "
          "same number. At test time dropout is the identity.",
    "Q5": "Both keep the variance of the signal constant from layer to layer. Xavier balances the forward and the "
          "backward pass (it looks at both fans); He looks at the forward pass of a ReLU network, which loses "
          "half of its variance at every ReLU (slides: Xavier and He initialization).",
    "Q6": "One scalar loss for the whole batch, one backward pass, then one norm per Linear layer's weight, from "
          "the input side. Make sure nothing from an earlier call (gradients accumulate in .grad) adds up.",
    "Q7": "Build a fresh model per initialization, initialize every Linear layer as the question says (biases "
          "zero), use the same batch for all four, and return the norms of Q6. Compare your table with the "
          "lecture's plot of activations and gradients by depth.",
}

BN_FORBIDDEN = [F.batch_norm, torch.batch_norm, torch.nn.modules.batchnorm._BatchNorm.forward,
                layers.batchnorm_forward, layers.batchnorm_backward]
DROPOUT_FORBIDDEN = [F.dropout, torch.dropout, torch.nn.Dropout.forward, layers.dropout_forward,
                     layers.dropout_backward]
INIT_SCHEMES = tuple(initialization.INIT_COMPARISON)


# ---------------------------------------------------------------------------------------
# Helpers and cases
# ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet_and_strict():
    """compare.quiet_and_strict on one CPU thread."""
    with _quiet_and_strict(), one_thread():
        yield


def _exact(tensor: torch.Tensor) -> torch.Tensor:
    """A float64 CPU copy: references are computed there, whatever the grading device (MPS
    has no float64); `expect_close` compares on the reference's device and dtype."""
    return tensor.detach().to(device="cpu", dtype=torch.float64)


def _dtypes(device: torch.device) -> tuple[torch.dtype, ...]:
    return (torch.float32,) if grading_dtype(device) == torch.float32 else (torch.float64, torch.float32)


def _tolerance(dtype: torch.dtype) -> dict:
    """float64 answers match the reference to rounding; float32 ones to float32's precision."""
    return {"atol": 1e-6, "rtol": 1e-5} if dtype == torch.float64 else {"atol": 2e-4, "rtol": 2e-3}


def _bn_cases(seed: int, device: torch.device) -> list[tuple[tuple[int, ...], torch.dtype, float, float]]:
    """(shape, dtype, momentum, eps): (N, D) and (N, C, H, W) with H != W, C = 1, N = 1 for
    images; both dtypes, two momentums and two eps, all drawn from the seed."""
    rng = random.Random(seed)
    dtypes = _dtypes(device)
    shapes = [(rng.randint(3, 12), rng.randint(2, 6)),                                   # (N, D)
              (rng.randint(2, 4), rng.randint(2, 4), rng.randint(2, 4), rng.randint(5, 7)),  # H != W
              (rng.randint(2, 5), 1, rng.randint(2, 5), rng.randint(2, 5)),              # C = 1
              (1, rng.randint(2, 5), rng.randint(2, 3), rng.randint(4, 6)),              # N = 1
              (rng.randint(2, 9), 1)]                                                    # one feature
    momentums = [0.1, rng.choice([0.2, 0.3, 0.4])]
    epsilons = [1e-5, rng.choice([1e-3, 1e-2])]
    return [(shape, dtypes[i % len(dtypes)], momentums[(i + seed) % 2], epsilons[(i // 2 + seed) % 2])
            for i, shape in enumerate(shapes)]


def _case_name(shape, dtype, **more) -> str:
    extra = "".join(f", {k}={v}" for k, v in more.items())
    return f"x of shape {tuple(shape)}, {str(dtype).replace('torch.', '')}{extra}"


# ---------------------------------------------------------------------------------------
# Q1, Q2: batch normalization
# ---------------------------------------------------------------------------------------


def check_batchnorm_forward(batchnorm_forward, seed: int = 0):
    """batchnorm_forward(x, gamma, beta, bn_param) -> (out, cache); in train mode the
    running statistics in bn_param are updated like nn.BatchNorm's; eval mode uses them."""
    device = grading_device()
    generator = torch.Generator().manual_seed(seed + 2)
    with quiet_and_strict():
        for shape, dtype, momentum, eps in _bn_cases(seed, device):
            _check_bn_forward_case(batchnorm_forward, generator, shape, dtype, momentum, eps, device)


def _check_bn_forward_case(batchnorm_forward, generator, shape, dtype, momentum, eps, device):
    features, tol = shape[1], _tolerance(dtype)
    gamma, beta = (random_tensor(generator, features, device=device, dtype=dtype) for _ in range(2))
    running_mean = random_tensor(generator, features, device=device, dtype=dtype)
    running_var = random_tensor(generator, features, device=device, dtype=dtype).abs() + 0.5
    ours = {"mode": "train", "momentum": momentum, "eps": eps, "running_mean": _exact(running_mean),
            "running_var": _exact(running_var)}
    theirs = {"mode": "train", "momentum": momentum, "eps": eps, "running_mean": running_mean.clone(),
              "running_var": running_var.clone()}
    for step in range(2):
        x = 2 * random_tensor(generator, *shape, device=device, dtype=dtype) + 1
        case = f"train step {step + 1}, " + _case_name(shape, dtype, momentum=momentum, eps=eps)
        out = _run_bn(batchnorm_forward, x, gamma, beta, theirs, case)
        expected = layers.batchnorm_forward(_exact(x), _exact(gamma), _exact(beta), ours)[0]
        expect_close(out, expected, case, "out", "In training, normalize every feature (every channel, for images) "
                     "with the statistics of this batch, using the variance the question names.", **tol)
        expect_close(theirs.get("running_mean"), ours["running_mean"], case, "bn_param['running_mean']",
                     "A moving average in which momentum is the weight of the new batch, updated in bn_param.", **tol)
        expect_close(theirs.get("running_var"), ours["running_var"], case, "bn_param['running_var']",
                     "Check which variance PyTorch stores in running_var (the question says) and the weights of "
                     "the moving average.", **tol)
    theirs["mode"] = ours["mode"] = "eval"
    x = random_tensor(generator, *shape, device=device, dtype=dtype)
    case = "eval mode, " + _case_name(shape, dtype, eps=eps)
    out = _run_bn(batchnorm_forward, x, gamma, beta, theirs, case)
    expected = layers.batchnorm_forward(_exact(x), _exact(gamma), _exact(beta), ours)[0]
    expect_close(out, expected, case, "out", "At test time the batch's own statistics play no part.", **tol)
    expect_close(theirs.get("running_var"), ours["running_var"], case, "bn_param['running_var']",
                 "Eval mode reads the running statistics and leaves them as they are.", **tol)


def _run_bn(batchnorm_forward, x, gamma, beta, bn_param, case):
    with forbid(BN_FORBIDDEN, "batchnorm_forward"):
        result = call_student(batchnorm_forward, (x.clone(), gamma, beta, bn_param), case, "batchnorm_forward")
    if not isinstance(result, tuple) or len(result) != 2:
        raise CheckFailure(f"case {case}: batchnorm_forward should return a pair (out, cache), "
                           f"got {type(result).__name__}")
    return result[0]


def check_batchnorm_backward(batchnorm_backward, seed: int = 0):
    """batchnorm_backward(dout, x, gamma, eps) -> (dx, dgamma, dbeta), train mode."""
    device = grading_device()
    generator = torch.Generator().manual_seed(seed + 3)
    hints = ("The batch mean and variance are functions of every input: backpropagate through them too, "
             "not only through the direct path (draw the graph).",
             "gamma scales x_hat at every position of its feature or channel: add up over all of them.",
             "beta is added at every position of its feature or channel: add up over all of them.")
    with quiet_and_strict():
        for shape, dtype, _, eps in _bn_cases(seed + 100, device):
            features, tol = shape[1], _tolerance(dtype)
            x = 3 * random_tensor(generator, *shape, device=device, dtype=dtype) + 1
            gamma, beta = (random_tensor(generator, features, device=device, dtype=dtype) for _ in range(2))
            dout = random_tensor(generator, *shape, device=device, dtype=dtype)
            train = {"mode": "train", "eps": eps}
            _, cache = layers.batchnorm_forward(_exact(x), _exact(gamma), _exact(beta), train)
            expected = layers.batchnorm_backward(_exact(dout), cache)
            case = _case_name(shape, dtype, eps=eps)
            with forbid(BN_FORBIDDEN + AUTOGRAD, "batchnorm_backward"):
                result = call_student(batchnorm_backward, (dout.clone(), x.clone(), gamma.clone(), eps), case,
                                      "batchnorm_backward")
            if not isinstance(result, tuple) or len(result) != 3:
                raise CheckFailure(f"case {case}: batchnorm_backward should return (dx, dgamma, dbeta), "
                                   f"got {type(result).__name__}")
            for name, got, want, hint in zip(("dx", "dgamma", "dbeta"), result, expected, hints):
                expect_close(got, want, case, name, hint, **tol)


# ---------------------------------------------------------------------------------------
# Q3, Q4: dropout
# ---------------------------------------------------------------------------------------


def _dropout_cases(seed: int, device: torch.device):
    """(shape, dtype, p, generator?): about 100 000 units each, so the fraction dropped is
    measured to within a few tenths of a percent; p = 0 and a large p always among them."""
    rng = random.Random(seed)
    dtypes = _dtypes(device)
    shapes = [(100_000,), (rng.choice([200, 250, 400]), 500), (rng.randint(8, 12), 4, 50, rng.choice([49, 51, 60]))]
    ps = [0.0, rng.choice([0.2, 0.25, 0.3]), 0.5, rng.choice([0.7, 0.8, 0.9])]
    return [(shapes[i % 3], dtypes[i % len(dtypes)], p, (i + seed) % 2 == 0) for i, p in enumerate(ps)]


def check_dropout_forward(dropout_forward, seed: int = 0):
    """dropout_forward(x, p, train, generator) -> out: inverted dropout, p the drop probability."""
    device = grading_device()
    for shape, dtype, p, seeded in _dropout_cases(seed, device):
        x = torch.rand(shape, generator=torch.Generator().manual_seed(seed + 4), dtype=torch.float64) + 0.5
        x = x.to(device, dtype)
        generator = torch.Generator(device=device).manual_seed(seed) if seeded else None
        with quiet_and_strict():
            case = _case_name(shape, dtype, p=p) + ", test time"
            with forbid(DROPOUT_FORBIDDEN, "dropout_forward"):
                test_out = call_student(dropout_forward, (x.clone(), p, False, generator), case, "dropout_forward")
            expect_close(test_out, x, case, "the test-time output",
                         "Inverted dropout does all of its work during training; at test time it changes nothing.",
                         **_tolerance(dtype))
            case = _case_name(shape, dtype, p=p) + ", training"
            with forbid(DROPOUT_FORBIDDEN, "dropout_forward"):
                out = call_student(dropout_forward, (x.clone(), p, True, generator), case, "dropout_forward")
            if not isinstance(out, torch.Tensor) or out.shape != x.shape:
                raise CheckFailure(f"case {case}: the output should be a tensor shaped like x {tuple(x.shape)}")
        _check_dropout_statistics(_exact(out), _exact(x), p, case)


def _check_dropout_statistics(out, x, p, case):
    dropped = out == 0
    kept_ratio = (out[~dropped] / x[~dropped]) if bool((~dropped).any()) else torch.ones(1, dtype=x.dtype)
    scale = _reference_kept_scale(p)
    if not torch.allclose(kept_ratio, torch.full_like(kept_ratio, scale), rtol=1e-5):
        raise CheckFailure(f"case {case}: kept units should all be scaled by {scale:.4g}, "
                           f"found scales between {kept_ratio.min().item():.4g} and {kept_ratio.max().item():.4g}. "
                           "p is the probability of *dropping* a unit; rescale so that the expected output is x.")
    # the fraction dropped is Binomial(n, p) / n: six standard errors
    bound = 6 * math.sqrt(p * (1 - p) / x.numel()) + 1e-12
    fraction = _exact(dropped).mean().item()
    if abs(fraction - p) > bound:
        raise CheckFailure(f"case {case}: {fraction:.4f} of the units were dropped, expected {p} (within {bound:.4f}). "
                           "Each unit is dropped independently, with probability p.")


def _reference_kept_scale(p: float) -> float:
    """The factor inverted dropout gives a kept unit during training, for drop probability p."""
    # BEGIN ANSWER hw2.Q3
    return 1 / (1 - p)
    # END ANSWER


def _reference_dropout_backward(dout: torch.Tensor, mask: torch.Tensor, p: float, train: bool) -> torch.Tensor:
    """dx (shaped like dout) of inverted dropout with drop probability p, given the float
    mask of the units the forward pass kept (1.0) and dropped (0.0), through the library's
    dropout_backward."""
    # BEGIN ANSWER hw2.Q4
    cache = (mask / (1 - p), 1 / (1 - p)) if train else (None, 1.0)
    return layers.dropout_backward(dout, cache)
    # END ANSWER


def check_dropout_backward(dropout_backward, seed: int = 0):
    """dropout_backward(dout, mask, p, train) -> dx, where mask (bool, shaped like dout) is
    True for the units the forward pass kept."""
    device = grading_device()
    generator = torch.Generator().manual_seed(seed + 5)
    rng = random.Random(seed)
    shapes = [(rng.randint(1, 6), rng.randint(1, 9)), (rng.randint(1, 3), rng.randint(1, 4), 3, rng.randint(4, 6)),
              (rng.randint(10, 40),)]
    ps = [rng.choice([0.2, 0.25, 0.3]), 0.5, rng.choice([0.6, 0.75])]
    dtypes = _dtypes(device)
    with quiet_and_strict():
        for i, (shape, p) in enumerate(zip(shapes, ps)):
            dtype = dtypes[i % len(dtypes)]
            dout = random_tensor(generator, *shape, device=device, dtype=dtype)
            mask = (torch.rand(shape, generator=generator) >= p).to(device)
            for train in (True, False):
                case = _case_name(shape, dtype, p=p, train=train).replace("x of shape", "dout of shape")
                expected = _reference_dropout_backward(_exact(dout), _exact(mask), p, train)
                with forbid(DROPOUT_FORBIDDEN + AUTOGRAD, "dropout_backward"):
                    dx = call_student(dropout_backward, (dout.clone(), mask.clone(), p, train), case,
                                      "dropout_backward")
                hint = ("Each unit's gradient goes back through the same operation its value went through forward."
                        if train else "At test time dropout is the identity, and so is its backward pass.")
                expect_close(dx, expected, case, "dx", hint, **_tolerance(dtype))


# ---------------------------------------------------------------------------------------
# Q5: initialization scales
# ---------------------------------------------------------------------------------------


def check_init_std(xavier_std, he_std, seed: int = 0):
    """xavier_std(fan_in, fan_out) and he_std(fan_in): the standard deviations of
    Xavier-normal (gain 1) and He-normal (ReLU) initialization."""
    rng = random.Random(seed)
    cases = [(256, 256), (rng.randint(500, 1000), rng.randint(10, 200)), (rng.randint(3, 50), rng.randint(60, 512))]
    cases += [(rng.randint(1, 5000), rng.randint(1, 5000)) for _ in range(3)]
    hints = {"xavier_std": "Xavier keeps the variance of both the forward and the backward signal: both fans matter.",
             "he_std": "He keeps the variance of a ReLU network's activations: think about what a ReLU does to it."}
    with quiet_and_strict():
        for fan_in, fan_out in cases:
            case = f"fan_in={fan_in}, fan_out={fan_out}"
            want_xavier, want_he = _reference_xavier_std(fan_in, fan_out), _reference_he_std(fan_in)
            for name, fn, args, want in (("xavier_std", xavier_std, (fan_in, fan_out), want_xavier),
                                         ("he_std", he_std, (fan_in,), want_he)):
                got = call_student(fn, args, case, name)
                number = isinstance(got, (int, float)) and not isinstance(got, bool)
                if not number or not math.isclose(got, want, rel_tol=1e-6):
                    ratio = f" ({got / want:.3g} times the reference)" if isinstance(got, (int, float)) and got else ""
                    raise CheckFailure(f"case {case}: {name} returned {got!r}{ratio}. {hints[name]}")


# ---------------------------------------------------------------------------------------
# Q6: weight-gradient norms by depth
# ---------------------------------------------------------------------------------------


def _as_norms(result, count: int, case: str, name: str) -> torch.Tensor:
    """A list, tuple or 1-D tensor of `count` numbers as a float64 CPU tensor."""
    try:
        values = [float(v) for v in result]
    except (TypeError, ValueError, RuntimeError):
        raise CheckFailure(f"case {case}: {name} should return one number per Linear layer, "
                           f"got {type(result).__name__}") from None
    if len(values) != count:
        raise CheckFailure(f"case {case}: {name} returned {len(values)} numbers for a model with {count} Linear "
                           "layers: one norm per Linear layer's weight, input side first")
    return torch.tensor(values, dtype=torch.float64)


def check_gradient_norms(gradient_norms, seed: int = 0):
    """gradient_norms(model, x, y) -> the norm of d(mean cross-entropy)/d(weight) of every
    Linear layer, input side first; called twice on each model."""
    device = grading_device()
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed + 6)
    dtypes = _dtypes(device)
    cases = [(rng.randint(2, 4), rng.randint(4, 16), "relu", "kaiming_normal", rng.randint(2, 16)),
             (rng.randint(1, 3), rng.randint(3, 12), "tanh", "xavier_normal", 1),
             (rng.randint(3, 6), rng.randint(8, 24), "relu", rng.choice(["normal", "xavier_uniform"]),
              rng.randint(8, 32))]
    with quiet_and_strict():
        for i, (depth, width, activation, scheme, batch) in enumerate(cases):
            dtype = dtypes[i % len(dtypes)]
            in_features, classes = rng.randint(2, 10), rng.randint(2, 5)
            model = initialization.init_(initialization.deep_mlp(depth, width, activation, in_features, classes),
                                         scheme, std=0.1, generator=generator).to(device=device, dtype=dtype)
            x = random_tensor(generator, batch, in_features, device=device, dtype=dtype)
            y = torch.randint(classes, (batch,), generator=generator).to(device)
            reference = copy.deepcopy(model).to(device="cpu", dtype=torch.float64)
            expected = initialization.weight_gradient_norms(reference, _exact(x), y.cpu())
            for call in (1, 2):
                case = (f"call {call} on deep_mlp(depth={depth}, width={width}, {activation!r}, "
                        f"in_features={in_features}, out_features={classes}), {scheme} init, "
                        f"x of shape {(batch, in_features)}, {str(dtype).replace('torch.', '')}")
                with forbid([initialization.weight_gradient_norms], "gradient_norms"):
                    result = call_student(gradient_norms, (model, x.clone(), y.clone()), case, "gradient_norms")
                got = _as_norms(result, depth + 1, case, "gradient_norms")
                expect_close(got, expected, case, "the list of norms", HINTS["Q6"], **_tolerance(dtype))


# ---------------------------------------------------------------------------------------
# Q7: the experiment (zero, too small, Xavier, He)
# ---------------------------------------------------------------------------------------

# Effects in log10 units, per seed, from `initialization.gradient_norms_by_init` (20 seeds,
# 2026-11-30, CPU): depth 6 / 8 / 10 gave
#   first-layer norm, He over Xavier:     0.88 / 1.19 / 1.52  (sd 0.11 / 0.13 / 0.16)
#   first-layer norm, He over N(0, 0.01): 7.58 / 10.1 / 12.6  (sd 0.11 / 0.13 / 0.16)
#   He, largest over smallest hidden layer: 0.41 / 0.50 / 0.50 (sd 0.15 / 0.16 / 0.20)
# and exactly 0 for every layer under zero init. A student's run uses its own draws, so its
# mean over EXPERIMENT_SEEDS differs from the reference's on the same seeds by two means'
# noise: sd <= 0.20 * sqrt(2 / 6) = 0.12. Measured with an experiment that draws in another
# order (tests/test_checks_hw2.py), 15 checks each at depth 7 and 10: the difference had sd
# 0.091 / 0.071 / 0.091 and at most 0.26 / 0.13 / 0.22 for the three effects below.
# TOLERANCE is 5.5 of those sds; a wrong experiment moves an effect by 1 or more (swapped
# Xavier and He, PyTorch's default init left in, std 0.1 for "small").
EXPERIMENT_SEEDS = 6
TOLERANCE = 0.5
EFFECTS = {
    "he_over_xavier": ("the first layer's gradient norm, He over Xavier (log10)",
                       "Xavier's scale suits units that keep their variance; a ReLU halves it at every layer."),
    "he_over_small": ("the first layer's gradient norm, He over N(0, 0.01^2) (log10)",
                      "Too small a scale shrinks the signal at every layer, forward and backward."),
    "he_spread": ("He's largest over smallest hidden-layer gradient norm (log10)",
                  "He's scale keeps a ReLU network's signal the same size at every depth."),
}


def _effects(norms: dict) -> dict[str, float]:
    he, xavier, small = (norms[k] for k in ("he", "xavier", "small"))
    hidden = he[:-1]
    return {"he_over_xavier": math.log10(he[0] / xavier[0]), "he_over_small": math.log10(he[0] / small[0]),
            "he_spread": math.log10(hidden.max() / hidden.min())}


def _experiment_result(result, depth: int, case: str) -> dict[str, torch.Tensor]:
    if not isinstance(result, dict) or set(result) != set(INIT_SCHEMES):
        got = sorted(result) if isinstance(result, dict) else type(result).__name__
        raise CheckFailure(f"case {case}: init_experiment should return a dict with keys {list(INIT_SCHEMES)}, "
                           f"got {got}")
    norms = {k: _as_norms(v, depth + 1, f"{case}, {k!r}", "init_experiment") for k, v in result.items()}
    for k, v in norms.items():
        if not bool(torch.isfinite(v).all()) or bool((v < 0).any()):
            raise CheckFailure(f"case {case}: the {k!r} norms should be finite and non-negative, got {v.tolist()}")
    for k in ("small", "xavier", "he"):
        if not bool((norms[k] > 0).all()):
            raise CheckFailure(f"case {case}: under {k!r} initialization a gradient norm is 0; only zero "
                               "initialization should give zero gradients (did you initialize a fresh model?)")
    return norms


def check_init_experiment(init_experiment, depth: int = 10, seed: int = 0):
    """init_experiment(depth, seed, gradient_norms, xavier_std, he_std) -> {scheme: norms},
    rerun with the reference functions on EXPERIMENT_SEEDS seeds of its own; the effects
    must point the lecture's way and be within TOLERANCE of the reference run's."""
    seeds = [1000 * seed + 17 * k + 3 for k in range(EXPERIMENT_SEEDS)]
    theirs, ours = [], []
    with quiet_and_strict():
        for s in seeds:
            case = f"depth={depth}, seed={s}"
            result = call_student(init_experiment, (depth, s, initialization.weight_gradient_norms,
                                                    _reference_xavier_std, _reference_he_std), case, "init_experiment")
            norms = _experiment_result(result, depth, case)
            if float(norms["zero"].abs().max()) != 0.0:
                largest = float(norms["zero"].abs().max())
                raise CheckFailure(f"case {case}: under zero initialization every gradient should be exactly 0, "
                                   f"found up to {largest:.3g}. Did every weight and bias start at 0?")
            theirs.append(_effects(norms))
            ours.append(_effects(initialization.gradient_norms_by_init(depth, s)))
    case = f"depth={depth}, mean over seeds {seeds}"
    for key, (what, hint) in EFFECTS.items():
        got = sum(e[key] for e in theirs) / len(theirs)
        want = sum(e[key] for e in ours) / len(ours)
        if key != "he_spread" and got <= 0:
            raise CheckFailure(f"case {case}: {what} is {got:.2f}: the effect points the wrong way. {hint}")
        if abs(got - want) > TOLERANCE:
            raise CheckFailure(f"case {case}: {what} is {got:.2f}, the reference run's {want:.2f}; the seeds' noise "
                               f"allows {TOLERANCE}. {hint} Check that each scheme initializes every Linear layer "
                               "as the question says.")


def _reference_xavier_std(fan_in: int, fan_out: int) -> float:
    """Xavier-normal's standard deviation (gain 1) for a layer with these fans."""
    # BEGIN ANSWER hw2.Q5
    return math.sqrt(2.0 / (fan_in + fan_out))
    # END ANSWER


def _reference_he_std(fan_in: int) -> float:
    """He-normal's standard deviation (for ReLU) for a layer with this fan-in."""
    # BEGIN ANSWER hw2.Q5
    return initialization.gain("relu") / math.sqrt(fan_in)
    # END ANSWER
