"""hw1's checkers against oracles: torchvision's VGGs (built on the meta device, so no 138M
floats), autograd and torch.nn.functional. A changed case fails with a message that names
it and never prints the formula; the seed changes the cases; every case family is covered."""


import pytest
import torch
import torch.nn.functional as F
import torchvision.models as tvm
from torch import nn

from course_lib import layers
from course_lib.grading import CheckFailure, ForbiddenCallError
from course_lib.grading.checks import hw1_arithmetic as hw1

VISIBLE_AND_HIDDEN = [0, 1, 2, 17, 23, 4242]  # the seeds the solution notebook's test cells use, and more


# -- VGG: the reference against torchvision ------------------------------------------------------

def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(hw1.VGG_CONFIGS))
def test_the_vgg_reference_is_torchvisions_figure(name):
    with torch.device("meta"):
        model = getattr(tvm, name)(weights=None)
    assert hw1.vgg_reference(hw1.VGG_CONFIGS[name]) == _count(model)


def _meta_vgg(config, in_channels, num_classes) -> nn.Module:
    """A VGG built from torch.nn on the meta device, the classifier sized by running a 224x224
    image through the features (what torchvision's VGG does when the last width is 512)."""
    with torch.device("meta"):
        blocks, channels = [], in_channels
        for v in config:
            blocks += [nn.MaxPool2d(2, 2)] if v == "M" else [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU()]
            channels = channels if v == "M" else v
        features = nn.Sequential(*blocks)
        flat = features(torch.empty(1, in_channels, 224, 224)).numel()
        return nn.Sequential(features, nn.Flatten(), nn.Linear(flat, 4096), nn.Linear(4096, 4096),
                             nn.Linear(4096, num_classes))


@pytest.mark.parametrize("seed", VISIBLE_AND_HIDDEN)
def test_every_vgg_case_matches_a_network_built_from_torch_nn(seed):
    for _, config, in_channels, num_classes in hw1._vgg_cases(seed):
        assert config.count("M") == 5
        expected = _count(_meta_vgg(config, in_channels, num_classes))
        assert hw1.vgg_reference(config, in_channels, num_classes) == expected


def test_the_vgg_cases_vary_inputs_classes_and_the_last_width_with_the_seed():
    cases = [case for seed in (0, 1, 2) for case in hw1._vgg_cases(seed)]
    assert {c[2] for c in cases} > {3} and {c[3] for c in cases} > {1000}
    assert {[v for v in c[1] if v != "M"][-1] for c in cases} > {512}
    assert hw1._vgg_cases(1) != hw1._vgg_cases(2)


def _hardcoded_flatten(config, in_channels=3, num_classes=1000):
    widths = [in_channels] + [v for v in config if v != "M"]
    convs = sum(a * b * 9 + b for a, b in zip(widths, widths[1:]))
    return convs + 512 * 7 * 7 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * num_classes + num_classes


def _rgb_only(config, in_channels=3, num_classes=1000):
    return hw1.vgg_reference(config, 3, num_classes)


def _imagenet_head(config, in_channels=3, num_classes=1000):
    return hw1.vgg_reference(config, in_channels, num_classes) + 1000 - num_classes


@pytest.mark.parametrize("answer,named", [(_hardcoded_flatten, "a VGG-style net"), (_rgb_only, "in_channels="),
                                          (_imagenet_head, "num_classes=")])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_three_wrong_vgg_answers_of_issue_11_fail_on_every_seed(answer, named, seed):
    with pytest.raises(CheckFailure, match="case") as failure:
        hw1.check_vgg_params(answer, seed)
    message = str(failure.value)
    assert (named in message if seed == 0 else "case" in message) and "too" in message
    assert f"{hw1.vgg_reference(*_first_failing(answer, seed)):,}" not in message, "the message prints the answer"


def _first_failing(answer, seed):
    for _, config, cin, classes in hw1._vgg_cases(seed):
        if answer(config, cin, classes) != hw1.vgg_reference(config, cin, classes):
            return config, cin, classes
    raise AssertionError("no case fails")


# -- case families and seeds -----------------------------------------------------------------------

def test_the_window_cases_cover_every_family_over_the_visible_and_hidden_seeds():
    cases = [c for seed in (0, 17, 4242) for c in hw1._window_cases(seed, hw1._CONV_FIXED)]
    strides = {("<" if s < max(kh, kw) else "=" if s == max(kh, kw) else ">") for _, _, _, _, kh, kw, s, _, _ in cases}
    assert strides == {"<", "=", ">"}
    assert any(n == 1 and c == 1 for n, c, *_ in cases) and any(h != w for _, _, h, w, *_ in cases)
    assert {c[-1] for c in cases} == {0, 1}  # float32 and float64
    assert hw1._window_cases(17, []) != hw1._window_cases(4242, [])


