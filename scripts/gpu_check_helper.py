"""The Python half of `scripts/gpu_check.sh`: each subcommand prints `name: value` lines.

    gpu_check_helper.py notebook NB.ipynb PREFIX [--fast]   execute a lecture, time it, report its CUDA peak
    gpu_check_helper.py cells GRADES.csv LONG.csv           `course export`'s wide CSV -> one row per test cell
    gpu_check_helper.py compare REFERENCE.csv LONG.csv      per-cell scores against the CPU reference;
                                                            exit 1 on any difference
    gpu_check_helper.py junit REPORT.xml PREFIX             pytest's counts and failed test ids
    gpu_check_helper.py summary RESULTS.txt SUMMARY.md      the markdown summary of a run
    gpu_check_helper.py wheels DIR                          download wheels the GPU image lacks
                                                            (run where PyPI is reachable)

Only the standard library, nbclient and packaging are used, so the helper runs wherever the course does.
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

CELL_FIELDS = ["student", "assignment", "cell", "score"]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CUDA_PROBE = ("import sys, torch\n"
               "print('cuda_peak_mib:', round(torch.cuda.max_memory_allocated() / 2**20, 1) "
               "if torch.cuda.is_initialized() else 'none')")


# -- lectures ------------------------------------------------------------------------------------


def run_notebook(path: Path, prefix: str, fast: bool, timeout: int = 600) -> int:
    """Execute a copy of the notebook in a fresh kernel (the file is not changed), then a probe
    cell that reports the kernel's peak CUDA memory: a lecture that ran on the GPU shows it."""
    import os

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_CUDA_PROBE))
    env = dict(os.environ, COURSE_FAST="1" if fast else "0", COURSE_QUIET="1", MPLBACKEND="Agg")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    start = time.perf_counter()
    error = None
    try:
        client.execute(env=env)
    except Exception as exc:  # noqa: BLE001 -- CellExecutionError, CellTimeoutError, DeadKernelError, NoSuchKernel
        error = _ANSI.sub("", f"{type(exc).__name__}: {exc}").strip().splitlines()
    print(f"{prefix}.seconds: {time.perf_counter() - start:.1f}")
    print(f"{prefix}.mode: {'COURSE_FAST=1' if fast else 'full'}")
    probe = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []))
    if "cuda_peak_mib:" in probe:
        print(f"{prefix}.{probe.strip()}")
    print(f"{prefix}.status: {'failed' if error else 'ok'}")
    if error:
        print(f"{prefix}.error: {error[-1][:300] if error else ''}")
    return 1 if error else 0


# -- grades --------------------------------------------------------------------------------------


def wide_to_cells(grades_csv: Path, out: Path) -> int:
    """`course export`'s CSV (one row per submission, a column `<hw>:<nb>/<cell>` per test cell)
    -> out: one row per (student, assignment, cell, score), sorted."""
    rows = []
    with open(grades_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            for column, value in row.items():
                hw, _, cell = column.partition(":")
                if cell and hw == row["assignment"] and value != "":
                    rows.append({"student": row["student"], "assignment": hw, "cell": cell, "score": value})
    rows.sort(key=lambda r: (r["assignment"], r["student"], r["cell"]))
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, CELL_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"grades.cells: {len(rows)}")
    print(f"grades.submissions: {len({(r['student'], r['assignment']) for r in rows})}")
    return 0


def read_cells(path: Path) -> dict[tuple[str, str, str], float]:
    with open(path, newline="") as handle:
        return {(r["student"], r["assignment"], r["cell"]): float(r["score"]) for r in csv.DictReader(handle)}


