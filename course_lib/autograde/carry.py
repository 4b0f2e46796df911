"""The files besides notebooks that `course grade` keeps in autograded/<student>/<hw>/, as
stock `nbgrader autograde` does: first every other file of the submission
(`timestamp.txt`, which `nbgrader release_feedback` and the late penalty need;
`submission_secret.txt`, from which the feedback's name in the exchange is derived; a
student's data files), then the source folder's files over them (the instructor's data
files win, except those named in `Autograde.exclude_overwriting`). Files matching
`CourseDirectory.ignore` are left out, as are symbolic links (a link in a submission could
point at the instructor's files).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from nbgrader.utils import find_all_files
from traitlets.config import Config

DEFAULT_IGNORE = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]  # nbgrader's default


def carry_files(submitted: Path, source: Path, destination: Path, assignment: str, config: Config) -> list[str]:
    """Copy the non-notebook files of `submitted`, then of `source`, into `destination`;
    returns a note for each file left out."""
    ignore = list(config.CourseDirectory.get("ignore", DEFAULT_IGNORE)) + ["*.ipynb"]
    keep = set(config.Autograde.get("exclude_overwriting", {}).get(assignment, []))
    notes = _copy_tree(submitted, destination, ignore, set())
    if source.is_dir():
        _copy_tree(source, destination, ignore, keep)
    return notes


def _copy_tree(folder: Path, destination: Path, ignore: list[str], keep: set[str]) -> list[str]:
    notes = []
    for name in sorted(find_all_files(str(folder), ignore)):
        path = Path(name)
        relative = path.relative_to(folder)
        if str(relative) in keep:
            continue
        if path.is_symlink():
            notes.append(f"{relative} not copied to autograded/: it is a symbolic link")
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            target.unlink()
        shutil.copy(path, target)
    return notes
