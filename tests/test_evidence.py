"""The evidence suite: the interval helper against SciPy, the table, and a fast run of every claim.

For each claim, a fast version (fewer images, steps and seeds; the same code path) must
give a well-formed table, and wherever the committed full run found a significant effect
(non-overlapping 95% intervals), the fast run's difference must point the same way, within
a tolerance of twice the full run's spread over seeds (the larger sample standard deviation
of the two sides). Effects the full run did not find are not asserted.
"""

import json
import math

import numpy as np
import pytest
import scipy.stats
import torch
import torchvision

from course_lib.evidence import CLAIM_MODULES, claim_module, detection, first_filters, lecture
from course_lib.evidence.stats import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    Interval,
    mean_interval,
    t_quantile,
    verdict,
)
from course_lib.evidence.table import EvidenceTable, Record, load_result, run_table
from course_lib.evidence.verdicts import Comparison, judge, overall

FAST_SEEDS = (0, 1)
TOLERANCE_SPREADS = 2.0
# Fast runs that took about 10 s or more on the shared 2-core CPU (one torch thread; tta 12-18 s and
# razavian 10 s in `make test-fast` on 2026-11-30).
SLOW_CLAIMS = {"tsne_codes", "optimizers", "augmentation", "first_filters", "detection", "tta", "razavian"}


# ---------------------------------------------------------------------------------------
# The interval helper, against SciPy
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dof", [1, 2, 4, 9, 29, 100])
@pytest.mark.parametrize("q", [0.9, 0.975, 0.995])
def test_t_quantile_matches_scipy(q, dof):
    assert t_quantile(q, dof) == pytest.approx(scipy.stats.t.ppf(q, dof), rel=1e-8)


@pytest.mark.parametrize("n", [2, 3, 5, 12])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_mean_interval_matches_scipy_t_interval(n, confidence):
    values = np.random.default_rng(n).normal(0.8, 0.05, size=n)
    low, high = scipy.stats.t.interval(confidence, n - 1, loc=values.mean(), scale=scipy.stats.sem(values))
    ci = mean_interval(values, confidence)
    assert (ci.mean, ci.low, ci.high, ci.n) == pytest.approx((values.mean(), low, high, n), rel=1e-9)
    assert ci.half_width == pytest.approx((high - low) / 2)


def test_mean_interval_of_one_value_is_the_point_and_of_none_is_an_error():
    assert mean_interval([0.7]) == Interval(0.7, 0.7, 0.7, 1)
    with pytest.raises(ValueError, match="at least one value"):
        mean_interval([])
    with pytest.raises(ValueError, match="confidence"):
        mean_interval([1.0, 2.0], confidence=95)


def test_t_quantile_rejects_lower_quantiles_and_zero_dof():
    with pytest.raises(ValueError, match="upper quantile"):
        t_quantile(0.3, 4)
    with pytest.raises(ValueError, match="dof"):
        t_quantile(0.975, 0)


def test_verdict_is_decided_by_interval_overlap():
    high, low, overlapping = Interval(0.9, 0.88, 0.92, 5), Interval(0.8, 0.78, 0.82, 5), Interval(0.87, 0.8, 0.9, 5)
    assert verdict(high, low) == HOLDS
    assert verdict(low, high) == FAILS
    assert verdict(high, overlapping) == INCONCLUSIVE


# ---------------------------------------------------------------------------------------
# The table and comparisons
# ---------------------------------------------------------------------------------------


def small_table() -> EvidenceTable:
    def one_seed(seed):
        return [Record("a", seed, "accuracy", 0.9 + 0.01 * seed), Record("b", seed, "accuracy", 0.5 + 0.02 * seed)]
    return run_table("toy", [2, 0, 1], one_seed, {"size": 3})


def test_run_table_gathers_tidy_records_with_the_setup():
    table = small_table()
    assert len(table.records) == 6
    assert all(isinstance(r, Record) for r in table.records)
    assert table.conditions() == ["a", "b"] and table.metrics() == ["accuracy"] and table.seeds() == [0, 1, 2]
    assert table.values("a", "accuracy") == pytest.approx([0.9, 0.91, 0.92])  # in seed order
    assert table.setup["size"] == 3 and table.setup["seeds"] == [2, 0, 1]
    summary = table.summary()
    cells = [(row["condition"], row["metric"], row["n"]) for row in summary]
    assert cells == [("a", "accuracy", 3), ("b", "accuracy", 3)]
    assert set(summary[0]) == {"condition", "metric", "mean", "low", "high", "n"}


def test_table_round_trips_through_json_and_names_missing_cells(tmp_path):
    table = small_table()
    path = table.save(tmp_path)
    assert path.name == "toy.json" and json.loads(path.read_text())["claim"] == "toy"
    again = load_result("toy", tmp_path)
    assert again.records == table.records and again.setup == table.setup
    with pytest.raises(KeyError, match="conditions: \\['a', 'b'\\]"):
        table.values("c", "accuracy")
    with pytest.raises(FileNotFoundError, match="--only nothing"):
        load_result("nothing", tmp_path)


