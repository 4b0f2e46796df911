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
    CheckFailure,
    ForbiddenCallError,
    check_augment,
    check_batchnorm_backward,
    check_batchnorm_forward,
    check_conv_forward,
    check_conv_output_size,
    check_conv_params,
    check_dropout_forward,
    check_extract_features,
    check_init_std,
    check_knn_accuracy,
    check_linear_classifier,
    check_lora_linear,
    check_maxpool_backward,
    check_occlusion_map,
    check_receptive_box,
    check_tsne_map,
    check_tta_flip,
    check_vgg_params,
)
from course_lib.grading.checks.guard import forbid

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
        momentum = p["momentum"]
        p["running_mean"].copy_((1 - momentum) * p["running_mean"] + momentum * mean)
        p["running_var"].copy_((1 - momentum) * p["running_var"] + momentum * var * m / (m - 1))
    else:
        mean, var = p["running_mean"], p["running_var"]
    return gamma.view(view) * (x - mean.view(view)) / (var.view(view) + p["eps"]).sqrt() + beta.view(view), None


def batchnorm_backward(dout, x, gamma, eps=1e-5):
    dims = [0] if x.dim() == 2 else [0, 2, 3]
    view = [1, -1] + [1] * (x.dim() - 2)
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
        momentum = p["momentum"]
        p["running_mean"].copy_((1 - momentum) * p["running_mean"] + momentum * x.mean(dims))
        p["running_var"].copy_((1 - momentum) * p["running_var"] + momentum * x.var(dims, unbiased=False))
    return out, cache


