"""`course --help` against `python -c pass`, in one run: how long the command line takes to
answer, as a ratio to a bare interpreter start on the same machine at the same moment.

Prints `name: value` lines: the median wall time of each (seconds, over --repeats runs, the
two interleaved so that a busy machine slows both alike), their ratio and the difference,
and whether `course --help` imported torch (it must not: issue 14 asks for under 1 s).

    python benchmarks/bench_cli_startup.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

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
    bare, course = [sys.executable, "-c", "pass"], [sys.executable, "-m", "course_lib.cli", "--help"]
    wall_seconds(course)  # warm the file cache and the bytecode
    times = {"python_c_pass": [], "course_help": []}
    for _ in range(args.repeats):
        times["python_c_pass"].append(wall_seconds(bare))
        times["course_help"].append(wall_seconds(course))
    medians = {name: statistics.median(values) for name, values in times.items()}
    torch = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stderr.strip()
    for name, value in medians.items():
        print(f"{name}_s: {value:.3f}")
    print(f"course_help_over_python_c_pass: {medians['course_help'] / medians['python_c_pass']:.1f}")
    print(f"course_help_minus_python_c_pass_s: {medians['course_help'] - medians['python_c_pass']:.3f}")
    print(f"course_help_imports_torch: {torch}")
    return 0 if torch == "False" else 1


if __name__ == "__main__":
    sys.exit(main())
