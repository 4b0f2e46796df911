"""hw3's checkers: the seed changes the cases (and every case family occurs), a wrong answer
fails with a message naming its case and never the reference's formula, the references the
checkers compare with agree with peft, and the experiment's verdict follows its measured band.
The homework zoo (tests/test_homework_zoo.py) runs the realistic answers through the notebook."""

import copy
import warnings
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import transfer
from course_lib.grading import (
    CheckFailure,
    check_augment,
    check_augmentation_experiment,
    check_fine_tuning,
    check_lora_conv2d,
    check_lora_linear,
    check_tta_flip,
)
from course_lib.grading.checks import hw3_transfer as hw3

SEEDS = range(8)


# -- the seed changes the cases -----------------------------------------------------------------

CASE_MAKERS = [hw3._augment_cases, hw3._tta_cases, hw3._lora_linear_cases, hw3._lora_conv_cases]


@pytest.mark.parametrize("make", CASE_MAKERS, ids=lambda f: f.__name__)
def test_every_seed_gives_other_cases(make):
    seen = [repr(make(seed)) for seed in SEEDS]
    assert len(set(seen)) == len(seen)


def test_fine_tuning_cases_change_with_the_seed_and_cover_nothing_all_and_some():
    shapes = set()
    for seed in SEEDS:
        cases = list(hw3._fine_tuning_cases(seed))
        assert [t for _, _, t, _ in cases][:2] == [0, len(cases[1][1])]
        assert 0 < cases[2][2] < len(cases[2][1])
        shapes.add(tuple(repr(model) for model, *_ in cases))
        assert {next(m.parameters()).dtype for m, *_ in cases} == {torch.float32, torch.float64}
    assert len(shapes) == len(SEEDS)


def test_every_case_family_occurs_for_each_seed():
    for seed in SEEDS:
        augment = hw3._augment_cases(seed)
        assert {n for n, *_ in augment} >= {1, 96} and {c for _, c, *_ in augment} == {1, 3}
        assert any(h != w for _, _, h, w, *_ in augment) and {d for *_, d in augment} == {torch.float32, torch.float64}
        linear = hw3._lora_linear_cases(seed)
        assert any(len(batch) == 2 for *_, batch, _ in linear) and any(batch == (1,) for *_, batch, _ in linear)
        assert {bias for *_, bias, _, _ in linear} == {True, False} and any(r > 1 for _, _, r, *_ in linear)
        conv = hw3._lora_conv_cases(seed)
        assert {c["groups"] for c in conv} == {1, 2} and {c["dilation"] for c in conv} == {1, 2}
        assert any(c["stride"] > 1 and c["kernel_size"] == 1 for c in conv)  # stride larger than the kernel
        assert any(c["n"] == 1 and c["in_channels"] == 1 for c in conv)
        assert {c["dtype"] for c in conv} == {torch.float32, torch.float64}


def test_the_probe_task_size_changes_with_the_seed():
    assert {(20, 30)[seed % 2] for seed in (0, 3)} == {20, 30}


# -- wrong answers fail, naming the case, without the formula -----------------------------------

def _shift(images, labels, generator, max_shift=2):
    return hw3.reference_shift(images, labels, generator, max_shift)


def _padded_and_cropped(image, dy, dx):
    """Oracle: image (C, H, W) moved down by dy and right by dx, zeros moving in (zero padding, then a crop)."""
    h, w = image.shape[-2:]
    pad = max(abs(dy), abs(dx))
    return F.pad(image, (pad,) * 4)[..., pad - dy:pad - dy + h, pad - dx:pad - dx + w]


def _shift_never_the_largest(images, labels, generator, max_shift=2):
    """Off by one: shifts from -max_shift to max_shift - 1 only."""
    shifts = torch.randint(-max_shift, max_shift, (len(images), 2), generator=generator).tolist()
    return torch.stack([_padded_and_cropped(image, dy, dx) for image, (dy, dx) in zip(images, shifts)]), labels


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("max_shift", [1, 2, 3])
def test_the_checkers_shifts_are_padding_then_cropping(max_shift, dtype):
    """Every shift the Q1 checker compares with, and the experiment's augmentation, against the oracle."""
    image = torch.rand(3, 7, 10, dtype=dtype) + 0.1
    shifts = hw3._all_shifts(image, max_shift)
    assert shifts.dtype == dtype and len(shifts) == (2 * max_shift + 1) ** 2
    for (dy, dx), shifted in zip(hw3._shift_grid(max_shift), shifts):
        assert torch.equal(shifted, _padded_and_cropped(image, dy, dx)), (dy, dx)
    images = torch.rand(40, 2, 9, 8, dtype=dtype)
    out, labels = hw3.reference_shift(images, torch.arange(40), torch.Generator().manual_seed(3), max_shift)
    drawn = torch.randint(-max_shift, max_shift + 1, (40, 2), generator=torch.Generator().manual_seed(3)).tolist()
    assert torch.equal(labels, torch.arange(40)) and out.dtype == dtype
    assert all(torch.equal(out[i], _padded_and_cropped(images[i], dy, dx)) for i, (dy, dx) in enumerate(drawn))