MISTAKES = [
    (check_conv_output_size, (lambda n, k, s, p: (n - k) // s + 1,), "size=90, kernel_size=3, stride=1, padding=1"),
    (check_conv_params, (lambda i, o, k, b=True: i * o * k * k,), "bias=True"),
    (check_conv_forward, (lambda x, w, b, s, p: conv_forward(x, w, b, 1, p),), "stride=2"),
    (check_maxpool_backward, (lambda d, x, k, s: maxpool_backward(d, x, k, k),), "stride="),
    (check_batchnorm_forward, (_biased_running_var,), "running_var"),
    (check_batchnorm_backward, (lambda d, x, g, eps=1e-5: (d * g.view([1, -1] + [1] * (x.dim() - 2)) / (x.var([0] if x.dim() == 2 else [0, 2, 3], unbiased=False, keepdim=True) + eps).sqrt(),) + batchnorm_backward(d, x, g)[1:],), "dx"),
    (check_dropout_forward, (lambda x, p, t, g=None: x * (torch.rand(x.shape, generator=g, device=x.device) >= p) if t else x,), "probability of *dropping*"),
    (check_init_std, (lambda i, o: (2 / (i + o)) ** 0.5, lambda i: (1 / i) ** 0.5), "he_std"),
]


@pytest.mark.parametrize("checker,answers,named", MISTAKES, ids=[c.__name__ for c, _, _ in MISTAKES])
def test_typical_mistakes_fail_with_a_message_naming_the_case(checker, answers, named):
    with pytest.raises(CheckFailure, match="case") as failure:
        checker(*answers)
    assert named in str(failure.value)


def test_an_exception_in_the_student_code_is_a_failed_case():
    def buggy(*args):
        raise IndexError("oops")

    with pytest.raises(CheckFailure, match="conv_forward raised IndexError: oops"):
        check_conv_forward(buggy)


def test_unimplemented_is_reported_as_such():
    def not_done(*args):
        raise NotImplementedError()

    with pytest.raises(CheckFailure, match=r"conv_params is not implemented yet \(its cell still raises NotImplementedError\)"):
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
        out, _ = batchnorm_forward(x, gamma, torch.zeros_like(gamma), {"mode": "train", "eps": eps, "momentum": 0.1, "running_mean": torch.zeros_like(gamma), "running_var": torch.ones_like(gamma)})
        out.backward(dout)
        return x.grad, None, None

    with pytest.raises(ForbiddenCallError, match="backward"):
        check_batchnorm_backward(by_autograd)


def test_a_swallowed_forbidden_call_still_fails():
    def sneaky(x):
        try:
            return F.relu(x)
        except Exception:  # noqa: BLE001 - a student's catch-all, as written
            return x

    with pytest.raises(ForbiddenCallError, match="relu"):
        with forbid([F.relu, torch.relu], "sneaky"):
            sneaky(torch.ones(2))


def test_the_guard_restores_the_previous_profiler():
    import sys

    with forbid([F.relu], "x"):
        pass
    assert sys.getprofile() is None


# -- hw3 and hw4 checkers -----------------------------------------------------------------------

def _augment(images, labels, generator, max_shift=2):
    # torch.roll, then zero the rows and columns that wrapped around
    h, w = images.shape[-2:]
    shifted = []
    for image in images:
        dy, dx = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator).tolist()
        inside_rows = ((torch.arange(h) - dy >= 0) & (torch.arange(h) - dy < h))[:, None]
        inside_cols = ((torch.arange(w) - dx >= 0) & (torch.arange(w) - dx < w))[None, :]
        shifted.append(torch.roll(image, shifts=(dy, dx), dims=(1, 2)) * (inside_rows & inside_cols))
    return torch.stack(shifted), labels


class _LoRA(torch.nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base, self.scale, self.merged = base.requires_grad_(False), alpha / r, False
        self.A = torch.nn.Parameter(torch.randn(r, base.in_features, dtype=base.weight.dtype) / 10)
        self.B = torch.nn.Parameter(torch.zeros(base.out_features, r, dtype=base.weight.dtype))

    def forward(self, x):
        return self.base(x) + (0 if self.merged else self.scale * x @ self.A.T @ self.B.T)

    def merge(self):
        self.base.weight.data += self.scale * self.B.data @ self.A.data
        self.merged = True


def _occlusion(model, image, target, window, stride, baseline=0.0):
    _, h, w = image.shape
    total, count = torch.zeros_like(image), torch.zeros_like(image)
    model.eval()
    with torch.no_grad():
        reference = model(image[None])[0, target]
        for top in range(0, stride[0] * (math.ceil((h - window[0]) / stride[0]) + 1), stride[0]):
            for left in range(0, stride[1] * (math.ceil((w - window[1]) / stride[1]) + 1), stride[1]):
                x = image.clone()
                x[:, top:top + window[0], left:left + window[1]] = baseline
                total[:, top:top + window[0], left:left + window[1]] += reference - model(x[None])[0, target]
                count[:, top:top + window[0], left:left + window[1]] += 1
    return total / count


def _box(layers, position, size):
    first, last = list(position), list(position)
    for k, s, p in reversed(layers):
        first = [f * s - p for f in first]
        last = [v * s - p + k - 1 for v in last]
    return tuple((max(f, 0), min(v + 1, n)) for f, v, n in zip(first, last, size))


def _knn(points, labels, k):
    from sklearn.neighbors import NearestNeighbors
    points, labels = torch.as_tensor(points).numpy(), torch.as_tensor(labels).numpy()
    neighbours = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points, return_distance=False)[:, 1:]
    votes = [max(sorted(set(labels[row])), key=list(labels[row]).count) for row in neighbours]
    return float((torch.tensor(votes) == torch.as_tensor(labels)).double().mean())


def _tsne(features, seed):
    from sklearn.manifold import TSNE
    return TSNE(init="pca", learning_rate="auto", random_state=seed).fit_transform(features.numpy())


def _classifier(features, labels):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(features.numpy(), labels.numpy())


def _features(backbone, images):
    backbone.eval()
    with torch.no_grad():
        return backbone.head[:-1](backbone.features(images))


HW34_CORRECT = [
    (check_augment, (_augment,)), (check_tta_flip, (lambda m, x: (m(x) + m(x.flip(3))).detach() / 2,)),
    (check_extract_features, (_features,)), (check_linear_classifier, (_classifier,)), (check_lora_linear, (_LoRA,)),
    (check_occlusion_map, (_occlusion,)), (check_receptive_box, (_box,)), (check_knn_accuracy, (_knn,)),
    (check_tsne_map, (_tsne,)),
]


@pytest.mark.parametrize("checker,answers", HW34_CORRECT, ids=[c.__name__ for c, _ in HW34_CORRECT])
def test_hw3_hw4_correct_answers_pass(checker, answers):
    checker(*answers)


HW34_MISTAKES = [
    (check_augment, (lambda x, y, g, s=2: (_augment(x, y, g, s)[0], y.flip(0)),), "labels"),
    (check_augment, (lambda x, y, g, s=2: (x.flip(-2), y),), "whole pixels"),
    (check_tta_flip, (lambda m, x: m(x).detach(),), "logits"),
    (check_extract_features, (lambda b, x: b(x).detach(),), "features"),
    (check_linear_classifier, (lambda f, y: type("Majority", (), {"predict": lambda self, f: torch.zeros(len(f))})(),), "held-out"),
    (check_occlusion_map, (lambda *a: _occlusion(*a) * 2,), "occlusion map"),
    (check_receptive_box, (lambda layers, pos, size: tuple((a, b + 1) for a, b in _box(layers, pos, size)),), "box"),
    (check_knn_accuracy, (lambda p, y, k: 1.0,), "accuracy"),
    (check_tsne_map, (lambda f, seed: torch.rand(len(f), 2).numpy(),), "trustworthiness"),
]


@pytest.mark.parametrize("checker,answers,named", HW34_MISTAKES, ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(HW34_MISTAKES)])
def test_hw3_hw4_mistakes_fail(checker, answers, named):
    with pytest.raises(CheckFailure, match=named):
        checker(*answers)


def test_lora_without_zero_b_fails():
    class Noisy(_LoRA):
        def __init__(self, base, r, alpha):
            super().__init__(base, r, alpha)
            self.B.data.normal_()

    with pytest.raises(CheckFailure, match="at the start"):
        check_lora_linear(Noisy)


def test_captum_is_forbidden_in_the_occlusion_exercise():
    from captum.attr import Occlusion

    def by_captum(model, image, target, window, stride, baseline=0.0):
        return Occlusion(model).attribute(image[None], sliding_window_shapes=(image.shape[0], *window),
                                          strides=(image.shape[0], *stride), target=target, baselines=baseline)[0]

    with pytest.raises(ForbiddenCallError, match="attribute"):
        check_occlusion_map(by_captum)


@pytest.mark.gpu
def test_checkers_pass_on_cuda(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    for checker, answers in CORRECT + HW34_CORRECT:
        checker(*answers)