def test_the_size_and_parameter_cases_change_with_the_seed():
    assert hw1._size_cases(3141)[4:] != hw1._size_cases(577)[4:]
    strides = {(s > k) - (s < k) for _, k, s, _ in hw1._size_cases(0)}
    assert strides == {-1, 0, 1}


# -- conv backward and max pooling: the references against autograd and torch ---------------------

@pytest.mark.parametrize("seed", VISIBLE_AND_HIDDEN)
def test_the_conv_backward_reference_is_autograds(seed):
    generator = torch.Generator().manual_seed(seed)
    for _, x, w, b, stride, padding, _ in hw1._conv_inputs(seed, generator, torch.device("cpu")):
        x, w, b = (t.double().requires_grad_() for t in (x, w, b))
        out = F.conv2d(x, w, b, stride, padding)
        dout = torch.randn(out.shape, generator=generator, dtype=torch.float64)
        out.backward(dout)
        _, cache = layers.conv2d_forward(x.detach(), w.detach(), b.detach(), stride, padding)
        mine = layers.conv2d_backward(dout, cache)
        for got, expected in zip(mine, (x.grad, w.grad, b.grad)):
            torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("seed", VISIBLE_AND_HIDDEN)
def test_the_maxpool_references_are_torchs(seed):
    generator = torch.Generator().manual_seed(seed)
    for _, x, kernel, stride, _ in hw1._pool_inputs(seed, generator, torch.device("cpu")):
        x = x.double().requires_grad_()
        out = F.max_pool2d(x, kernel, stride)
        dout = torch.randn(out.shape, generator=generator, dtype=torch.float64)
        out.backward(dout)
        mine, cache = layers.maxpool2d_forward(x.detach(), kernel, stride)
        torch.testing.assert_close(mine, out.detach())
        torch.testing.assert_close(layers.maxpool2d_backward(dout, cache), x.grad)


def _conv_backward(dout, x, w, stride, padding):
    """A student's correct answer: loops over the output positions."""
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    xp = F.pad(x, [padding] * 4)
    dxp, dw = torch.zeros_like(xp), torch.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows, cols = slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw)
            dw += torch.einsum("nf,nckl->fckl", dout[:, :, i, j], xp[:, :, rows, cols])
            dxp[:, :, rows, cols] += torch.einsum("nf,fckl->nckl", dout[:, :, i, j], w)
    return dxp[:, :, padding:padding + h, padding:padding + wd], dw, dout.sum((0, 2, 3))


def test_a_correct_conv_backward_passes_and_mistakes_fail_naming_the_case_and_the_gradient():
    for seed in (0, 23, 808):
        hw1.check_conv_backward(_conv_backward, seed)
    def no_overlap_sum(d, x, w, s, p):  # as if windows never shared a pixel
        dx, dw, db = _conv_backward(d, x, w, s, p)
        return dx * (s >= w.shape[-1]), dw, db

    first_case = r"case x \(2, 3, 7, 7\), w \(4, 3, 3, 3\), stride=1, padding=1, float64: dx"
    with pytest.raises(CheckFailure, match=first_case):
        hw1.check_conv_backward(no_overlap_sum)

    def batch_mean(d, x, w, s, p):  # dw averaged over the batch
        dx, dw, db = _conv_backward(d, x, w, s, p)
        return dx, dw / x.shape[0], db

    with pytest.raises(CheckFailure, match="dw differs from the reference by up to"):
        hw1.check_conv_backward(batch_mean)


def test_autograd_and_the_librarys_col2im_are_refused_in_conv_backward():
    def by_autograd(dout, x, w, stride, padding):
        x, w = x.clone().requires_grad_(), w.clone().requires_grad_()
        out = layers.conv2d_output(x, w, None, stride, padding)
        dx, dw = torch.autograd.grad(out, (x, w), dout)
        return dx, dw, dout.sum((0, 2, 3))

    def by_col2im(dout, x, w, stride, padding):
        _, dw, db = _conv_backward(dout, x, w, stride, padding)
        dcols = w.reshape(w.shape[0], -1).t() @ dout.reshape(dout.shape[0], dout.shape[1], -1)
        return layers.col2im(dcols, x.shape, tuple(w.shape[2:]), stride, padding), dw, db

    for answer, name in ((by_autograd, "conv2d_forward"), (by_col2im, "col2im")):
        with pytest.raises(ForbiddenCallError, match=name):
            hw1.check_conv_backward(answer)


def test_maxpool_forward_accepts_a_correct_answer_and_refuses_f_max_pool2d():
    unfolded = lambda x, k, s: x.unfold(2, k, s).unfold(3, k, s).amax(dim=(-2, -1))  # noqa: E731
    for seed in (0, 5, 2024):
        hw1.check_maxpool_forward(unfolded, seed)
    with pytest.raises(CheckFailure, match="stride=2"):
        hw1.check_maxpool_forward(lambda x, k, s: unfolded(x, k, k))
    with pytest.raises(ForbiddenCallError, match="max_pool2d"):
        hw1.check_maxpool_forward(lambda x, k, s: F.max_pool2d(x, k, s))