def test_comparisons_against_cells_and_fixed_margins():
    table = small_table()
    judged = judge(table, [Comparison("a above b", ("a", "accuracy"), ("b", "accuracy")),
                           Comparison("b below 0.55", 0.55, ("b", "accuracy")),
                           Comparison("a above 0.91", ("a", "accuracy"), 0.91)])
    assert [j.verdict for j in judged] == [HOLDS, INCONCLUSIVE, INCONCLUSIVE]
    assert overall(judged[:1]) == HOLDS
    assert judged[0].comparison.difference(table) == pytest.approx(0.91 - 0.52)
    assert judged[0].comparison.spread(table) == pytest.approx(0.02)


def test_run_table_needs_seeds():
    with pytest.raises(ValueError, match="seeds is empty"):
        run_table("toy", [], lambda seed: [], {})


# ---------------------------------------------------------------------------------------
# Every claim: a fast run, its shape, and the direction the full run found
# ---------------------------------------------------------------------------------------


def claim_params():
    return [pytest.param(name, marks=pytest.mark.slow) if name in SLOW_CLAIMS else name for name in CLAIM_MODULES]


@pytest.fixture(scope="module")
def fast_tables():
    """Fast tables shared by a claim's two tests, computed on one torch thread (tiny models:
    one thread is fastest, and many times faster on a CPU shared with other work)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield {}
    torch.set_num_threads(threads)


def fast_table(name, cache):
    if name not in cache:
        cache[name] = claim_module(name).run(seeds=FAST_SEEDS, fast=True)
    return cache[name]


@pytest.mark.parametrize("name", claim_params())
def test_fast_run_gives_a_full_tidy_table(name, fast_tables):
    module = claim_module(name)
    table = fast_table(name, fast_tables)
    assert table.claim == name and table.setup["fast"] is True
    assert table.seeds() == list(FAST_SEEDS)
    for condition in table.conditions():  # every (condition, metric) cell has one value per seed or none
        for metric in table.metrics():
            count = sum(r.condition == condition and r.metric == metric for r in table.records)
            assert count in (0, len(FAST_SEEDS)), (condition, metric, count)
    assert all(math.isfinite(r.value) for r in table.records)
    for metric in module.table_metrics(table):
        assert metric in table.metrics()
    assert module.comparisons(table), "a claim must make at least one comparison"
    module.plot(table)


@pytest.mark.parametrize("name", claim_params())
def test_fast_run_points_the_way_the_full_run_found(name, fast_tables):
    module = claim_module(name)
    full = load_result(name)
    assert len(full.seeds()) >= 5 and not full.setup["fast"], "the committed result must be a full run of >= 5 seeds"
    found = {j.comparison.text: j for j in judge(full, module.comparisons(full))}
    table = fast_table(name, fast_tables)
    checked = 0
    for comparison in module.comparisons(table):
        full_judged = found.get(comparison.text)
        if full_judged is None or full_judged.verdict not in (HOLDS, FAILS):
            continue
        sign = 1.0 if full_judged.verdict == HOLDS else -1.0
        tolerance = TOLERANCE_SPREADS * full_judged.comparison.spread(full)
        difference = comparison.difference(table)
        assert sign * difference > -tolerance, (
            f"{name}: '{comparison.text}' {full_judged.verdict} in the full run "
            f"({full_judged.higher_text} vs {full_judged.lower_text}) but the fast run's difference is "
            f"{difference:+.4f} (tolerance {tolerance:.4f})")
        checked += 1
    if not any(j.verdict in (HOLDS, FAILS) for j in found.values()):
        pytest.skip(f"the full run of {name} found no significant effect; nothing to assert")
    assert checked, f"none of the full run's significant comparisons of {name} exists in the fast run"


# ---------------------------------------------------------------------------------------
# The lecture helper: the full run agrees with itself, a reversed run disagrees
# ---------------------------------------------------------------------------------------


def reversed_table(table: EvidenceTable) -> EvidenceTable:
    """Every value negated: every difference between two cells flips its sign."""
    return EvidenceTable(table.claim, [Record(r.condition, r.seed, r.metric, -r.value) for r in table.records],
                         dict(table.setup), table.seconds)


@pytest.mark.parametrize("name", CLAIM_MODULES)
def test_the_full_run_agrees_with_itself_in_the_lecture_words(name):
    full = load_result(name)
    found = lecture.agreements(name, full, full)
    decided = [a for a in found if a.agrees is not None]
    assert all(a.agrees for a in decided), [a.words() for a in decided]
    verdicts = [j.verdict for j in judge(full, claim_module(name).comparisons(full))]
    assert len(decided) == sum(v in (HOLDS, FAILS) for v in verdicts)
    assert lecture.full_verdict(name, full) == overall(judge(full, claim_module(name).comparisons(full)))


def test_a_reversed_live_run_disagrees_with_every_decided_comparison():
    full = load_result("batchnorm")
    found = lecture.agreements("batchnorm", reversed_table(full), full)
    decided = [a for a in found if a.agrees is not None]
    assert decided and not any(a.agrees for a in decided)
    assert all("DISAGREES" in a.words() for a in decided)
    assert lecture.agreement_summary(found).startswith("The live run disagrees with the full run: on 0 of the")
    assert "partly disagrees" in lecture.agreement_summary(found + [lecture.Agreement("z", HOLDS, 0.1, True)])


def test_agreement_words_for_missing_and_undecided_comparisons():
    missing = lecture.Agreement("x above y", HOLDS, None, None)
    undecided = lecture.Agreement("x above y", INCONCLUSIVE, 0.01, None)
    assert "not measured in the live run" in missing.words()
    assert "nothing to agree with" in undecided.words()
    assert "decided none" in lecture.agreement_summary([missing, undecided])


def test_report_has_the_claim_both_tables_and_the_computed_verdict():
    full = load_result("filter_stack")
    live = EvidenceTable("filter_stack", [r for r in full.records if r.seed == 0], dict(full.setup), 1.0)
    text = lecture.report_markdown("filter_stack", live)
    assert claim_module("filter_stack").CLAIM in text
    assert text.count("| condition | metric |") == 2
    words = lecture.verdict_text("filter_stack", live)
    assert f"full-run verdict: {lecture.full_verdict('filter_stack')}" in words
    assert lecture.agreement_summary(lecture.agreements("filter_stack", live)) in words


def test_torch_threads_restores_the_count():
    before = torch.get_num_threads()
    with lecture.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


# ---------------------------------------------------------------------------------------
# First-layer filters: the roughness measure against known filters
# ---------------------------------------------------------------------------------------


def test_roughness_is_one_for_noise_and_near_zero_for_smooth_filters():
    noise = torch.randn(2000, 1, 7, 7, generator=torch.Generator().manual_seed(0))
    assert first_filters.roughness(noise) == pytest.approx(1.0, abs=0.03)
    ramp = torch.linspace(-1, 1, 7)
    smooth = (ramp[:, None] + 0.5 * ramp[None, :]).expand(3, 1, 7, 7)   # planes: neighbours differ little
    assert first_filters.roughness(smooth) < 0.1
    checker = (torch.arange(7)[:, None] + torch.arange(7)[None, :]) % 2 * 2.0 - 1   # +-1 alternating: roughest
    assert first_filters.roughness(checker.expand(1, 1, 7, 7).float()) == pytest.approx(2.0, rel=0.05)


def test_run_with_filters_returns_the_table_and_one_weight_per_step_count():
    table, weights = first_filters.run_with_filters(seeds=(0,), fast=True)
    found = weights[0]
    assert [r.value for r in table.records if r.metric == "roughness"] == pytest.approx(
        [first_filters.roughness(found[n]) for n in first_filters.FAST.steps])
    first_filters.plot_filters(found)
    assert sorted(found) == sorted(first_filters.FAST.steps)
    shape = (first_filters.FILTERS, 1, first_filters.KERNEL, first_filters.KERNEL)
    assert all(w.shape == shape for w in found.values())
    assert not torch.equal(found[0], found[max(found)])


# ---------------------------------------------------------------------------------------
# Detection aside: windows against F.unfold, scenes, matching by IoU
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("stride", [2, 7, 14])
def test_windows_match_unfold_and_their_boxes(stride):
    scene = torch.rand(1, detection.SCENE, detection.SCENE, generator=torch.Generator().manual_seed(stride))
    patches, boxes = detection.windows(scene, stride)
    oracle = torch.nn.functional.unfold(scene[None], detection.WINDOW, stride=stride)[0].T   # (n, 28 * 28)
    assert torch.equal(patches.flatten(1), oracle)
    for patch, (x1, y1, x2, y2) in list(zip(patches, boxes.int().tolist()))[:: max(1, len(boxes) // 7)]:
        assert torch.equal(patch, scene[:, y1:y2, x1:x2])


def test_make_scene_pastes_digits_without_overlap():
    digits = torch.rand(detection.DIGITS, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    scene, boxes = detection.make_scene(digits, torch.Generator().manual_seed(1))
    assert scene.shape == (1, detection.SCENE, detection.SCENE) and boxes.shape == (detection.DIGITS, 4)
    iou = torchvision.ops.box_iou(boxes, boxes)
    assert torch.equal(iou, torch.eye(detection.DIGITS))
    for digit, (x1, y1, x2, y2) in zip(digits, boxes.int().tolist()):
        assert torch.equal(scene[:, y1:y2, x1:x2], digit)
    assert scene.sum() == pytest.approx(digits.sum().item(), rel=1e-5)   # nothing else on the canvas


def test_match_counts_same_class_detections_with_enough_overlap_once():
    truth = torch.tensor([[0.0, 0, 28, 28], [50, 50, 78, 78]])
    labels = torch.tensor([3, 7])
    shifted = torch.tensor([[14.0, 0, 42, 28]])                    # IoU 1/3 with the first truth box
    assert detection.match(truth, labels, truth, labels) == 2
    assert detection.match(truth, labels.flip(0), truth, labels) == 0      # right places, wrong classes
    assert detection.match(shifted, torch.tensor([3]), truth, labels) == 0
    assert detection.match(torch.cat([truth[:1], truth[:1]]), torch.tensor([3, 3]), truth, labels) == 1
    assert detection.match(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), truth, labels) == 0