class _LoRA(nn.Module):
    """A correct LoRALinear, made wrong by the subclasses below."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base, self.scaling, self.merged = base.requires_grad_(False), alpha / r, False
        w = base.weight
        self.A = nn.Parameter(torch.randn(r, w.shape[1], dtype=w.dtype, device=w.device) * 0.1)
        self.B = nn.Parameter(torch.zeros(w.shape[0], r, dtype=w.dtype, device=w.device))

    def forward(self, x):
        return self.base(x) + (0 if self.merged else self.scaling * x @ self.A.T @ self.B.T)

    def merge(self):
        self.base.weight.data += self.scaling * self.B.data @ self.A.data
        self.merged = True


class _LoRAIgnoresBias(_LoRA):
    """Wrong only without bias: adds a bias of ones where the base has none."""

    def forward(self, x):
        out = super().forward(x)
        return out if self.base.bias is not None else out + 1


class _LoRAConv(nn.Module):
    def __init__(self, base, r, alpha, dilation=True):
        super().__init__()
        self.base, self.scaling = base.requires_grad_(False), alpha / r
        options = {"dtype": base.weight.dtype, "device": base.weight.device, "bias": False}
        self.A = nn.Conv2d(base.in_channels, r, base.kernel_size, base.stride, base.padding,
                           base.dilation if dilation else 1, **options)
        self.B = nn.Conv2d(r, base.out_channels, 1, groups=base.groups, **options)
        nn.init.zeros_(self.B.weight)

    def forward(self, x):
        return self.base(x) + self.scaling * self.B(self.A(x))


def _fine_tune(model, blocks, train_last):
    transfer.freeze(model, train_last, blocks=blocks)
    transfer.freeze_bn(model)


def _fine_tune_eval_once(model, blocks, train_last):
    transfer.freeze(model, train_last, blocks=blocks)
    model.eval()


CORRECT = [(check_augment, _shift), (check_tta_flip, lambda m, x: transfer_free_tta(m, x)),
           (check_lora_linear, _LoRA), (check_lora_conv2d, _LoRAConv), (check_fine_tuning, _fine_tune)]


def transfer_free_tta(model, images):
    with torch.no_grad():
        return (model(images) + model(images.flip(-1))) / 2


@pytest.mark.parametrize(("checker", "answer"), CORRECT, ids=[c.__name__ for c, _ in CORRECT])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_correct_answers_pass_for_any_seed(checker, answer, seed):
    checker(answer, seed=seed)


WRONG = [
    (check_augment, lambda x, y, g, s=2: (_shift(x, y, g, s)[0], y.flip(0)), "labels", "the labels"),
    (check_augment, lambda x, y, g, s=2: _shift(x.flip(-2), y, g, s), "max_shift=", "moved by whole pixels"),
    (check_augment, _shift_never_the_largest, "max_shift=", "every whole shift"),
    (check_tta_flip, lambda m, x: transfer_free_tta(m, x).softmax(1), "classes", "the merged logits"),
    (check_lora_linear, _LoRAIgnoresBias, "bias=False", "the output at the start"),
    (check_lora_conv2d, lambda b, r, a: _LoRAConv(b, r, a, dilation=False), "dilation=(2, 2)", "forward raised"),
    (check_fine_tuning, _fine_tune_eval_once, "train_last=", "statistics"),
]
FORMULAS = ["alpha / r", "A^T", "B A", "flip(-1)", "flip(3)", "head[:-1]", "running_mean *", "momentum",
            "r * (in", "(out, r)", "(r, in)", "pad(", "randint", "softmax", ".eval()"]


@pytest.mark.parametrize(("checker", "answer", "case", "what"), WRONG,
                         ids=[f"{c.__name__}-{i}" for i, (c, *_) in enumerate(WRONG)])
def test_a_wrong_answer_fails_naming_its_case_and_never_the_formula(checker, answer, case, what):
    with pytest.raises(CheckFailure) as failure:
        checker(answer, seed=0)
    message = str(failure.value)
    assert case in message and what in message, message
    assert not [f for f in FORMULAS if f in message], message


def test_lora_with_both_factors_at_zero_cannot_learn():
    class Zero(_LoRA):
        def __init__(self, base, r, alpha):
            super().__init__(base, r, alpha)
            self.A.data.zero_()

    with pytest.raises(CheckFailure, match="every gradient of the adapter is zero"):
        check_lora_linear(Zero)


def test_hints_cover_every_question_and_hold_no_code():
    assert sorted(hw3.HINTS) == [f"Q{k}" for k in range(1, 8)]
    for text in hw3.HINTS.values():
        assert not [f for f in FORMULAS if f in text], text


# -- the checkers' oracles agree with peft ------------------------------------------------------

peft = pytest.importorskip("peft")


def _peft_output(layer, x):
    holder = nn.Sequential(OrderedDict([("layer", copy.deepcopy(layer.base))]))
    config = peft.LoraConfig(r=layer.r, lora_alpha=layer.alpha, target_modules=["layer"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = peft.get_peft_model(holder, config)
    twin = model.base_model.model.layer
    with torch.no_grad():
        twin.lora_A["default"].weight.copy_(layer.lora_A.weight)
        twin.lora_B["default"].weight.copy_(layer.lora_B.weight)
        return model(x)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_conv_reference_agrees_with_peft_on_the_checker_cases(seed):
    """peft 0.21 builds A without the base's dilation (peft issue #3697): dilated cases are left out."""
    generator = torch.Generator().manual_seed(seed)
    for settings in hw3._lora_conv_cases(seed):
        settings = dict(settings)
        r, alpha, n, size, _ = (settings.pop(k) for k in ("r", "alpha", "n", "size", "dtype"))
        if settings["dilation"] != 1:
            continue
        layer = transfer.LoRAConv2d(nn.Conv2d(**settings).double(), r, alpha)
        with torch.no_grad():
            layer.lora_B.weight.normal_(generator=generator)
        x = torch.randn(n, settings["in_channels"], *size, generator=generator, dtype=torch.float64)
        torch.testing.assert_close(layer(x), _peft_output(layer, x))


