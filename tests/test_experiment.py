"""The transfer experiment: fast runs on both targets, parameter counts against hand counts,
determinism, bad input. About 40 s on a 2-core CPU (the fast run of both targets is shared)."""

import io

import numpy as np
import pytest
import torch

from course_lib import experiment as ex
from course_lib.models import pretrained_backbone
from course_lib.transfer import trainable_parameters

D = 64 * 3 * 3  # the backbone's feature_dim: 64 channels x 3 x 3 after three pools of 28x28
CONVS = [(1, 16), (16, 32), (32, 64)]  # (c_in, c_out) of the three 3x3 convs (no bias: batch norm)


def expected_trainable(method: str, k: int) -> int:
    """Trainable parameters counted by hand from the architecture (the oracle)."""
    head = D * k + k
    conv = [9 * c_in * c_out for c_in, c_out in CONVS]
    bn = [2 * c_out for _, c_out in CONVS]  # BatchNorm weight + bias
    if method in ("scratch", "finetune_all"):
        return sum(conv) + sum(bn) + head
    if method == "finetune_last":
        return conv[-1] + bn[-1] + head
    if method == "linear_probe":
        return head
    r = ex.LORA_RANK
    return sum(r * 9 * c_in + c_out * r for c_in, c_out in CONVS) + head  # A (r, c_in, 3, 3) + B (c_out, r, 1, 1)


