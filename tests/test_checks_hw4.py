"""hw4's checkers on their own: a correct answer passes on every seed, a wrong one fails with a
message that names the case and the size of the error, and no message or hint gives away the
reference's formula or arguments."""

import re

import pytest
import torch
from homework_zoo import ROOT

from course_lib import visualize
from course_lib.autograde.similarity import assignment_questions
from course_lib.grading import CheckFailure, ForbiddenCallError
from course_lib.grading.checks import hw4_visualize as checks

# What the old questions and messages printed: recurrences, captum's position count, TSNE's arguments.
GIVEAWAYS = re.compile(r"ceil|jump \*=|r \+=|\(k - 1\)|\(kernel - 1\)|init=|max_iter|learning_rate|perplexity=|"
                       r"fill_diagonal|/ count|sum\(|\.eval\(\)")


def occlusion(model, image, target, window, stride, baseline=0.0):
    """A plain-loop occlusion map (the solution's), with `score` swappable for the mutants below."""
    model.eval()
    _, height, width = image.shape
    total, count = torch.zeros_like(image), torch.zeros_like(image)
    with torch.no_grad():
        reference = model(image[None])[0, target]
        for top in range(0, max(height - window[0], 0) + stride[0], stride[0]):
            for left in range(0, max(width - window[1], 0) + stride[1], stride[1]):
                box = (slice(None), slice(top, top + window[0]), slice(left, left + window[1]))
                hidden = image.clone()
                hidden[box] = baseline
                total[box] += reference - model(hidden[None])[0, target]
                count[box] += 1
    return total / count


def box(layers, position, input_size):
    out = []
    for index, extent in zip(position, input_size):
        first, last = index, index
        for kernel, stride, padding in reversed(layers):
            first, last = first * stride - padding, last * stride - padding + kernel - 1
        out.append((max(first, 0), min(last + 1, extent)))
    return tuple(out)


@pytest.mark.parametrize("seed", [0, 1, 12])
def test_correct_answers_pass_on_every_seed(seed):
    checks.check_occlusion_map(occlusion, seed)
    checks.check_receptive_box(box, seed)
    checks.check_knn_accuracy(lambda p, y, k: visualize.knn_accuracy(p.double(), y, k), seed)


def test_the_seed_changes_the_cases_not_just_their_order():
    import random
    assert checks._occlusion_cases(random.Random(0)) != checks._occlusion_cases(random.Random(12))
    assert checks._layers_case(random.Random(0)) != checks._layers_case(random.Random(21))


def _failure(check, answer, seed=0):
    with pytest.raises(CheckFailure) as error:
        check(answer, seed)
    return str(error.value)


def test_a_wrong_occlusion_map_fails_naming_the_case_and_the_error():
    def doubled(model, image, target, window, stride, baseline=0.0):
        return 2 * occlusion(model, image, target, window, stride, baseline)
    message = _failure(checks.check_occlusion_map, doubled)
    assert re.search(r"case image \(\d+, \d+, \d+\) float\d+, target \d+, window \(\d+, \d+\), stride", message)
    assert "differs from the reference by up to" in message and not GIVEAWAYS.search(message), message


def test_occlusion_may_not_call_the_reference():
    with pytest.raises(ForbiddenCallError, match="visualize.occlusion"):
        checks.check_occlusion_map(lambda m, x, t, w, s, b: visualize.occlusion_map(m, x, t, w, s, b))


def test_a_box_that_ignores_padding_fails_with_its_offset():
    def no_padding(layers, position, input_size):
        return box([(k, s, 0) for k, s, _ in layers], position, input_size)
    message = _failure(checks.check_receptive_box, no_padding)
    assert re.search(r"case layers \[.*\] as \(kernel, stride, padding\), unit \(\d+, \d+\), input", message)
    assert "off by" in message and not GIVEAWAYS.search(message), message


def test_knn_that_counts_the_point_itself_fails_with_the_number_of_points():
    def with_itself(points, labels, k):
        distances = torch.cdist(points.double(), points.double())
        nearest = distances.topk(k, largest=False).indices
        votes = torch.nn.functional.one_hot(labels[nearest], int(labels.max()) + 1).sum(1)
        return (votes.argmax(1) == labels).double().mean().item()
    message = _failure(checks.check_knn_accuracy, with_itself)
    assert re.search(r"case \d+ points in \d-D \(float\d+\), \d classes, k=\d: your accuracy is 0\.\d{4}, \d+ of \d+",
                     message)
    assert not GIVEAWAYS.search(message), message


