"""hw2's checkers: the cases cover every family and change with the seed, a wrong answer
fails with a message naming its case and never the formula, the experiment's tolerance
holds for the reference over seeds and catches a wrong experiment; and the library's
reference functions for the new questions against autograd."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import initialization, layers
from course_lib.grading import (
    CheckFailure,
    check_batchnorm_backward,
    check_batchnorm_forward,
    check_dropout_backward,
    check_dropout_forward,
    check_gradient_norms,
    check_init_experiment,
    check_init_std,
)
from course_lib.grading.checks import hw2_layers
from course_lib.grading.checks.hints import hint_text

CPU = torch.device("cpu")


# -- reference-like answers ---------------------------------------------------------------------

def bn_forward(x, gamma, beta, p, unbiased_normalize=False, momentum_backwards=False):
    dims = (0,) if x.dim() == 2 else (0, 2, 3)
    view = (1, -1) if x.dim() == 2 else (1, -1, 1, 1)
    if p["mode"] == "train":
        mean, var = x.mean(dims), x.var(dims, unbiased=unbiased_normalize)
        a = 1 - p["momentum"] if momentum_backwards else p["momentum"]
        p["running_mean"].copy_((1 - a) * p["running_mean"] + a * mean)
        p["running_var"].copy_((1 - a) * p["running_var"] + a * x.var(dims, unbiased=True))
    else:
        mean, var = p["running_mean"], p["running_var"]
    return gamma.view(view) * (x - mean.view(view)) / (var.view(view) + p["eps"]).sqrt() + beta.view(view), None


def bn_backward(dout, x, gamma, eps=1e-5):
    dims = (0,) if x.dim() == 2 else (0, 2, 3)
    view = (1, -1) if x.dim() == 2 else (1, -1, 1, 1)
    inv = 1 / (x.var(dims, unbiased=False, keepdim=True) + eps).sqrt()
    xhat = (x - x.mean(dims, keepdim=True)) * inv
    g = dout * gamma.view(view)
    dx = inv * (g - g.mean(dims, keepdim=True) - xhat * (g * xhat).mean(dims, keepdim=True))
    return dx, (dout * xhat).sum(dims), dout.sum(dims)


def dropout_forward(x, p, train, generator=None):
    if not train:
        return x
    return x * (torch.rand(x.shape, generator=generator, device=x.device) >= p) / (1 - p)


def dropout_backward(dout, mask, p, train):
    return dout * mask / (1 - p) if train else dout


def gradient_norms(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, torch.nn.Linear)]


def experiment(depth, seed, norms, xavier_std, he_std, stds=None, default_bias=()):
    generator = torch.Generator().manual_seed(seed)
    x, y = torch.randn(128, 64, generator=generator), torch.randint(10, (128,), generator=generator)
    stds = stds or {"zero": lambda w: 0.0, "small": lambda w: 0.01,
                    "xavier": lambda w: xavier_std(w.shape[1], w.shape[0]), "he": lambda w: he_std(w.shape[1])}
    result = {}
    for name, std in stds.items():
        model = initialization.deep_mlp(depth, 64, "relu", out_features=10)
        with torch.no_grad():
            for layer in model:
                if isinstance(layer, torch.nn.Linear):
                    layer.weight.normal_(0.0, std(layer.weight), generator=generator)
                    if name not in default_bias:
                        layer.bias.zero_()
        result[name] = norms(model, x, y)
    return result


XAVIER, HE = (lambda i, o: math.sqrt(2 / (i + o))), (lambda i: math.sqrt(2 / i))
RIGHT = [
    (check_batchnorm_forward, (bn_forward,)), (check_batchnorm_backward, (bn_backward,)),
    (check_dropout_forward, (dropout_forward,)), (check_dropout_backward, (dropout_backward,)),
    (check_init_std, (XAVIER, HE)), (check_gradient_norms, (gradient_norms,)),
]


@pytest.mark.parametrize("seed", [0, 99])
@pytest.mark.parametrize("checker,answers", RIGHT, ids=[c.__name__ for c, _ in RIGHT])
def test_a_correct_answer_passes(checker, answers, seed):
    checker(*answers, seed=seed)


# -- wrong answers: the message names the case and the size, never the formula -------------------

WRONG = [
    (check_batchnorm_forward, (lambda x, g, b, p: bn_forward(x, g, b, p, unbiased_normalize=True),), "out"),
    (check_batchnorm_forward, (lambda x, g, b, p: bn_forward(x, g, b, p, momentum_backwards=True),), "running_mean"),
    (check_batchnorm_backward, (lambda d, x, g, eps=1e-5: bn_backward(d, x, g, 1e-5),), "dx"),
    (check_dropout_forward, (lambda x, p, t, g=None: dropout_forward(x, p, True, g),), "test-time"),
    (check_dropout_backward, (lambda d, m, p, t: d * m,), "dx"),
    (check_init_std, (lambda i, o: 1 / math.sqrt(i), HE), "xavier_std"),
    (check_init_std, (XAVIER, lambda i: 1 / math.sqrt(i)), "he_std"),
    (check_gradient_norms, (lambda m, x, y: gradient_norms(m, x, y)[1:],), "Linear"),
    (check_gradient_norms, (lambda m, x, y: [2 * n for n in gradient_norms(m, x, y)],), "norms"),
]
FORMULAS = ["sqrt(2", "fan_in + fan_out", "/ fan_in", "m - 1", "N - 1", "1 - momentum", "momentum *", "* gamma",
            "x_hat *", "sum(", "mean(", "/ std", "inv_std", "dout *"]


@pytest.mark.parametrize("checker,answers,what", WRONG, ids=[f"{c.__name__}-{w}" for c, _, w in WRONG])
def test_a_wrong_answer_fails_naming_the_case_without_the_formula(checker, answers, what):
    with pytest.raises(CheckFailure, match="case ") as failure:
        checker(*answers)
    message = str(failure.value)
    assert what in message, message
    assert not [f for f in FORMULAS if f in message], message


def test_the_hints_point_at_ideas_not_formulas():
    for question in hw2_layers.HINTS:
        text = hint_text("hw2", question)
        assert not [f for f in FORMULAS if f in text], (question, text)
    assert set(hw2_layers.HINTS) == {f"Q{k}" for k in range(1, 8)}


# -- the cases: every family, and fresh ones for a hidden seed -----------------------------------

def test_batch_norm_cases_cover_every_family_and_change_with_the_seed():
    visible, hidden = hw2_layers._bn_cases(0, CPU), hw2_layers._bn_cases(8080, CPU)
    cases = visible + hidden
    shapes = [c[0] for c in cases]
    assert any(len(s) == 2 for s in shapes) and any(len(s) == 4 and s[2] != s[3] for s in shapes)
    assert any(len(s) == 4 and s[0] == 1 for s in shapes) and any(s[1] == 1 for s in shapes)
    assert {c[1] for c in cases} == {torch.float32, torch.float64}
    assert len({c[2] for c in cases}) >= 2 and len({c[3] for c in cases}) >= 2
    assert [c[0] for c in visible] != [c[0] for c in hidden]


def test_dropout_cases_change_with_the_seed_and_cover_both_dtypes():
    visible, hidden = hw2_layers._dropout_cases(0, CPU), hw2_layers._dropout_cases(31, CPU)
    assert {c[1] for c in visible} == {torch.float32, torch.float64}
    assert [c[:3] for c in visible] != [c[:3] for c in hidden]
    assert {c[3] for c in visible} == {True, False}  # with a generator and without


# -- the experiment --------------------------------------------------------------------------------

@pytest.mark.parametrize("depth,seed", [(10, 0), (7, 5), (6, 1), (8, 2), (9, 3)])
def test_the_reference_experiment_passes_on_five_seeds(depth, seed):
    check_init_experiment(experiment, depth=depth, seed=seed)


STDS = {"zero": lambda w: 0.0, "small": lambda w: 0.01, "xavier": lambda w: XAVIER(w.shape[1], w.shape[0]),
        "he": lambda w: HE(w.shape[1])}


@pytest.mark.parametrize("stds,default_bias,message", [
    ({"zero": lambda w: 0.0, "small": lambda w: 0.01, "xavier": lambda w: HE(w.shape[1]),
      "he": lambda w: XAVIER(w.shape[1], w.shape[0])}, (), "wrong way"),                   # Xavier and He swapped
    ({"zero": lambda w: 0.0, "small": lambda w: 0.1, "xavier": lambda w: XAVIER(w.shape[1], w.shape[0]),
      "he": lambda w: HE(w.shape[1])}, (), "N(0, 0.01^2)"),                              # small = std 0.1
    (STDS, ("zero",), "zero initialization"),                                            # biases left at default
])
def test_a_wrong_experiment_fails(stds, default_bias, message):
    with pytest.raises(CheckFailure, match="case depth=10") as failure:
        check_init_experiment(lambda d, s, n, xs, hs: experiment(d, s, n, xs, hs, stds, default_bias))
    assert message in str(failure.value)


def test_the_experiment_runs_with_the_graders_functions_not_the_students():
    seen = []

    def spy(depth, seed, norms, xavier_std, he_std):
        seen.append((norms, xavier_std(10, 30), he_std(8)))
        return experiment(depth, seed, norms, xavier_std, he_std)

    check_init_experiment(spy, depth=6)
    assert all(n is initialization.weight_gradient_norms for n, _, _ in seen)
    assert all(math.isclose(x, math.sqrt(2 / 40)) and math.isclose(h, 0.5) for _, x, h in seen)


# -- the library's references for the new questions ---------------------------------------------

def test_weight_gradient_norms_match_autograd_layer_by_layer():
    torch.manual_seed(0)
    model = initialization.deep_mlp(3, 7, "tanh", in_features=4, out_features=3).double()
    x, y = torch.randn(5, 4, dtype=torch.float64), torch.tensor([0, 2, 1, 1, 0])
    F.cross_entropy(model(x), y).backward()
    want = [model.fc1.weight.grad.norm(), model.fc2.weight.grad.norm(), model.fc3.weight.grad.norm(),
            model.out.weight.grad.norm()]
    got = initialization.weight_gradient_norms(model, x, y)
    torch.testing.assert_close(got, torch.stack(want))


def test_gradient_norms_by_init_zero_is_exactly_zero_and_he_beats_small():
    norms = initialization.gradient_norms_by_init(6, seed=0)
    assert set(norms) == {"zero", "small", "xavier", "he"} and all(len(v) == 7 for v in norms.values())
    assert float(norms["zero"].abs().max()) == 0.0
    assert float(norms["he"][0]) > float(norms["xavier"][0]) > float(norms["small"][0]) > 0


def test_dropout_backward_matches_autograd_through_the_forward():
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    out, cache = layers.dropout_forward(x, 0.3, True, generator=torch.Generator().manual_seed(1))
    dout = torch.randn_like(out)
    out.backward(dout)
    torch.testing.assert_close(layers.dropout_backward(dout, cache), x.grad)
