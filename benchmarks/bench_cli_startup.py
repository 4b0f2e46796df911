"""`course --help` and `import nbformat` against `python -c pass`, in one run: how long the
command line takes to answer, and what every nbgrader command, notebook tool and grading
subprocess pays to import nbformat, as ratios to a bare interpreter start on the same machine
at the same moment.

Prints `name: value` lines: the median wall time of each (seconds, over --repeats runs, the
three interleaved so that a busy machine slows all alike), the ratios and differences, whether
`course --help` imported torch (it must not: issue 14 asks for under 1 s) and whether
`import nbformat` imported rfc3987_syntax (jsonschema 4.25+ does: pyproject.toml pins below it).

    python benchmarks/bench_cli_startup.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

NBFORMAT = "import sys, nbformat; print('rfc3987_syntax' in sys.modules, file=sys.stderr)"
PROBE = ("import sys, runpy; sys.argv = ['course', '--help']\n"
         "try:\n    runpy.run_module('course_lib.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
         "print('torch' in sys.modules, file=sys.stderr)")


def wall_seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="runs of each command (default 15)")
    args = parser.parse_args()
    commands = {"python_c_pass": [sys.executable, "-c", "pass"],
                "course_help": [sys.executable, "-m", "course_lib.cli", "--help"],
                "import_nbformat": [sys.executable, "-c", NBFORMAT]}
    for command in commands.values():
        wall_seconds(command)  # warm the file cache and the bytecode
    times = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, command in commands.items():
            times[name].append(wall_seconds(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name}_s: {value:.3f}")
    for name in ("course_help", "import_nbformat"):
        print(f"{name}_over_python_c_pass: {medians[name] / medians['python_c_pass']:.1f}")
        print(f"{name}_minus_python_c_pass_s: {medians[name] - medians['python_c_pass']:.3f}")
    torch, rfc = (_stderr([sys.executable, "-c", code]) for code in (PROBE, NBFORMAT))
    print(f"course_help_imports_torch: {torch}")
    print(f"import_nbformat_imports_rfc3987_syntax: {rfc}")
    return 0 if torch == rfc == "False" else 1


def _stderr(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stderr.strip()


if __name__ == "__main__":
    sys.exit(main())