def test_every_question_has_a_hint_without_code():
    notebook = ROOT / "solutions" / "hw4_visualize" / "hw4_visualize.ipynb"
    graded = {q.qid.split(".")[1] for q in assignment_questions(notebook)}
    assert graded <= set(checks.HINTS), f"questions without a hint: {sorted(graded - set(checks.HINTS))}"
    for question, text in checks.HINTS.items():
        assert not GIVEAWAYS.search(text) and "def " not in text and "=" not in text, (question, text)


def test_the_questions_ask_for_the_idea_not_the_formula():
    notebook = ROOT / "solutions" / "hw4_visualize" / "hw4_visualize.ipynb"
    for question in assignment_questions(notebook):
        assert not GIVEAWAYS.search(question.text), (question.qid, GIVEAWAYS.search(question.text).group())
        assert r"\lceil" not in question.text and "\\leftarrow" not in question.text, question.qid


def test_the_messages_of_the_tsne_check_name_no_arguments():
    message = _failure(checks.check_tsne_map, lambda features, seed: torch.zeros(len(features), 2))
    assert "trustworthiness" in message and not GIVEAWAYS.search(message), message
    with pytest.raises(ForbiddenCallError, match="tsne"):  # the library's t-SNE is the answer, configured
        checks.check_tsne_map(lambda features, seed: visualize.tsne(features.numpy(), seed=seed))


def test_a_synthesis_that_ignores_its_prior_fails_on_smoothness():
    def plain_ascent(model, channel, image_size, steps, lr, jitter, blur_sigma, seed):
        generator = torch.Generator().manual_seed(seed)
        dtype = next(model.parameters()).dtype
        x = (0.1 * torch.randn(image_size, generator=generator, dtype=dtype))[None].requires_grad_(True)
        optimizer = torch.optim.Adam([x], lr=lr)
        for _ in range(steps):
            optimizer.zero_grad()
            (-model(x)[0, channel].mean()).backward()
            optimizer.step()
            with torch.no_grad():
                x.clamp_(-1, 1)
        return x.detach()[0]
    message = _failure(checks.check_maximize_activation, plain_ascent)
    assert re.search(r"case image \(\d, \d+, \d+\) float\d+, channel \d, \d+ steps, lr [\d.]+, seed \d+: the prior "
                     r"should make the image smoother, but its total variation is [\d.e-]+ with jitter", message)
    assert not GIVEAWAYS.search(message), message


def test_patches_unravelled_by_the_height_fail_naming_the_units():
    def by_height(model, images, channel, k):
        with torch.no_grad():
            maps = model(images)[:, channel]
        best, where = maps.flatten(1).max(dim=1)
        order = best.argsort(descending=True)[:k]
        return [(int(i), divmod(int(where[i]), maps.shape[1]), float(best[i])) for i in order]
    message = _failure(checks.check_top_patches, by_height)
    assert re.search(r"case images \(\d+, \d, \d+, \d+\) float\d+, channel \d, k \d: the activations are right but "
                     r"the units \[\(\d+, \(\d+, \d+\)\)", message)
    with pytest.raises(ForbiddenCallError, match="top_activating_patches"):
        checks.check_top_patches(lambda m, x, c, k: visualize.top_activating_patches(m, x, str(len(m) - 1), c, k))


def test_an_experiment_that_measures_area_fails_with_its_size_and_the_tolerance():
    def area(occlusion, model, images, labels, window, stride, baseline):
        positive = torch.stack([occlusion(model, image, int(label), window, stride, baseline) > 0
                                for image, label in zip(images, labels)]).flatten(1)
        ink = (images >= 0.5).flatten(1)
        return ((positive & ink).sum(1) / positive.sum(1)).double()
    message = _failure(checks.check_occlusion_experiment, area)
    assert re.search(r"case digit model \(\d+, \d+\), \d+ held-out digits, window \(\d, \d\), stride \(\d, \d\), "
                     r"baseline [\d.]+: on average your maps put [\d.]+ times .* should give [\d.]+ \+- 0\.28", message)
    assert not GIVEAWAYS.search(message), message


def test_the_experiment_passes_the_reference_on_other_seeds():
    for seed in (1, 2):
        checks.check_occlusion_experiment(checks.reference_ink_share, seed)
