"""The checkers accept correct answers written in other ways, reject typical mistakes with a
message that names the case, refuse forbidden routines, and never write to stderr."""

import contextlib
import io
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import layers
from course_lib.grading import (
    CheckFailure, ForbiddenCallError, check_batchnorm_backward, check_batchnorm_forward, check_conv_forward,
    check_conv_output_size, check_conv_params, check_dropout_forward, check_init_std, check_maxpool_backward,
    check_vgg_params,
)
from course_lib.grading.guard import forbid


# -- correct answers, written differently from the reference ------------------------------------

def conv_output_size(size, kernel_size, stride=1, padding=0):
    return math.floor((size + 2 * padding - kernel_size) / stride) + 1


def conv_params(cin, cout, k, bias=True):
    return (cin * k * k + int(bias)) * cout


def vgg_params(config, in_channels=3, num_classes=1000):
    widths = [in_channels] + [c for c in config if c != "M"]
    convs = sum(conv_params(a, b, 3) for a, b in zip(widths, widths[1:]))
    return convs + (widths[-1] * 49 + 1) * 4096 + 4097 * 4096 + 4097 * num_classes


def conv_forward(x, w, b, stride, padding):
    # loops over kernel offsets instead of unfold
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = torch.zeros(n, c, h + 2 * padding, wd + 2 * padding, dtype=x.dtype, device=x.device)
    xp[:, :, padding:padding + h, padding:padding + wd] = x
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    out = b.reshape(1, f, 1, 1).expand(n, f, oh, ow).clone()
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
            out += torch.einsum("nchw,fc->nfhw", patch, w[:, :, i, j])
    return out


def maxpool_backward(dout, x, k, s):
    cols = x.unfold(2, k, s).unfold(3, k, s)                    # (N, C, H', W', k, k)
    flat = cols.reshape(*cols.shape[:4], -1)
    onehot = F.one_hot(flat.argmax(-1), k * k).to(x.dtype) * dout.unsqueeze(-1)
    dx = torch.zeros_like(x)
    for i in range(k):
        for j in range(k):
            dx[:, :, i:i + s * dout.shape[2]:s, j:j + s * dout.shape[3]:s] += onehot[..., i * k + j]
    return dx


def batchnorm_forward(x, gamma, beta, p):
    dims = [0] if x.dim() == 2 else [0, 2, 3]
    view = [1, -1] + [1] * (x.dim() - 2)
    if p["mode"] == "train":
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
        m = x.numel() / x.shape[1]
        p["running_mean"].copy_(0.9 * p["running_mean"] + 0.1 * mean)
        p["running_var"].copy_(0.9 * p["running_var"] + 0.1 * var * m / (m - 1))
    else:
        mean, var = p["running_mean"], p["running_var"]
    return gamma.view(view) * (x - mean.view(view)) / (var.view(view) + 1e-5).sqrt() + beta.view(view), None


def batchnorm_backward(dout, x, gamma, eps=1e-5):
    dims = [0] if x.dim() == 2 else [0, 2, 3]
    view = [1, -1] + [1] * (x.dim() - 2)
    m = x.numel() / x.shape[1]
    xhat = (x - x.mean(dims, keepdim=True)) / (x.var(dims, unbiased=False, keepdim=True) + eps).sqrt()
    inv = 1 / (x.var(dims, unbiased=False, keepdim=True) + eps).sqrt()
    g = dout * gamma.view(view)
    dx = inv * (g - g.mean(dims, keepdim=True) - xhat * (g * xhat).mean(dims, keepdim=True))
    return dx, (dout * xhat).sum(dims), dout.sum(dims)


def dropout_forward(x, p, train, generator=None):
    if not train:
        return x
    return torch.where(torch.rand(x.shape, generator=generator, device=x.device) < 1 - p, x / (1 - p), 0 * x)


CORRECT = [
    (check_conv_output_size, (conv_output_size,)), (check_conv_params, (conv_params,)), (check_vgg_params, (vgg_params,)),
    (check_conv_forward, (conv_forward,)), (check_maxpool_backward, (maxpool_backward,)),
    (check_batchnorm_forward, (batchnorm_forward,)), (check_batchnorm_backward, (batchnorm_backward,)),
    (check_dropout_forward, (dropout_forward,)),
    (check_init_std, (lambda i, o: (2 / (i + o)) ** 0.5, lambda i: (2 / i) ** 0.5)),
]


@pytest.mark.parametrize("seed", [0, 1234])
@pytest.mark.parametrize("checker,answers", CORRECT, ids=[c.__name__ for c, _ in CORRECT])
def test_correct_answers_written_differently_pass(checker, answers, seed):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        checker(*answers, seed=seed)
    assert err.getvalue() == ""


# -- typical mistakes ---------------------------------------------------------------------------

