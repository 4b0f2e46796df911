"""From-scratch layers against torch.nn.functional, autograd and centred differences (float64)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.layers import (
    batchnorm_backward,
    batchnorm_forward,
    col2im,
    conv2d_backward,
    conv2d_forward,
    dropout_backward,
    dropout_forward,
    im2col,
    maxpool2d_backward,
    maxpool2d_forward,
    numerical_gradient,
    rel_error,
)

CONV_CASES = [  # x shape, w shape, stride, padding
    ((2, 3, 7, 7), (4, 3, 3, 3), 1, 1),
    ((1, 2, 9, 6), (3, 2, 3, 2), 2, 0),          # non-square input and kernel
    ((2, 1, 8, 11), (2, 1, 5, 5), (2, 3), (2, 1)),
    ((1, 3, 5, 5), (2, 3, 1, 1), 1, 0),
    ((3, 2, 6, 7), (5, 2, 4, 3), 3, (1, 2)),     # odd sizes, stride not dividing
]
POOL_CASES = [  # x shape, kernel, stride, padding
    ((2, 3, 8, 8), 2, 2, 0), ((1, 2, 7, 9), 3, 2, 1), ((2, 1, 6, 5), (2, 3), (1, 2), 0), ((1, 1, 5, 5), 3, 1, 0),
]


def _double(*shape, device="cpu", seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(device)


# -- im2col / col2im ----------------------------------------------------------------------------


@pytest.mark.parametrize("x_shape,w_shape,stride,padding", CONV_CASES)
def test_im2col_and_col2im_match_unfold_and_fold(x_shape, w_shape, stride, padding, device):
    x = _double(*x_shape, device=device)
    kernel = w_shape[2:]
    cols = im2col(x, kernel, stride, padding)
    assert torch.equal(cols, F.unfold(x, kernel, stride=stride, padding=padding))
    back = col2im(cols, x_shape, kernel, stride, padding)
    torch.testing.assert_close(back, F.fold(cols, x_shape[2:], kernel, stride=stride, padding=padding))


# -- convolution --------------------------------------------------------------------------------


@pytest.mark.parametrize("x_shape,w_shape,stride,padding", CONV_CASES)
def test_conv_forward_matches_f_conv2d(x_shape, w_shape, stride, padding, device):
    x = _double(*x_shape, device=device)
    w = _double(*w_shape, device=device, seed=1)
    b = _double(w_shape[0], device=device, seed=2)
    out, _ = conv2d_forward(x, w, b, stride, padding)
    torch.testing.assert_close(out, F.conv2d(x, w, b, stride=stride, padding=padding))


@pytest.mark.parametrize("x_shape,w_shape,stride,padding", CONV_CASES)
def test_conv_backward_matches_autograd(x_shape, w_shape, stride, padding, device):
    x = _double(*x_shape, device=device).requires_grad_()
    w = _double(*w_shape, device=device, seed=1).requires_grad_()
    b = _double(w_shape[0], device=device, seed=2).requires_grad_()
    reference = F.conv2d(x, w, b, stride=stride, padding=padding)
    dout = torch.randn_like(reference)
    reference.backward(dout)
    _, cache = conv2d_forward(x.detach(), w.detach(), b.detach(), stride, padding)
    dx, dw, db = conv2d_backward(dout, cache)
    for ours, theirs in ((dx, x.grad), (dw, w.grad), (db, b.grad)):
        torch.testing.assert_close(ours, theirs)


def test_conv_backward_matches_centred_differences():
    x, w, b = _double(2, 2, 5, 4), _double(3, 2, 3, 3, seed=1), _double(3, seed=2)
    out, cache = conv2d_forward(x, w, b, stride=2, padding=1)
    dout = _double(*out.shape, seed=3)
    dx, dw, db = conv2d_backward(dout, cache)
    assert rel_error(dx, numerical_gradient(lambda t: conv2d_forward(t, w, b, 2, 1)[0], x, dout)) < 1e-8
    assert rel_error(dw, numerical_gradient(lambda t: conv2d_forward(x, t, b, 2, 1)[0], w, dout)) < 1e-8
    assert rel_error(db, numerical_gradient(lambda t: conv2d_forward(x, w, t, 2, 1)[0], b, dout)) < 1e-8


def test_conv_without_bias():
    x, w = _double(1, 2, 5, 5), _double(3, 2, 3, 3)
    out, cache = conv2d_forward(x, w, None)
    torch.testing.assert_close(out, F.conv2d(x, w))
    assert conv2d_backward(torch.ones_like(out), cache)[2] is None


# -- max pooling --------------------------------------------------------------------------------


@pytest.mark.parametrize("x_shape,kernel,stride,padding", POOL_CASES)
def test_maxpool_forward_and_backward_match_pytorch(x_shape, kernel, stride, padding, device):
    x = _double(*x_shape, device=device).requires_grad_()
    reference = F.max_pool2d(x, kernel, stride, padding)
    dout = torch.randn_like(reference)
    reference.backward(dout)
    out, cache = maxpool2d_forward(x.detach(), kernel, stride, padding)
    torch.testing.assert_close(out, reference.detach())
    torch.testing.assert_close(maxpool2d_backward(dout, cache), x.grad)


def test_maxpool_backward_matches_centred_differences():
    x = _double(2, 2, 6, 5)
    out, cache = maxpool2d_forward(x, 2, 1)  # overlapping windows
    dout = _double(*out.shape, seed=4)
    numeric = numerical_gradient(lambda t: maxpool2d_forward(t, 2, 1)[0], x, dout)
    assert rel_error(maxpool2d_backward(dout, cache), numeric) < 1e-8


def test_maxpool_routes_gradient_to_the_argmax_only():
    x = torch.tensor([[[[1.0, 5.0], [2.0, 3.0]]]])
    out, cache = maxpool2d_forward(x, 2)
    dx = maxpool2d_backward(torch.full_like(out, 7.0), cache)
    assert torch.equal(dx, torch.tensor([[[[0.0, 7.0], [0.0, 0.0]]]]))


# -- batch normalization ------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(16, 5), (4, 3, 5, 6)])
def test_batchnorm_train_steps_and_eval_match_nn_batchnorm(shape, device):
    features = shape[1]
    module = (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(features).double().to(device)
    with torch.no_grad():
        module.weight.copy_(_double(features, device=device, seed=9))
        module.bias.copy_(_double(features, device=device, seed=10))
    gamma, beta = module.weight.detach().clone(), module.bias.detach().clone()
    bn_param = {"mode": "train", "momentum": 0.1, "eps": 1e-5}
    module.train()
    for step in range(4):
        x = 3 * _double(*shape, device=device, seed=step) + 2
        out, _ = batchnorm_forward(x, gamma, beta, bn_param)
        torch.testing.assert_close(out, module(x).detach())
    torch.testing.assert_close(bn_param["running_mean"], module.running_mean)
    torch.testing.assert_close(bn_param["running_var"], module.running_var)
    module.eval()
    bn_param["mode"] = "eval"
    x = _double(*shape, device=device, seed=99)
    torch.testing.assert_close(batchnorm_forward(x, gamma, beta, bn_param)[0], module(x).detach())


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("shape", [(8, 4), (3, 2, 4, 5)])
def test_batchnorm_backward_matches_autograd_and_centred_differences(mode, shape, device):
    features = shape[1]
    x = _double(*shape, device=device).requires_grad_()
    gamma = _double(features, device=device, seed=1).requires_grad_()
    beta = _double(features, device=device, seed=2).requires_grad_()
    running = {
        "running_mean": _double(features, device=device, seed=5),
        "running_var": _double(features, device=device, seed=6).abs() + 0.5,
    }
    param = lambda: {"mode": mode, **{k: v.clone() for k, v in running.items()}}  # noqa: E731
    reference = F.batch_norm(x, param()["running_mean"], param()["running_var"], gamma, beta,
                             training=(mode == "train"), momentum=0.1, eps=1e-5)
    dout = torch.randn_like(reference)
    reference.backward(dout)
    _, cache = batchnorm_forward(x.detach(), gamma.detach(), beta.detach(), param())
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)
    for ours, theirs in ((dx, x.grad), (dgamma, gamma.grad), (dbeta, beta.grad)):
        torch.testing.assert_close(ours, theirs)
    if device.type == "cpu":
        numeric = numerical_gradient(
            lambda t: batchnorm_forward(t, gamma.detach(), beta.detach(), param())[0], x.detach().clone(), dout
        )
        assert rel_error(dx, numeric) < 1e-6


def test_batchnorm_creates_running_buffers_when_missing():
    bn_param = {"mode": "train"}
    batchnorm_forward(_double(10, 3), torch.ones(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), bn_param)
    assert bn_param["running_mean"].shape == (3,) and bn_param["running_var"].shape == (3,)


# -- dropout ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["inverted", "classic"])
@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.8])
def test_dropout_preserves_the_mean_in_expectation(mode, p, device):
    x = torch.ones(200_000, dtype=torch.float64, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    train_out, _ = dropout_forward(x, p, train=True, mode=mode, generator=generator)
    test_out, _ = dropout_forward(x, p, train=False, mode=mode)
    # Each unit is a scaled Bernoulli(1 - p); its mean over n units has standard error
    # scale * sqrt(p (1 - p) / n). Six standard errors: fails by chance about once in 10^9.
    scale = 1 / (1 - p) if mode == "inverted" else 1.0
    bound = 6 * scale * (p * (1 - p) / x.numel()) ** 0.5 + 1e-12
    assert abs(train_out.mean().item() - test_out.mean().item()) <= bound
    assert abs((train_out == 0).double().mean().item() - p) <= 6 * (p * (1 - p) / x.numel()) ** 0.5 + 1e-12


def test_dropout_test_time_is_identity_or_exact_keep_scaling():
    x = _double(4, 5)
    assert torch.equal(dropout_forward(x, 0.3, train=False, mode="inverted")[0], x)
    assert torch.equal(dropout_forward(x, 0.3, train=False, mode="classic")[0], x * 0.7)


def test_dropout_inverted_matches_f_dropout_statistics():
    """Kept units of F.dropout and of ours are scaled by the same 1 / (1 - p)."""
    x = torch.ones(10_000, dtype=torch.float64)
    ours, _ = dropout_forward(x, 0.25, generator=torch.Generator().manual_seed(1))
    theirs = F.dropout(x, 0.25, training=True)
    assert set(ours.unique().tolist()) == set(theirs.unique().tolist()) == {0.0, 1 / 0.75}


@pytest.mark.parametrize("mode", ["inverted", "classic"])
@pytest.mark.parametrize("train", [True, False])
def test_dropout_backward_matches_centred_differences(mode, train):
    x, dout = _double(3, 4), _double(3, 4, seed=1)
    out, cache = dropout_forward(x, 0.4, train=train, mode=mode, generator=torch.Generator().manual_seed(0))
    mask_fn = lambda t: dropout_forward(t, 0.4, train=train, mode=mode, generator=torch.Generator().manual_seed(0))[0]  # noqa: E731
    assert rel_error(dropout_backward(dout, cache), numerical_gradient(mask_fn, x, dout)) < 1e-9


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("call,message", [
    (lambda: conv2d_forward(torch.zeros(3, 5, 5), torch.zeros(2, 3, 3, 3)),
     r"expected x of shape \(N, C, H, W\), got \(3, 5, 5\)"),
    (lambda: conv2d_forward(torch.zeros(1, 3, 5, 5), torch.zeros(2, 4, 3, 3)), "x has 3 channels but w expects 4"),
    (lambda: conv2d_forward(torch.zeros(1, 3, 5, 5), torch.zeros(2, 3, 3, 3), torch.zeros(3)),
     r"expected b of shape \(2,\)"),
    (lambda: conv2d_forward(torch.zeros(1, 3, 2, 2), torch.zeros(2, 3, 3, 3)), "does not fit"),
    (lambda: maxpool2d_forward(torch.zeros(4, 4), 2), r"\(N, C, H, W\)"),
    (lambda: batchnorm_forward(torch.zeros(2, 3, 4), torch.ones(3), torch.zeros(3), {}), r"\(N, D\) or \(N, C, H, W\)"),
    (lambda: batchnorm_forward(torch.zeros(2, 3), torch.ones(4), torch.zeros(3), {}), r"gamma of shape \(3,\)"),
    (lambda: batchnorm_forward(torch.zeros(2, 3), torch.ones(3), torch.zeros(3), {"mode": "test"}),
     "'train' or 'eval'"),
    (lambda: dropout_forward(torch.zeros(3), 1.0), r"\[0, 1\)"),
    (lambda: dropout_forward(torch.zeros(3), -0.1), r"\[0, 1\)"),
    (lambda: dropout_forward(torch.zeros(3), 0.5, mode="gaussian"), "inverted"),
])
def test_bad_input_names_what_was_expected(call, message):
    with pytest.raises(ValueError, match=message):
        call()
