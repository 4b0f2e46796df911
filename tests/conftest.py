"""Shared fixtures: run on the CPU always and on CUDA where it exists (`gpu` marker)."""

import functools
import os
import pickle
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from filelock import FileLock

os.environ.setdefault("COURSE_QUIET", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

CUDA = torch.cuda.is_available()


# The modules that take longest, longest first (from `make test`'s slowest steps, ci-local on
# 2026-11-30). They are handed to the xdist workers first, so that no worker starts one of them
# while the other has nothing left (the Makefile turns off xdist's own order, by test count).
# test_grading_course, first, builds `made_course`; test_make_course and test_browser reuse it.
LONGEST_FIRST = ["test_grading_course", "test_release", "test_homework_zoo", "test_grading_dask",
                 "test_student_lectures", "test_browser", "test_grading_sandbox", "test_semester_exchange",
                 "test_gpu_check", "test_visualize_plots"]


def _longest_first(item) -> int:
    name = item.path.stem
    return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs CUDA; none on this machine")
    for item in items:
        if "gpu" in item.keywords and not CUDA:
            item.add_marker(skip_gpu)
    items.sort(key=_longest_first)  # stable: each module keeps its own order


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    """Each test that takes `device` runs on the CPU and, marked `gpu`, on CUDA."""
    return torch.device(request.param)


@pytest.fixture
def no_network(monkeypatch):
    """Every connection attempt fails at once, as on a machine without network."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    def refuse_url(*args, **kwargs):
        raise urllib.error.URLError("network disabled by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse_url)
    monkeypatch.setattr(torch.hub, "urlopen", refuse_url)


@pytest.fixture(autouse=True, scope="session")
def alembic_version_asked_once():
    """nbgrader runs `alembic heads` in a subprocess (seconds of CPU) each time it creates a new
    gradebook in this process; the answer is fixed for the installed nbgrader, so it is asked once
    per test process. nbgrader's own commands, in their subprocesses, still ask it themselves. A
    run whose tests never imported nbgrader (`pytest tests/test_layers.py`) does not import it."""
    api = sys.modules.get("nbgrader.api")
    if api is None:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(api, "get_alembic_version", functools.cache(api.get_alembic_version))
        yield


@pytest.fixture(scope="session")
def made_course(tmp_path_factory, worker_id):
    """`make course` in fast mode (course_lib.build.build_course, COURSE_FAST=1), once per test
    run: the pytest-xdist workers share one build under a lock. Returns (BuildReport, build
    folder, the lines it printed)."""
    from course_lib.build import build_course

    shared = tmp_path_factory.getbasetemp()
    shared = shared if worker_id == "master" else shared.parent
    out, saved = shared / "made_course" / "build", shared / "made_course" / "report.pickle"
    with FileLock(str(shared / "made_course.lock")):
        if not saved.exists():
            lines: list[str] = []
            report = build_course(Path(__file__).resolve().parents[1], out, fast=True, jobs=2, say=lines.append)
            saved.write_bytes(pickle.dumps((report, out, lines)))
        return pickle.loads(saved.read_bytes())