@pytest.mark.parametrize("seed", SEEDS)
def test_the_linear_reference_agrees_with_peft_on_the_checker_cases(seed):
    generator = torch.Generator().manual_seed(seed)
    for fan_in, fan_out, r, alpha, bias, batch, _ in hw3._lora_linear_cases(seed):
        layer = transfer.LoRALinear(nn.Linear(fan_in, fan_out, bias=bias).double(), r, alpha)
        with torch.no_grad():
            layer.lora_B.weight.normal_(generator=generator)
        x = torch.randn(*batch, fan_in, generator=generator, dtype=torch.float64)
        torch.testing.assert_close(layer(x), _peft_output(layer, x))


# -- the experiment's verdict ---------------------------------------------------------------------

class _Fixed(nn.Module):
    """Predicts from a fixed table: accuracy `without` or `with` on the checker's test set."""

    def __init__(self, correct):
        super().__init__()
        self.correct = correct
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        logits = torch.zeros(len(x), 10)
        logits[torch.arange(len(x)), self.correct[: len(x)]] = 1
        return logits


def _trainer(without, gain):
    """A fake train_with_augmentation whose test accuracies are exactly `without` and `without + gain`."""
    _, (_, test_y) = hw3._experiment_data(0)

    def train(images, labels, augment_fn, steps, seed):
        accuracy = without + (gain if augment_fn is not None else 0)
        predicted = test_y.clone()
        wrong = round((1 - accuracy) * len(test_y))
        predicted[:wrong] = (predicted[:wrong] + 1) % 10
        return _Fixed(predicted)
    return train


@pytest.mark.parametrize(("without", "gain", "passes", "named"), [
    (0.83, 0.045, True, None),
    (0.83, 0.0, False, "+0.000"),        # augmentation never applied
    (0.83, -0.05, False, "-0.050"),      # the training set augmented once
    (0.83, 0.12, False, "+0.120"),       # too good to be the same experiment
    (0.50, 0.045, False, "without augmentation"),
])
def test_the_experiment_passes_exactly_inside_the_measured_band(without, gain, passes, named):
    if passes:
        check_augmentation_experiment(_trainer(without, gain))
        return
    with pytest.raises(CheckFailure, match=named.replace("+", r"\+")):
        check_augmentation_experiment(_trainer(without, gain))


def test_the_band_is_the_measured_mean_plus_minus_three_standard_errors():
    gains = [.051, .082, .047, .023, .051, .012, .062, .057, .023, .033, .047, .046, .058, .031]
    mean = sum(gains) / len(gains)
    sd = (sum((g - mean) ** 2 for g in gains) / (len(gains) - 1)) ** 0.5
    error = sd / hw3.EXPERIMENT_SEEDS ** 0.5
    assert hw3.EXPERIMENT_GAIN == pytest.approx((mean - 3 * error, mean + 3 * error), abs=0.001)
