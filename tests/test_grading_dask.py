"""`course grade --executor dask`: the sandboxed executor on a Dask `LocalCluster` gives the
same grades as the local executor, for honest and hostile submissions, and a broken or
missing cluster is a clear error, not a lost batch."""

import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from distributed import Client, LocalCluster
from hostile import EXAMPLES, HW, ROOT, hostile_submissions, write_submissions

from course_lib.autograde.course import CourseError, db_url, generate
from course_lib.autograde.executors import dask_cluster as dask_executor
from course_lib.autograde.gradebook import read_scores
from course_lib.autograde.pipeline import grade, summary_table
from course_lib.autograde.protocol import Limits
from course_lib.autograde.sandbox import bwrap_path

pytestmark = pytest.mark.slow

HOSTILE = ("infinite_loop", "segfault", "sys_exit", "monkeypatch", "reads_secrets", "deleted_test",
           "invalid_json", "wrong_name")
LIMITS = Limits(cell_timeout=15, wall_timeout=240, memory_mb=2048, output_cap=200_000)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """hw1's course as `course generate` leaves it; each test grades in a copy (`_course`)."""
    folder = tmp_path_factory.mktemp("generated")
    shutil.copytree(ROOT / "solutions" / HW, folder / "solutions" / HW)
    shutil.copy(ROOT / "nbgrader_config.py", folder / "nbgrader_config.py")
    generate(folder, [HW])
    return folder


def _course(generated, folder):
    shutil.copytree(generated, folder, dirs_exist_ok=True)
    return folder


def _scores(course):
    return {s.student: s.cell_scores() for s in read_scores(db_url(course), HW)}


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    for student in ("alt_correct", "typical_mistakes", "blank"):
        shutil.copytree(EXAMPLES / student / HW, folder / student / HW)
    secrets_course = tmp_path_factory.mktemp("dask-course")  # the course the reader tries to read
    everything = hostile_submissions(secrets_course, folder)
    write_submissions(folder, {student: everything[student] for student in HOSTILE})
    return folder, secrets_course


@pytest.fixture(scope="module")
def graded(cluster, submissions, generated, tmp_path_factory):
    folder, dask_course = submissions
    local_course = _course(generated, tmp_path_factory.mktemp("local-course"))
    _course(generated, dask_course)
    local, _ = grade(local_course, folder, jobs=2, limits=LIMITS, bar=False)
    remote, skipped = grade(dask_course, folder, executor="dask", scheduler=cluster.scheduler_address,
                            limits=LIMITS, bar=False)
    print(summary_table(remote, skipped))
    return {"local": local_course, "dask": dask_course, "local_outcomes": {o.student: o for o in local},
            "dask_outcomes": {o.student: o for o in remote}}


def test_dask_grades_equal_the_local_executor(graded):
    local, remote = _scores(graded["local"]), _scores(graded["dask"])
    assert set(remote) == {"alt_correct", "typical_mistakes", "blank", *HOSTILE}
    assert remote == local
    outcomes = graded["dask_outcomes"]
    assert outcomes["alt_correct"].score == 17 and outcomes["typical_mistakes"].score == 6
    assert outcomes["blank"].score == 0
    for student, outcome in outcomes.items():
        mine = graded["local_outcomes"][student]
        assert (outcome.score, outcome.max_score, outcome.failed) == (mine.score, mine.max_score, mine.failed)


def test_dask_hostile_submissions_get_a_grade_and_a_reason(graded):
    outcomes = graded["dask_outcomes"]
    assert any("test_conv_params" in f for f in outcomes["infinite_loop"].failed)
    assert any("SIGSEGV" in p for p in outcomes["segfault"].problems)
    assert any("test_conv_params" in f for f in outcomes["monkeypatch"].failed)
    assert any("not valid JSON" in p for p in outcomes["invalid_json"].problems)
    assert any("rename" in p for p in outcomes["wrong_name"].problems)
    for student in HOSTILE:
        log = graded["dask"] / "logs" / HW / f"{student}.log"
        assert "Dask cluster at tcp://" in log.read_text()