def compare(reference: Path, got: Path) -> int:
    """Every cell of every submission graded here against the reference's score for it.
    Submissions the reference lacks, cells missing on either side and different scores all fail."""
    expected, actual = read_cells(reference), read_cells(got)
    graded = {(s, a) for s, a, _ in actual}
    wanted = {key: score for key, score in expected.items() if key[:2] in graded}
    problems = [f"{'.'.join(k)}: not in the reference (regenerate it: bash scripts/gpu_check.sh --reference)"
                for k in sorted(set(actual) - set(wanted))]
    problems += [f"{'.'.join(k)}: missing here, reference {wanted[k]:g}" for k in sorted(set(wanted) - set(actual))]
    problems += [f"{'.'.join(k)}: reference {wanted[k]:g}, here {actual[k]:g}"
                 for k in sorted(set(wanted) & set(actual)) if actual[k] != wanted[k]]
    same = sum(1 for k in set(wanted) & set(actual) if actual[k] == wanted[k])
    print(f"grades.submissions_compared: {len(graded)}")
    print(f"grades.cells_compared: {len(set(wanted) | set(actual))}")
    print(f"grades.cells_equal: {same}")
    print(f"grades.cells_differing: {len(problems)}")
    for problem in problems:
        print(f"grades.difference.{problem}")
    ok = not problems and same > 0
    print(f"grades.match_cpu_reference: {ok}")
    return 0 if ok else 1


# -- pytest --------------------------------------------------------------------------------------


def junit(report: Path, prefix: str) -> int:
    """Counts from pytest's JUnit XML, and the id of each failed or errored test."""
    root = ET.parse(report).getroot()
    cases = list(root.iter("testcase"))
    outcome = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    failed = []
    for case in cases:
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        kind = {"failure": "failed"}.get(kinds[0], kinds[0]) if kinds else "passed"
        outcome[kind] += 1
        if kind in ("failed", "error"):
            failed.append(f"{case.get('classname', '')}::{case.get('name', '')}")
    for kind, count in outcome.items():
        print(f"{prefix}.{kind}: {count}")
    for index, test in enumerate(failed, 1):
        print(f"{prefix}.failed_test.{index}: {test}")
    return 0


# -- summary -------------------------------------------------------------------------------------


def parse_results(path: Path) -> dict[str, str]:
    """`name: value` lines -> dict (the last value of a name wins); other lines are ignored."""
    results = {}
    for line in Path(path).read_text().splitlines():
        name, sep, value = line.partition(": ")
        if sep and re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
            results[name] = value
    return results


KEY_FIGURE = re.compile(r"(pytest_gpu\.(passed|failed|error|skipped)$"
                        r"|^grades\.(cells_compared|cells_differing|match_cpu_reference)$"
                        r"|^lecture\..*\.(seconds|cuda_peak_mib|status)$|ratio|images_per_s$|step_ms|_s$|max_abs_difference)")


def summary(results_path: Path, out: Path) -> int:
    r = parse_results(results_path)
    steps = [name[: -len(".status")] for name in r if name.startswith("step.") and name.endswith(".status")]
    lines = [f"# GPU check ({r.get('mode', '?')} mode) on {r.get('device', '?')}", "",
             (f"{r.get('date', '')}; {r.get('gpu_name', 'no GPU')}; torch {r.get('torch_version', '?')}; "
              f"commit {r.get('git_commit', '?')}; overall: **{r.get('overall', '?')}**"), "",
             "| step | status | seconds | note |", "|---|---|---|---|"]
    for step in steps:
        note = r.get(f"{step}.reason", "")
        lines.append(f"| {step[5:]} | {r[step + '.status']} | {r.get(step + '.seconds', '')} | {note} |")
    lines += ["", "## Key figures", ""]
    keys = [k for k in r if KEY_FIGURE.search(k)]
    lines += [f"- `{k}: {r[k]}`" for k in keys if not k.startswith("step.")]
    lines += ["", "Every figure is in results.txt (`name: value` lines); the steps' output is in gpu_check.log."]
    out.write_text("\n".join(lines) + "\n")
    return 0


# -- wheels for the GPU machine --------------------------------------------------------------------

