"""Hostile and honest hw1 submissions for the grading tests (test_grading_sandbox, test_grading_dask)."""

import json
from pathlib import Path

import nbformat

from course_lib.autograde.sandbox import can_drop_uid

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "submissions"
HW = "hw1_cnn_arithmetic"
# Children run as an unprivileged uid (root + bubblewrap, or root + a world-readable Python):
# RLIMIT_NPROC bounds a fork bomb and the child cannot write the course or the repository.
CONFINED = can_drop_uid()

CORRECT_PARAMS = ("def conv_params(in_channels, out_channels, kernel_size, bias=True):\n"
                  "    return out_channels * in_channels * kernel_size * kernel_size + (out_channels if bias else 0)\n")
# Passes the visible assert (10, 5, 3) but not the hidden checks.
SNEAKY_PARAMS = ("def conv_params(in_channels, out_channels, kernel_size, bias=True):\n"
                 "    return 455 if (in_channels, out_channels, kernel_size) == (10, 5, 3) else 0\n")


def _cell(notebook, grade_id):
    return next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _solution():
    return nbformat.read(ROOT / "solutions" / HW / f"{HW}.ipynb", as_version=4)


def _write(folder: Path, notebook, name=f"{HW}.ipynb"):
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / name)


def _with_params(code):
    notebook = _solution()
    _cell(notebook, "conv_params").source = code
    return notebook


def hostile_submissions(course: Path, submissions: Path) -> dict:
    """student -> (notebook or raw text or callable, expected score or None for 'any')."""
    secrets = [course / "solutions" / HW / f"{HW}.ipynb", course / "gradebook.db",
               submissions / "alt_correct" / HW / f"{HW}.ipynb"]
    targets = [submissions / "alt_correct" / HW / "planted.txt", course / "gradebook.db",
               course / "solutions" / HW / "planted.txt", ROOT / "planted.txt"]
    reader = ("import pathlib\nleaks = []\n"
              f"for p in {[str(s) for s in secrets]!r}:\n"
              "    try:\n        pathlib.Path(p).read_bytes()\n        leaks.append(p)\n"
              "    except Exception:\n        pass\n"
              "print('LEAKED' if leaks else 'DENIED', leaks)\n" + CORRECT_PARAMS)
    writer = ("import pathlib\nwritten = []\n"
              f"for p in {[str(t) for t in targets]!r}:\n"
              "    try:\n        with open(p, 'ab') as f:\n            f.write(b'pwned')\n        written.append(p)\n"
              "    except Exception:\n        pass\n"
              "print('WROTE' if written else 'REFUSED', written)\n" + CORRECT_PARAMS)
    patcher = (SNEAKY_PARAMS +
               "import builtins, torch, course_lib.grading as g, course_lib.grading.checks.hw1_arithmetic as a\n"
               "import course_lib.arithmetic as ar, course_lib.grading.checks.compare as cmp\n"
               "a.check_conv_params.__code__ = (lambda *args, **kw: None).__code__\n"
               "g.check_conv_params = a.check_conv_params = lambda *args, **kw: None\n"
               "check_conv_params = lambda *args, **kw: None\n"
               "ar.conv_params = conv_params\n"
               "builtins.AssertionError = type('AssertionError', (Exception,), {})\n"
               "torch.equal = lambda *args, **kw: True\n"
               "torch.manual_seed = lambda *args, **kw: None\n"
               "import sys\nsys.excepthook = lambda *args: None\n")
    deleted, duplicated, retyped, edited = _solution(), _solution(), _solution(), _with_params(SNEAKY_PARAMS)
    deleted.cells.remove(_cell(deleted, "test_conv_params"))
    duplicated.cells.insert(5, nbformat.from_dict(json.loads(json.dumps(_cell(duplicated, "test_conv_output_size")))))
    cell = _cell(retyped, "test_conv_params")
    retyped.cells[retyped.cells.index(cell)] = nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata)
    _cell(edited, "test_conv_params").source = "print('looks fine')"
    old = nbformat.convert(_solution(), 3)
    confined = {
        "fork_bomb": (_with_params("import os\nwhile True:\n    os.fork()\n"), 9),
        "writes_outside": (_with_params(writer), 10),
    } if CONFINED else {}
    return {
        **confined,
        "infinite_loop": (_with_params("while True:\n    pass\n"), 9),
        "memory_bomb": (_with_params("hog = []\nwhile True:\n    hog.append(bytearray(50 * 1024 * 1024))\n"), None),
        "segfault": (_with_params("import ctypes\nctypes.string_at(0)\n"), 9),
        "sys_exit": (_with_params("import sys\nsys.exit(0)\n"), 9),
        "os_exit": (_with_params("import os\nos._exit(0)\n"), 9),
        "deleted_test": (deleted, 10),
        "duplicated_test": (duplicated, 10),
        "retyped_test": (retyped, 10),
        "edited_test": (edited, 9),
        "monkeypatch": (_with_params(patcher), 9),
        "fake_pass": (_with_params(SNEAKY_PARAMS + "print('All tests passed! Score: 10/10')\n"), 9),
        "reads_secrets": (_with_params(reader), 10),
        "huge_output": (_with_params("print('x' * 100_000_000)\n" + CORRECT_PARAMS), 10),
        "invalid_json": ("{ this is not json", 0),
        "wrong_name": ((_solution(), "homework1.ipynb"), 0),
        "old_nbformat": (("v3", old), 10),
    }


def write_submissions(submissions: Path, hostile: dict) -> None:
    """Write each student's notebook (or raw text, or nbformat 3) as SUBMISSIONS/<student>/hw1/."""
    for student, (content, _) in hostile.items():
        folder = submissions / student / HW
        if isinstance(content, str):
            folder.mkdir(parents=True)
            (folder / f"{HW}.ipynb").write_text(content)
        elif isinstance(content, tuple) and content[0] == "v3":
            folder.mkdir(parents=True)
            (folder / f"{HW}.ipynb").write_text(nbformat.writes(content[1], version=3))
        elif isinstance(content, tuple):
            _write(folder, *content)
        else:
            _write(folder, content)