def test_dask_run_leaves_the_gradebook_intact_and_the_cluster_clean(graded, cluster):
    with sqlite3.connect(graded["dask"] / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Client(cluster.scheduler_address) as client:
        plugins = client.run(lambda dask_worker: sorted(dask_worker.plugins))
    assert not any(name.startswith("course-grade-") for names in plugins.values() for name in names)


@pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed: the filesystem sandbox is off")
def test_dask_sandbox_hides_the_course(graded):
    import nbformat

    notebook = nbformat.read(graded["dask"] / "autograded" / "reads_secrets" / HW / f"{HW}.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "DENIED []" in text and "LEAKED" not in text


def _patch_workers(client, workers=None, **replacements):
    """Replace functions of course_lib.autograde.executors.dask_cluster inside the Dask worker processes."""
    def patch():
        for name, value in replacements.items():
            setattr(dask_executor, name, value)
    client.run(patch, workers=workers)


def _repair_workers(client):
    def repair():
        import importlib
        importlib.reload(dask_executor)
    client.run(repair)


def _lost(*args, **kwargs):
    raise OSError("the machine went away")


def test_a_failing_cluster_leaves_earlier_grades_alone(cluster, generated, tmp_path):
    course = _course(generated, tmp_path / "course")
    folder = tmp_path / "subs"
    for student in ("alt_correct", "blank"):
        shutil.copytree(EXAMPLES / student / HW, folder / student / HW)
    grade(course, folder, executor="dask", scheduler=cluster.scheduler_address, bar=False)
    before = _scores(course)
    with Client(cluster.scheduler_address) as client:
        _patch_workers(client, run_job=_lost)
        try:
            outcomes, _ = grade(course, folder, executor="dask", scheduler=cluster.scheduler_address, bar=False)
        finally:
            _repair_workers(client)
    assert [(o.student, o.graded) for o in outcomes] == [("alt_correct", False), ("blank", False)]
    assert all(any("NOT GRADED: the Dask cluster could not run this submission" in p and "went away" in p
                   for p in o.problems) for o in outcomes)
    assert _scores(course) == before and sum(before["alt_correct"].values()) == 17
    assert "NOT GRADED" in (course / "logs" / HW / "alt_correct.log").read_text()


def test_a_worker_with_a_different_course_lib_gets_no_submissions(cluster, generated, tmp_path, capsys):
    course = _course(generated, tmp_path / "course")
    folder = tmp_path / "subs"
    for student in ("typical_mistakes", "blank"):
        shutil.copytree(EXAMPLES / student / HW, folder / student / HW)
    with Client(cluster.scheduler_address) as client:
        stale = sorted(client.scheduler_info()["workers"])[0]
        _patch_workers(client, [stale], fingerprint=lambda: "0" * 16)
        try:
            outcomes, _ = grade(course, folder, executor="dask", scheduler=cluster.scheduler_address, bar=False)
        finally:
            _repair_workers(client)
    assert [(o.student, o.score, o.graded) for o in outcomes] == [("blank", 0, True), ("typical_mistakes", 6, True)]
    assert f"not using Dask worker {stale}: it runs a different course_lib" in capsys.readouterr().err


def test_no_worker_with_this_course_lib_is_a_clear_error(cluster, generated, tmp_path):
    course = _course(generated, tmp_path / "course")
    shutil.copytree(EXAMPLES / "blank" / HW, tmp_path / "subs" / "blank" / HW)
    with Client(cluster.scheduler_address) as client:
        _patch_workers(client, fingerprint=lambda: "0" * 16)
        try:
            with pytest.raises(CourseError, match="no Dask worker at .* runs this course_lib"):
                grade(course, tmp_path / "subs", executor="dask", scheduler=cluster.scheduler_address, bar=False)
        finally:
            _repair_workers(client)
    assert not (course / "logs").exists()  # nothing was graded


def test_a_cluster_without_workers_ends_the_run_with_the_rest_not_graded(generated, tmp_path, monkeypatch):
    monkeypatch.setattr(dask_executor, "NO_WORKERS_TIMEOUT", 3)
    monkeypatch.setattr(dask_executor, "POLL", 1)
    course = _course(generated, tmp_path / "course")
    folder = tmp_path / "subs"
    for i in range(4):
        shutil.copytree(EXAMPLES / "blank" / HW, folder / f"blank{i}" / HW)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as lonely:
        outcomes, _ = grade(course, folder, executor="dask", scheduler=lonely.scheduler_address, bar=False,
                            progress=lambda outcome: lonely.scale(0))  # every worker leaves after the first
    graded = [o for o in outcomes if o.graded]
    assert len(outcomes) == 4 and 1 <= len(graded) < 4
    assert all(any("NOT GRADED: the Dask cluster went away" in p and "no Dask worker with this course_lib" in p
                   for p in o.problems) for o in outcomes if not o.graded)


def _stop_after_first(outcome):
    raise KeyboardInterrupt("the instructor pressed Ctrl-C")


@pytest.mark.parametrize("executor", ["sandbox", "dask"])
def test_stopping_early_ends_running_submissions_and_leaves_nothing_behind(executor, cluster, generated, tmp_path):
    course = _course(generated, tmp_path / "course")
    folder = tmp_path / "subs"
    shutil.copytree(EXAMPLES / "blank" / HW, folder / "a_blank" / HW)
    hostile = hostile_submissions(course, folder)
    write_submissions(folder, {"z_loop": hostile["infinite_loop"]})
    limits = Limits(cell_timeout=120, wall_timeout=240)
    options = {"jobs": 2} if executor == "sandbox" else {"executor": "dask", "scheduler": cluster.scheduler_address}
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        grade(course, folder, limits=limits, bar=False, progress=_stop_after_first, **options)
    assert time.monotonic() - start < limits.cell_timeout  # the looping cell was ended, not waited for
    assert not (course / "logs" / HW / "z_loop.log").exists()
    with Client(cluster.scheduler_address) as client:
        plugins = client.run(lambda dask_worker: sorted(dask_worker.plugins))
    assert not any(name.startswith("course-grade-") for names in plugins.values() for name in names)
    assert not _grading_processes()


def _grading_processes() -> list[str]:
    """Grading workers still running below this test process (its Dask cluster's included),
    or orphaned (a leak, whoever started it); other test processes' live workers
    (pytest-xdist) are not ours to judge."""
    found = []
    for status in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = status.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "course_lib.autograde.worker" in command and _descends_from_us(int(status.parent.name)):
            found.append(command)
    return found


def _descends_from_us(pid: int) -> bool:
    """True for a descendant of this process, and for an orphan (its parent is init)."""
    parent = _parent(pid)
    if parent == 1:
        return True
    while pid > 1:
        if pid == os.getpid():
            return True
        pid = _parent(pid)
    return False


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def test_unreachable_scheduler_and_missing_address_are_clear_errors(generated, tmp_path):
    course = _course(generated, tmp_path / "course")
    shutil.copytree(EXAMPLES / "blank" / HW, tmp_path / "subs" / "blank" / HW)
    with pytest.raises(CourseError, match="needs --scheduler ADDRESS"):
        grade(course, tmp_path / "subs", executor="dask")
    with pytest.raises(CourseError, match="--scheduler is for --executor dask"):
        grade(course, tmp_path / "subs", scheduler="tcp://127.0.0.1:1")
    with pytest.raises(CourseError, match="could not reach the Dask scheduler at 'tcp://127.0.0.1:1'"):
        dask_executor.connect("tcp://127.0.0.1:1", Limits(), timeout=2)