def _biased_running_var(x, gamma, beta, p):
    out, cache = batchnorm_forward(x, gamma, beta, {**p, "running_mean": p["running_mean"].clone(), "running_var": p["running_var"].clone()})
    if p["mode"] == "train":
        dims = [0] if x.dim() == 2 else [0, 2, 3]
        p["running_mean"].copy_(0.9 * p["running_mean"] + 0.1 * x.mean(dims))
        p["running_var"].copy_(0.9 * p["running_var"] + 0.1 * x.var(dims, unbiased=False))
    return out, cache


MISTAKES = [
    (check_conv_output_size, (lambda n, k, s, p: (n - k) // s + 1,), "size=90, kernel_size=3, stride=1, padding=1"),
    (check_conv_params, (lambda i, o, k, b=True: i * o * k * k,), "bias=True"),
    (check_conv_forward, (lambda x, w, b, s, p: conv_forward(x, w, b, 1, p),), "stride=2"),
    (check_maxpool_backward, (lambda d, x, k, s: maxpool_backward(d, x, k, k),), "stride="),
    (check_batchnorm_forward, (_biased_running_var,), "running_var"),
    (check_batchnorm_backward, (lambda d, x, g, eps=1e-5: (d * g.view([1, -1] + [1] * (x.dim() - 2)) / (x.var([0] if x.dim() == 2 else [0, 2, 3], unbiased=False, keepdim=True) + eps).sqrt(),) + batchnorm_backward(d, x, g)[1:],), "dx"),
    (check_dropout_forward, (lambda x, p, t, g=None: x * (torch.rand(x.shape, generator=g, device=x.device) >= p) if t else x,), "1/(1-p)"),
    (check_init_std, (lambda i, o: (2 / (i + o)) ** 0.5, lambda i: (1 / i) ** 0.5), "he_std"),
]


@pytest.mark.parametrize("checker,answers,named", MISTAKES, ids=[c.__name__ for c, _, _ in MISTAKES])
def test_typical_mistakes_fail_with_a_message_naming_the_case(checker, answers, named):
    with pytest.raises(CheckFailure, match="case") as failure:
        checker(*answers)
    assert named in str(failure.value)


def test_an_exception_in_the_student_code_is_a_failed_case():
    with pytest.raises(CheckFailure, match="conv_forward raised IndexError: oops"):
        check_conv_forward(lambda *args: [][0] if False else (_ for _ in ()).throw(IndexError("oops")))


def test_unimplemented_is_reported_as_such():
    def not_done(*args):
        raise NotImplementedError()

    with pytest.raises(CheckFailure, match="not implemented yet"):
        check_conv_params(not_done)


# -- the forbidden-API guard --------------------------------------------------------------------

FORBIDDEN = [
    (check_conv_forward, lambda x, w, b, s, p: F.conv2d(x, w, b, s, p), "torch.conv2d"),
    (check_conv_forward, lambda x, w, b, s, p: layers.conv2d_forward(x, w, b, s, p)[0], "course_lib.layers.conv2d_forward"),
    (check_batchnorm_forward, lambda x, g, b, p: (F.batch_norm(x, p["running_mean"], p["running_var"], g, b, p["mode"] == "train"), None), "batch_norm"),
    (check_dropout_forward, lambda x, p, t, g=None: F.dropout(x, p, t), "dropout"),
]


@pytest.mark.parametrize("checker,answer,name", FORBIDDEN, ids=["conv2d", "reference", "batch_norm", "dropout"])
def test_forbidden_routines_fail_the_check(checker, answer, name):
    with pytest.raises(ForbiddenCallError, match=name):
        checker(answer)


def test_autograd_is_forbidden_in_backward_exercises():
    def by_autograd(dout, x, gamma, eps=1e-5):
        x = x.clone().requires_grad_()
        out, _ = batchnorm_forward(x, gamma, torch.zeros_like(gamma), {"mode": "train", "running_mean": torch.zeros_like(gamma), "running_var": torch.ones_like(gamma)})
        out.backward(dout)
        return x.grad, None, None

    with pytest.raises(ForbiddenCallError, match="backward"):
        check_batchnorm_backward(by_autograd)


def test_a_swallowed_forbidden_call_still_fails():
    def sneaky(x):
        try:
            return F.relu(x)
        except Exception:
            return x

    with pytest.raises(ForbiddenCallError, match="relu"):
        with forbid([F.relu, torch.relu], "sneaky"):
            sneaky(torch.ones(2))


def test_the_guard_restores_the_previous_profiler():
    import sys

    with forbid([F.relu], "x"):
        pass
    assert sys.getprofile() is None


@pytest.mark.gpu
def test_checkers_pass_on_cuda(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    for checker, answers in CORRECT:
        checker(*answers)