#: What a CUDA image with PyTorch already holds (large, compiled, tied to the CUDA build): never downloaded.
EXPECTED_ON_GPU_IMAGE = re.compile(
    r"^(torch|torchvision|triton|numpy|scipy|scikit-learn|scikit-image|matplotlib|pillow|pandas|peft|"
    r"transformers|tokenizers|safetensors|accelerate|huggingface-hub|hf-xet|nvidia-.*|cuda-.*|sympy|networkx|"
    r"mpmath|contourpy|fonttools|kiwisolver|imageio|tifffile|lazy-loader|joblib|threadpoolctl|pyyaml|psutil|"
    r"regex|setuptools|pip|wheel|packaging|pytest|pluggy|iniconfig|pygments|jinja2|markupsafe|filelock|fsspec|"
    r"typing-extensions|requests|urllib3|idna|certifi|charset-normalizer|tqdm|six|python-dateutil|attrs|"
    r"msgpack|cloudpickle|toolz|sortedcontainers|pyparsing|cycler|click|tzdata)$")


#: Needed by JupyterLab, widgets or IPython's completion, never imported by the check (traced on the
#: CPU, 2026-11-30): left out to keep the wheels under the 64 MiB a GPU machine's call may carry.
NOT_IMPORTED_BY_THE_CHECK = re.compile(
    r"^(jupyterlab|jupyterlab-server|jupyterlab-widgets|jupyter-lsp|jupyter-builder|babel|json5|async-lru|jedi|"
    r"widgetsnbextension|ipywidgets|pydantic|pydantic-core)$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dependency_closure(root: str = "dl-course", extras=("dev",)) -> dict[str, str]:
    """{distribution: installed version} for everything `root[extras]` needs here, on Linux x86-64."""
    from importlib import metadata

    from packaging.requirements import Requirement

    found, todo = {}, [(root, tuple(extras))]
    while todo:
        name, wanted = todo.pop()
        dist = metadata.distribution(name)
        if _norm(name) in found and not wanted:
            continue
        found[_norm(name)] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            marker_ok = req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *wanted))
            if marker_ok and _norm(req.name) not in found:
                todo.append((req.name, tuple(req.extras)))
    found.pop(_norm(root))
    return found


def download_wheels(directory: Path, python_version: str = "3.12") -> int:
    """pip-download (no dependencies resolved: the list is already closed) every needed wheel
    that a CUDA PyTorch image is not expected to hold, at the versions installed here.
    Their pure-Python ones are for any Python; the compiled ones for CPython `python_version`
    on x86-64 Linux (the GPU image's Python: 3.12)."""
    wanted = {n: v for n, v in dependency_closure().items()
              if not EXPECTED_ON_GPU_IMAGE.match(n) and not NOT_IMPORTED_BY_THE_CHECK.match(n)}
    platforms = [f"--platform=manylinux_2_{n}_x86_64" for n in (17, 24, 27, 28, 31, 34, 35)]
    platforms.append("--platform=manylinux2014_x86_64")
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               f"--python-version={python_version}", "--implementation=cp", *platforms, "-d", str(directory),
               *(f"{n}=={v}" for n, v in sorted(wanted.items()))]
    result = subprocess.run(command, check=False)
    size = sum(f.stat().st_size for f in Path(directory).glob("*.whl"))
    print(f"wheels.distributions: {len(wanted)}")
    print(f"wheels.mib: {size / 2**20:.1f}")
    return result.returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    nb = commands.add_parser("notebook")
    nb.add_argument("path", type=Path)
    nb.add_argument("prefix")
    nb.add_argument("--fast", action="store_true")
    for name, first, second in (("cells", "grades_csv", "out"), ("compare", "reference", "got"),
                                ("junit", "report", "prefix"), ("summary", "results", "out")):
        command = commands.add_parser(name)
        command.add_argument(first, type=Path)
        command.add_argument(second, type=Path if second != "prefix" else str)
    commands.add_parser("wheels").add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    if args.command == "notebook":
        return run_notebook(args.path, args.prefix, args.fast)
    if args.command == "cells":
        return wide_to_cells(args.grades_csv, args.out)
    if args.command == "compare":
        return compare(args.reference, args.got)
    if args.command == "junit":
        return junit(args.report, args.prefix)
    if args.command == "summary":
        return summary(args.results, args.out)
    return download_wheels(args.directory)


if __name__ == "__main__":
    sys.exit(main())