@pytest.fixture(scope="module")
def fast_tables():
    """One COURSE_FAST=1 run of each target with every default (shared by the tests below)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_FAST", "1")
        mp.setenv("COURSE_DEVICE", "cpu")
        return {target: ex.transfer_experiment(target, num_threads=1) for target in ex.TARGETS}


@pytest.mark.slow  # uses the shared fast run of every target (30-36 s on 2 cores)
@pytest.mark.parametrize("target", list(ex.TARGETS))
def test_fast_run_has_every_row(fast_tables, target):
    table = fast_tables[target]
    assert table.fast and table.seeds == (0,)
    assert table.test_size == ex.FAST_TEST_PER_CLASS * len(table.classes)
    assert [(r.method, r.labels_per_class) for r in table.rows] == [
        (m, n) for m in ex.METHODS for n in ex.LABELS_PER_CLASS
    ]
    for row in table.rows:
        assert len(row.accuracies) == 1 and 0.0 <= row.accuracy_mean <= 1.0, row
        assert row.accuracy_std == 0.0 and row.accuracy_min == row.accuracy_max == row.accuracy_mean
        assert row.seconds > 0
        k = len(table.classes)
        expected_size = sum(table.pool_per_class.values()) if row.labels_per_class is None else row.labels_per_class * k
        assert row.train_size == expected_size


@pytest.mark.slow  # uses the shared fast run of every target (30-36 s on 2 cores)
@pytest.mark.parametrize("target", list(ex.TARGETS))
def test_trainable_parameters_match_models_and_hand_counts(fast_tables, target):
    table = fast_tables[target]
    k = len(table.classes)
    backbone = pretrained_backbone()
    counts = {}
    for method in ex.METHODS:
        model_count = trainable_parameters(ex.build_model(method, backbone, k))
        assert model_count == expected_trainable(method, k), method
        for n in ex.LABELS_PER_CLASS:
            assert table.row(method, n).trainable_parameters == model_count, (method, n)
        counts[method] = model_count
    assert counts["linear_probe"] < counts["lora"] < counts["finetune_last"] < counts["finetune_all"]
    assert counts["scratch"] == counts["finetune_all"]


@pytest.mark.slow  # uses the shared fast run of every target (30-36 s on 2 cores)
def test_plot_draws_one_line_and_band_per_method(fast_tables):
    table = fast_tables["different"]
    fig = ex.plot_transfer(table)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    # the fast "different" run has scratch at chance, so the chance line is in range
    assert labels == [m.replace("_", " ") for m in ex.METHODS] + ["chance"]
    low, high = ax.get_ylim()
    assert low <= min(r.accuracy_min for r in table.rows) and high >= 1.0
    assert len(ax.collections) == len(ex.METHODS)  # the min-max bands
    assert [t.get_text() for t in ax.get_xticklabels()][:3] == ["5", "10", "50"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(),
                               [table.row("scratch", n).accuracy_mean for n in ex.LABELS_PER_CLASS])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")  # headless: no pyplot, no display
    assert buffer.getvalue()[:4] == b"\x89PNG"


@pytest.mark.slow  # uses the shared fast run of every target (30-36 s on 2 cores)
def test_markdown_has_a_line_per_row(fast_tables):
    table = fast_tables["similar"]
    text = ex.to_markdown(table)
    assert len(text.splitlines()) == 2 + len(table.rows)
    assert "| linear_probe | all |" in text


@pytest.mark.slow  # uses the shared fast run of every target (30-36 s on 2 cores)
def test_same_seed_gives_the_same_accuracies(fast_tables, monkeypatch):
    # 50 labels per class: several batches per epoch, so the seeded batch order matters too
    # (with 5 labels every batch is the whole set and a wrong batch-order seed would go unseen).
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    methods, labels = ("scratch", "finetune_all", "lora"), (5, 50)
    run = lambda seeds: ex.transfer_experiment("similar", labels_per_class=labels, methods=methods,  # noqa: E731
                                               seeds=seeds, fast=True, num_threads=1)
    first, second, other = run((0,)), run((0,)), run((1,))
    accuracies = lambda table: [table.row(m, n).accuracies for m in methods for n in labels]  # noqa: E731
    assert accuracies(first) == accuracies(second)
    # a sub-experiment reproduces the matching rows of the full fast run
    assert accuracies(first) == [fast_tables["similar"].row(m, n).accuracies for m in methods for n in labels]
    assert accuracies(other) != accuracies(first)  # the seed does reach the runs


def test_another_seed_draws_other_examples():
    data = ex.load_target("different")
    subsets = [ex.course_data.small_subset(data.pool, 5, seed) for seed in (0, 1)]
    assert not torch.equal(subsets[0].images, subsets[1].images)


def test_fast_mode_keeps_the_pool_and_shrinks_the_test_set():
    full, fast = ex.load_target("similar"), ex.load_target("similar", test_per_class=ex.FAST_TEST_PER_CLASS)
    assert torch.equal(full.pool.images, fast.pool.images)
    assert torch.bincount(full.test.targets).tolist() == [200] * 5
    assert torch.bincount(fast.test.targets).tolist() == [ex.FAST_TEST_PER_CLASS] * 5
    # fast test images are a subset of the full test images, and no test image is in the pool
    flat = lambda ds: {bytes(img.numpy().tobytes()) for img in ds.images}  # noqa: E731
    assert flat(fast.test) <= flat(full.test)
    pool_idx, test_idx = ex.holdout_indices(ex.TARGETS["similar"].load().targets, 200)
    assert not set(pool_idx) & set(test_idx)
    assert len(pool_idx) + len(test_idx) == 4861


def test_lora_and_probe_models_start_equal_and_frozen_batch_norm_stays_fixed():
    backbone = pretrained_backbone()
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    probe, lora = (ex.build_model(m, backbone, 3, seed=4).eval() for m in ("linear_probe", "lora"))
    torch.testing.assert_close(lora(x), probe(x))  # B = 0 and the same seed gives the same new head
    model = ex.build_model("finetune_last", backbone, 3).train()
    frozen_bn, trained_bn = model.features[0][1], model.features[2][1]
    before = frozen_bn.running_mean.clone(), trained_bn.running_mean.clone()
    model(x)
    assert torch.equal(frozen_bn.running_mean, before[0])
    assert not torch.equal(trained_bn.running_mean, before[1])
    assert torch.equal(backbone.head[-1].weight, pretrained_backbone().head[-1].weight)  # backbone untouched


def test_epochs_reach_min_steps():
    assert ex.epochs_for(25, epochs=3, min_steps=150) == 150  # one batch per epoch
    assert ex.epochs_for(250, epochs=3, min_steps=150) == 19  # 8 batches per epoch
    assert ex.epochs_for(3861, epochs=3, min_steps=150) == 3  # 121 batches per epoch


def test_unknown_target_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown target 'cifar'.*similar, different"):
        ex.transfer_experiment("cifar", fast=True)


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"\['prompting'\].*scratch, linear_probe, finetune_last, finetune_all, lora"):
        ex.transfer_experiment("different", methods=("lora", "prompting"), fast=True)


@pytest.mark.parametrize("bad", [225, 0, -5, 2.5, True])
def test_bad_labels_per_class_says_what_is_allowed(bad):
    match = "at most 224" if bad == 225 else "positive ints or None"
    with pytest.raises(ValueError, match=match):
        ex.transfer_experiment("different", labels_per_class=(5, bad), fast=True)


def test_empty_seeds_is_an_error():
    with pytest.raises(ValueError, match="seeds is empty"):
        ex.transfer_experiment("different", seeds=(), fast=True)


@pytest.mark.slow
def test_full_mode_five_labels_similar_probe_beats_scratch(monkeypatch):
    # The lecture's first claim, in full mode (fast mode undertrains scratch, so it proves nothing there).
    # Measured (docs/transfer.md): probe 0.907, scratch 0.850 mean accuracy over seeds 0, 1, 2. About 10 s.
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    table = ex.transfer_experiment("similar", labels_per_class=(5,), methods=("scratch", "linear_probe"),
                                   fast=False, num_threads=1)
    assert table.seeds == ex.SEEDS
    assert table.row("linear_probe", 5).accuracy_mean > table.row("scratch", 5).accuracy_mean + 0.03


# --- The "when to transfer" verdict, on hand-made tables -------------------------------------

PARAMS = {"scratch": 26_293, "linear_probe": 2_885, "finetune_last": 21_445, "finetune_all": 26_293, "lora": 5_097}


def hand_table(target: str, means: dict, spread: float = 0.0, test_size: int = 1000) -> ex.TransferTable:
    """A TransferTable from hand-made numbers: means[labels_per_class][method] -> mean accuracy of
    three seeds (mean - spread, mean, mean + spread), so each row's seed std is `spread`."""
    labels = tuple(means)
    methods = tuple(means[labels[0]])
    rows = [ex.TransferRow(m, n, 5 * (n or 100), (means[n][m] - spread, means[n][m], means[n][m] + spread),
                           PARAMS[m], 1.0) for m in methods for n in labels]
    return ex.TransferTable(target, ex.TARGETS[target].description, ["a", "b"], rows, (0, 1, 2), labels, methods,
                            3, 150, {"a": 500, "b": 500}, test_size, False, "cpu", 1, 10.0)


