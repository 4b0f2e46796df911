"""scripts/gpu_check.sh: its quick mode runs end to end on the CPU (so the GPU check cannot rot
unseen), and its grade comparison catches every kind of difference from the CPU reference."""

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"
HELPER = ROOT / "scripts" / "gpu_check_helper.py"
REFERENCE = ROOT / "scripts" / "gpu_check_reference" / "cpu_scores.csv"
LINE = re.compile(r"^[A-Za-z0-9_.\-]+: .*$")


def helper(*args):
    return subprocess.run(
        [sys.executable, str(HELPER), *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def values(text: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in text.splitlines() if LINE.match(line))


def write_cells(path: Path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "assignment", "cell", "score"])
        writer.writerows(rows)
    return path


ROWS = [("ann", "hw1", "hw1/test_a", "2"), ("ann", "hw1", "hw1/test_b", "0"), ("bob", "hw1", "hw1/test_a", "1")]


def test_reference_covers_every_shipped_submission():
    with open(REFERENCE, newline="") as handle:
        graded = {(r["student"], r["assignment"]) for r in csv.DictReader(handle)}
    shipped = {(p.parent.parent.name, p.parent.name) for p in (ROOT / "examples" / "submissions").glob("*/*/*.ipynb")}
    assert graded == shipped


def test_compare_accepts_equal_scores_on_a_subset(tmp_path):
    reference = write_cells(tmp_path / "ref.csv", ROWS)
    got = write_cells(tmp_path / "got.csv", ROWS[:2])  # only ann graded: bob's rows are not expected
    result = helper("compare", reference, got)
    out = values(result.stdout)
    assert result.returncode == 0, result.stdout
    compared = (out["grades.cells_compared"], out["grades.cells_differing"], out["grades.match_cpu_reference"])
    assert compared == ("2", "0", "True")


@pytest.mark.parametrize("got_rows, expected_problem", [
    ([ROWS[0], ("ann", "hw1", "hw1/test_b", "1")], "reference 0, here 1"),   # a different score
    ([ROWS[0]], "missing here"),                                              # a cell lost
    (ROWS[:2] + [("ann", "hw1", "hw1/test_c", "1")], "not in the reference"),  # a cell the reference lacks
    ([], None),                                                               # nothing graded at all
])
def test_compare_fails_on_any_difference(tmp_path, got_rows, expected_problem):
    reference = write_cells(tmp_path / "ref.csv", ROWS)
    result = helper("compare", reference, write_cells(tmp_path / "got.csv", got_rows))
    assert result.returncode == 1
    assert values(result.stdout)["grades.match_cpu_reference"] == "False"
    if expected_problem:
        assert expected_problem in result.stdout


def test_cells_turns_the_export_into_one_row_per_test_cell(tmp_path):
    wide = tmp_path / "grades.csv"
    wide.write_text("student,assignment,score,max_score,percent,hw1:hw1/test_a,hw2:hw2/test_x\n"
                    "ann,hw1,2,3,66.7,2,\nann,hw2,1,1,100.0,,1\n")
    assert helper("cells", wide, tmp_path / "long.csv").returncode == 0
    with open(tmp_path / "long.csv", newline="") as handle:
        rows = [tuple(r.values()) for r in csv.DictReader(handle)]
    assert rows == [("ann", "hw1", "hw1/test_a", "2"), ("ann", "hw2", "hw2/test_x", "1")]


@pytest.mark.slow
def test_quick_mode_runs_end_to_end_on_the_cpu(tmp_path):
    env = dict(os.environ, COURSE_DEVICE="cpu", PYTHON=sys.executable)
    env.pop("OUT", None)
    result = subprocess.run(["bash", str(SCRIPT), "--quick", str(tmp_path)], env=env, capture_output=True,
                            text=True, timeout=1800, check=False)
    log = (tmp_path / "gpu_check.log").read_text() if (tmp_path / "gpu_check.log").exists() else ""
    assert result.returncode == 0, result.stdout + result.stderr + log[-3000:]
    lines = [line for line in (tmp_path / "results.txt").read_text().splitlines() if line.strip()]
    assert all(LINE.match(line) for line in lines), [line for line in lines if not LINE.match(line)]
    out = values("\n".join(lines))
    assert (out["mode"], out["device"], out["overall"]) == ("quick", "cpu", "ok")
    assert out["step.pytest_gpu.status"] == "skipped" and "no CUDA device" in out["step.pytest_gpu.reason"]
    assert out["step.grading.status"] == out["step.grades_vs_cpu.status"] == "ok"
    assert out["grades.match_cpu_reference"] == "True"
    assert int(out["grades.cells_compared"]) == int(out["grades.cells_equal"]) > 0
    for bench in ("conv", "occlusion", "train_throughput", "lora"):
        assert out[f"step.bench_{bench}.status"] == "ok"
        assert out[f"bench_{bench}.device"] == "cpu"
    assert out["lecture.01_cnn_anatomy.status"] == "ok"
    summary = (tmp_path / "summary.md").read_text()
    assert "quick mode" in summary and "pytest_gpu | skipped" in summary
