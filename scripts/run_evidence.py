"""Measure the lecture's claims and write docs/evidence.md.

    python scripts/run_evidence.py                 # every claim, 5 seeds (about 15 min on a shared 2-core CPU)
    python scripts/run_evidence.py --only tta      # one claim (repeatable); the others' committed tables stay
    python scripts/run_evidence.py --render         # rebuild docs/evidence.md from the saved tables
    python scripts/run_evidence.py --fast --seeds 2 --results /tmp/ev --docs /tmp/ev   # a quick smoke run

Each claim's table goes to course_lib/evidence/results/<claim>.json and its figure to
docs/images/evidence_<claim>.png; docs/evidence.md is then rebuilt from every table in the
results folder, so `--only` refreshes one section and keeps the rest.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib.device import cpu_name  # noqa: E402 - after the path above
from course_lib.evidence import CLAIM_MODULES, claim_module, report  # noqa: E402
from course_lib.evidence.table import RESULTS_DIR, EvidenceTable, load_result  # noqa: E402


def machine_description() -> str:
    device = "CUDA " + torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    return f"{os.cpu_count()}-core {cpu_name()} ({platform.system()}), {device}, torch {torch.__version__}"


def run_claim(name: str, seeds: int, fast: bool, results: Path, images: Path) -> EvidenceTable:
    module = claim_module(name)
    load_before = os.getloadavg()[0]
    table = module.run(seeds=range(seeds), fast=fast)
    table.setup.update(date=datetime.datetime.now().isoformat(timespec="minutes"),
                       machine_description=machine_description(), torch_threads=torch.get_num_threads(),
                       load_average=[load_before, os.getloadavg()[0]])
    table.save(results)
    module.plot(table).savefig(images / f"evidence_{name}.png", dpi=110)
    print(f"{name}: {table.seconds:.0f} s", flush=True)
    return table


def write_document(results: Path, docs: Path, images: Path) -> Path:
    """docs/evidence.md from every claim table in `results`, in the order of CLAIM_MODULES."""
    sections, tables = [], []
    for number, name in enumerate((n for n in CLAIM_MODULES if (results / f"{n}.json").exists()), 1):
        image = os.path.relpath(images / f"evidence_{name}.png", docs)
        tables.append(load_result(name, results))
        sections.append(report.section(number, claim_module(name), tables[-1], image))
    path = docs / "evidence.md"
    path.write_text(report.document(sections, tables))
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=CLAIM_MODULES, help="run only this claim (repeatable)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per claim (default 5)")
    parser.add_argument("--fast", action="store_true", help="the tests' fast settings (smoke runs only)")
    parser.add_argument("--render", action="store_true", help="only rebuild evidence.md from the saved tables")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: fastest on a shared CPU)")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)
    if args.seeds < 2 and not args.fast:
        parser.error("a full run needs at least 2 seeds for an interval (the lecture's standard is 5)")
    os.environ.setdefault("COURSE_QUIET", "1")
    torch.set_num_threads(args.threads)
    images = args.docs / "images"
    for folder in (args.results, images):
        folder.mkdir(parents=True, exist_ok=True)
    names = [] if args.render else args.only or list(CLAIM_MODULES)
    start = time.perf_counter()
    for name in names:
        run_claim(name, args.seeds, args.fast, args.results, images)
    print(f"all: {time.perf_counter() - start:.0f} s; wrote {write_document(args.results, args.docs, images)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