def means_at(probe, lora, last, full, scratch) -> dict:
    return {"linear_probe": probe, "lora": lora, "finetune_last": last, "finetune_all": full, "scratch": scratch}


def verdict_of(row: dict, **kwargs) -> ex.TransferVerdict:
    """The 'small' cell of a "similar" table whose smallest label count has the means `row`."""
    table = hand_table("similar", {5: row, None: means_at(0.99, 0.99, 0.99, 0.99, 0.99)}, **kwargs)
    return ex.when_to_transfer([table])[0]


@pytest.mark.parametrize("row,expected", [
    (means_at(0.90, 0.91, 0.905, 0.91, 0.85), "linear_probe"),  # probe within 2 SE (0.018) of the best
    (means_at(0.80, 0.95, 0.95, 0.95, 0.95), "lora"),
    (means_at(0.80, 0.80, 0.95, 0.95, 0.95), "finetune_last"),
    (means_at(0.80, 0.80, 0.80, 0.95, 0.95), "finetune_all"),  # tied with scratch, which costs more
    (means_at(0.80, 0.80, 0.80, 0.90, 0.98), "scratch"),
])
def test_verdict_is_the_cheapest_method_within_noise_of_the_best(row, expected):
    verdict = verdict_of(row)
    assert verdict.method == expected and verdict.advice == ex.METHOD_ADVICE[expected]
    best = max(row.values())
    assert {r.method for r in verdict.tied} == {m for m, v in row.items() if best - v <= 0.0185}
    assert verdict.gain == pytest.approx(max(v for m, v in row.items() if m != "scratch") - row["scratch"])


def test_a_tie_is_two_binomial_standard_errors_of_the_best_at_most():
    # best 0.90 on 900 test images: 2 * sqrt(0.9 * 0.1 / 900) = 0.020 exactly
    assert verdict_of(means_at(0.880, 0.90, 0.90, 0.90, 0.80), test_size=900).method == "linear_probe"
    assert verdict_of(means_at(0.879, 0.90, 0.90, 0.90, 0.80), test_size=900).method == "lora"
    # more test images, smaller standard error: the same gap is no longer a tie
    assert verdict_of(means_at(0.880, 0.90, 0.90, 0.90, 0.80), test_size=10_000).method == "lora"


def test_seed_spread_widens_the_tie():
    gap = means_at(0.85, 0.90, 0.90, 0.90, 0.80)  # 0.05 apart: more than 2 SE (0.019)
    assert verdict_of(gap).method == "lora"
    assert verdict_of(gap, spread=0.06).method == "linear_probe"  # seed std 0.06 > the gap


def test_tied_and_below_are_sorted_best_first_and_split_the_methods():
    verdict = verdict_of(means_at(0.90, 0.91, 0.80, 0.905, 0.85))
    assert [r.method for r in verdict.tied] == ["lora", "finetune_all", "linear_probe"]
    assert [r.method for r in verdict.below] == ["scratch", "finetune_last"]
    assert verdict.pick.method == "linear_probe" and verdict.pick.trainable_parameters == PARAMS["linear_probe"]