# -- the experiment ----------------------------------------------------------------------------

def test_the_input_gradient_reference_is_autograds():
    generator = torch.Generator().manual_seed(0)
    weights = [torch.randn(1, 1, 3, 3, generator=generator, dtype=torch.float64) for _ in range(5)]
    x = torch.zeros(1, 1, 21, 21, dtype=torch.float64, requires_grad=True)
    out = x
    for w in weights:
        out = F.conv2d(out, w, padding=1)
    out[0, 0, 10, 10].backward()
    torch.testing.assert_close(layers.input_gradient(weights, 21), x.grad)


def test_the_effective_radius_is_the_rms_distance_weighted_by_the_squared_gradient():
    grad = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    grad[0, 0, 2, 2] = 3.0
    assert layers.effective_radius(grad) == 0.0
    grad[0, 0, 2, 4] = -3.0  # two pixels of equal energy, at distance 0 and 2
    assert layers.effective_radius(grad) == pytest.approx(2 ** 0.5)
    grad[0, 0, 0, 0] = 3.0  # and a third at distance sqrt(8)
    assert layers.effective_radius(grad.float()) == pytest.approx(((4 + 8) / 3) ** 0.5)


def test_the_effect_tolerance_covers_the_reference_on_fresh_seeds():
    """The slope of the reference, averaged as the check does, stays inside the tolerance."""
    for seed in range(100, 106):
        hw1.check_input_gradient(layers.input_gradient, seed)


def test_the_reference_slope_is_where_the_comment_says():
    """The reference's 6-run mean slope on 8 checks: near ERF_SLOPE and well inside the tolerance."""
    means = []
    for seed in range(8):
        slopes = []
        for depths, size, _, run_seed in hw1._erf_runs(seed):
            generator = torch.Generator().manual_seed(run_seed)
            weights = [torch.randn(1, 1, 3, 3, generator=generator, dtype=torch.float64) for _ in range(max(depths))]
            radii = [layers.effective_radius(layers.input_gradient(weights[:d], size)) for d in depths]
            slopes.append(hw1._slope(depths, radii))
        means.append(sum(slopes) / len(slopes))
    assert abs(sum(means) / len(means) - hw1.ERF_SLOPE) < 0.05
    assert max(abs(m - hw1.ERF_SLOPE) for m in means) < hw1.ERF_TOLERANCE / 2, means


@pytest.mark.parametrize("mistake,named", [
    ("sum", "pixels across"),  # the gradient of the sum of the outputs: the whole image
    ("fresh", "pixels across"),  # no chaining: only a 3x3 field
])
def test_wrong_experiments_fail(mistake, named):
    def answer(weights, size, forward, backward):
        grad = torch.zeros(1, 1, size, size, dtype=weights[0].dtype)
        zeros = torch.zeros_like(grad)
        if mistake == "sum":
            grad = torch.ones_like(grad)
        else:
            grad[0, 0, size // 2, size // 2] = 1
        for w in reversed(weights):
            grad = backward(grad, zeros, w, 1, 1)[0]
            if mistake == "fresh":
                return grad
        return grad

    with pytest.raises(CheckFailure, match=named):
        hw1.check_input_gradient(answer)


# -- messages and hints ----------------------------------------------------------------------------

FORMULA_BITS = ["//", "2*p", "2 * p", "floor(", "512*7*7", "512 x 7 x 7", "25,088", "* k * k", "k*k",
                "in_channels *", "@", "transpose", ".t()"]


def test_hints_point_at_the_idea_without_the_formula():
    assert set(hw1.HINTS) == {f"Q{k}" for k in range(1, 9)}
    for question, text in hw1.HINTS.items():
        assert not [bit for bit in FORMULA_BITS if bit in text], (question, text)


@pytest.mark.parametrize("checker,answer", [
    (hw1.check_conv_output_size, lambda n, k, s, p: (n + p - k) // s + 1),
    (hw1.check_conv_params, lambda i, o, k, b=True: o * k * k + o * b),
    (hw1.check_vgg_params, _hardcoded_flatten),
    (hw1.check_conv_forward, lambda x, w, b, s, p: layers.conv2d_output(x, w, None, s, p)),  # no bias
    (hw1.check_maxpool_backward, lambda d, x, k, s: torch.zeros_like(x)),
])
def test_failure_messages_name_the_case_and_the_error_not_the_formula(checker, answer):
    with pytest.raises(CheckFailure, match="case") as failure:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(hw1, "CONV_FORBIDDEN", [])  # the answer above borrows the reference conv
            checker(answer)
    message = str(failure.value)
    assert not [bit for bit in FORMULA_BITS if bit in message], message