def test_rows_read_the_smallest_and_the_largest_label_count():
    row = means_at(0.9, 0.9, 0.9, 0.9, 0.9)
    table = hand_table("different", {50: row, 5: row, 10: row})
    assert [(v.size, v.labels_per_class) for v in ex.when_to_transfer([table])] == [("small", 5), ("large", 50)]
    table = hand_table("different", {5: row, None: row, 10: row})  # None = all labels, the largest
    assert [v.labels_per_class for v in ex.when_to_transfer([table])] == [5, None]


def test_slide_cells_are_the_slides_own_and_na_stays_na():
    similar = hand_table("similar", {5: means_at(0.90, 0.91, 0.91, 0.91, 0.85), None: means_at(*[0.99] * 5)})
    different = hand_table("different", {5: means_at(0.65, 0.78, 0.70, 0.78, 0.78),
                                         None: means_at(0.90, 0.93, 0.93, 0.97, 0.98)})
    verdicts = ex.when_to_transfer([similar, different])
    assert [(v.size, v.target) for v in verdicts] == [
        ("small", "similar"), ("small", "different"), ("large", "similar"), ("large", "different")]
    assert [v.slide for v in verdicts] == [ex.SLIDE_CELLS[(v.size, v.target)] for v in verdicts]
    assert verdicts[1].slide == ex.SLIDE_NA == "NA" and verdicts[1].method == "lora"  # measured, next to NA
    text = ex.when_to_transfer_markdown(verdicts)
    lines = text.splitlines()
    assert len(lines) == 6 and lines[0].count("|") == 4
    assert lines[2].startswith("| very little data (5 labels / class): measured |")
    assert "**LoRA adapters on every conv + new head** (5,097 trainable)" in lines[2]
    assert lines[3] == (
        "| *the slides say* | *use a linear classifier on the top layer* | *NA* (the slides leave this cell empty) |"
    )
    assert lines[4].startswith("| quite a lot of data (all labels): measured |")
    assert "**train from scratch**" in lines[4]


@pytest.mark.parametrize("change,message", [
    (dict(methods=("linear_probe", "lora")), "with 'scratch'"),
    (dict(labels=(5,)), "at least two labels_per_class"),
    (dict(target="faces"), "the slides' columns are similar, different"),
])
def test_verdict_refuses_tables_it_cannot_read(change, message):
    labels = change.get("labels", (5, None))
    methods = change.get("methods", tuple(PARAMS))
    table = hand_table("similar", {n: {m: 0.9 for m in methods} for n in labels})
    table.target = change.get("target", table.target)
    with pytest.raises(ValueError, match=message):
        ex.when_to_transfer([table])


@pytest.mark.slow  # uses the shared fast run of every target (30-36 s on 2 cores)
def test_verdict_reads_a_real_fast_run(fast_tables):
    verdicts = ex.when_to_transfer([fast_tables["similar"], fast_tables["different"]])
    assert len(verdicts) == 4 and verdicts[1].slide == "NA"
    for verdict in verdicts:
        assert min(r.accuracy_mean for r in verdict.tied) >= max((r.accuracy_mean for r in verdict.below), default=0)
        assert verdict.method in {r.method for r in verdict.tied}


def test_table_survives_a_json_round_trip():
    import json

    table = hand_table("similar", {5: means_at(0.9, 0.91, 0.9, 0.92, 0.85), None: means_at(*[0.99] * 5)})
    again = ex.TransferTable.from_dict(json.loads(json.dumps(table.as_dict())))
    assert again == table and again.labels_per_class == (5, None) and again.row("lora", 5).accuracies == (0.91,) * 3


def _transfer_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "run_transfer_experiment.py"
    spec = importlib.util.spec_from_file_location("run_transfer_experiment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_transfer_md_is_what_the_script_renders_from_its_results(tmp_path):
    """docs/transfer.md (and its when-to-transfer table) comes from the committed record,
    course_lib/assets/transfer/transfer_results.json, through the library; the plots go next to the record."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assets = tmp_path / "course_lib" / "assets" / "transfer"   # the repository's layout: the links are relative
    assets.mkdir(parents=True)
    shutil.copy(root / "course_lib" / "assets" / "transfer" / "transfer_results.json", assets)
    assert _transfer_script().main(["--render", "--out", str(tmp_path / "docs"), "--assets", str(assets)]) == 0
    rendered = (tmp_path / "docs" / "transfer.md").read_text()
    assert rendered == (root / "docs" / "transfer.md").read_text()
    slides_row = (
        "| *the slides say* | *use a linear classifier on the top layer* | *NA* (the slides leave this cell empty) |"
    )
    assert slides_row in rendered
    assert "![similar](../course_lib/assets/transfer/transfer_similar.png)" in rendered
    assert sorted(p.name for p in assets.iterdir()) == ["transfer_different.png", "transfer_results.json",
                                                        "transfer_similar.png"]
