"""Run the lecture's transfer experiment in full mode and write docs/transfer.md and its plots.

    .venv/bin/python scripts/run_transfer_experiment.py              # both targets, full mode
    .venv/bin/python scripts/run_transfer_experiment.py --fast       # smoke run (COURSE_FAST sizes)
    .venv/bin/python scripts/run_transfer_experiment.py --out /tmp/t --assets /tmp/t  # write somewhere else
    .venv/bin/python scripts/run_transfer_experiment.py --render     # no rerun: rewrite the document and
                                                                     # the plots from transfer_results.json

Runs `course_lib.experiment.transfer_experiment` for the "similar" (MNIST 5-9) and the
"different" (textures) target with its defaults (5 methods x 5/10/50/all labels per class
x seeds 0, 1, 2), prints each table as markdown, keeps every measured number (per seed) with
the date, machine, load and timings in `course_lib/assets/transfer/transfer_results.json`, and
from that record saves `course_lib/assets/transfer/transfer_<target>.png` and writes
`docs/transfer.md`: setup, machine, torch version, measured seconds, the tables
and the slides' "when to transfer" table: the measured verdicts of
`course_lib.experiment.when_to_transfer` next to the slides' own cells ("NA" where the slides
leave one empty).
The record and the plots are package data: lecture 03 shows them, also in the student edition,
which has no docs/.
One torch thread by default (`--threads`): the course's 2-core machines are often shared,
and two threads on a busy 2-core machine run far slower than one. Full mode, measured on
the shared 2-core VM: 160 + 105 s of CPU time, 5.3 min of wall time at load ~3 (9.4 min
at load ~4.5); see docs/transfer.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib import experiment as ex  # noqa: E402
from course_lib.device import cpu_name, get_device  # noqa: E402

PNG = dict(dpi=110, metadata={"Software": None})  # no version stamp: reruns give the same bytes


# ---------------------------------------------------------------------------------------
# Machine facts
# ---------------------------------------------------------------------------------------


def machine_text(threads: int) -> str:
    return (f"{os.cpu_count()}-core {platform.machine()} CPU ({cpu_name()}), {platform.system()}, "
            f"torch {torch.__version__} on {get_device()}, {threads} torch thread(s), "
            f"Python {platform.python_version()}")


# ---------------------------------------------------------------------------------------
# Reading the numbers
# ---------------------------------------------------------------------------------------


def summary(table: ex.TransferTable) -> str:
    """Two generated sentences: the pretraining gain and the best / worst method per label count."""
    counts = table.labels_per_class
    gains = ", ".join(f"{ex.labels_text(n)}: {ex.pretrained_gain(table, n):+.3f}" for n in counts)
    ranks = []
    for n in counts:
        rows = sorted((table.row(m, n) for m in table.methods), key=lambda r: -r.accuracy_mean)
        ranks.append(f"{ex.labels_text(n)}: {rows[0].method} / {rows[-1].method}")
    return (f"- **{table.target}** - best pretrained method minus scratch, by labels per class: {gains}. "
            f"Best / worst method: {'; '.join(ranks)}.")


# ---------------------------------------------------------------------------------------
# The document
# ---------------------------------------------------------------------------------------


def target_section(table: ex.TransferTable, seconds: float, cpu_seconds: float, assets: str) -> str:
    """One target's section; `assets`: the folder of the plots, relative to the document."""
    pool = ", ".join(f"{name} {count}" for name, count in table.pool_per_class.items())
    return "\n".join([
        f"## {table.target}: {table.description}",
        "",
        f"Labelled pool per class: {pool}. Test set: {table.test_size} images "
        f"({table.test_size // len(table.classes)} per class, fixed). Seeds {list(table.seeds)}; "
        f"{table.epochs} epochs / at least {table.min_steps} steps. "
        f"**Run time: {seconds:.0f} s wall ({seconds / 60:.1f} min), {cpu_seconds:.0f} s CPU.**",
        "",
        ex.to_markdown(table),
        "",
        f"![{table.target}]({assets}/transfer_{table.target}.png)",
        "",
    ])


def document(record: dict, tables: dict[str, ex.TransferTable], assets: str) -> str:
    """transfer.md from a run's record (see `measure`) and its tables; `assets`: the folder of
    the record and the plots, relative to the document."""
    timings = record["timings"]
    total = sum(wall for wall, _ in timings.values())
    sections = [target_section(tables[t], *timings[t], assets) for t in tables]
    mode = "FAST (smoke run: one seed, 1 epoch, small test set)" if record["fast"] else "full"
    return "\n".join([
        "# Transfer learning: when does the pretrained backbone help?",
        "",
        "Written by `scripts/run_transfer_experiment.py` (do not edit by hand: rerun it, or `--render` it from "
        f"the per-seed numbers in [transfer_results.json]({assets}/transfer_results.json)). "
        "The computation is `course_lib.experiment.transfer_experiment`; its docstring states every choice.",
        "",
        f"- Date: {record['date']}; mode: {mode}",
        f"- Machine: {record['machine']}",
        f"- Load average (1 min) before / after: {record['load_before']:.1f} / {record['load_after']:.1f} - the VM "
        "is shared with "
        "other jobs, so wall time exceeds CPU time; both are given.",
        f"- Total wall time, both targets: {total:.0f} s ({total / 60:.1f} min).",
        *([f"- Note: {record['note']}."] if "note" in record else []),
        "",
        "## Setup",
        "",
        "Backbone: `pretrained_backbone()`, a SmallCNN (conv 16-32-64, batch norm, 26k parameters) trained on "
        "4,112 MNIST digits 0-4. Each method replaces its 5-way head by a new `Linear(576, K)`:",
        "",
        "- **scratch**: the same architecture, random init, everything trained;",
        "- **linear_probe**: frozen backbone features (576-d) + logistic regression (scikit-learn, standardized);",
        "- **finetune_last**: last conv block + head train; the frozen blocks' BatchNorm stays in eval mode;",
        "- **finetune_all**: every layer trains;",
        f"- **lora**: rank-{ex.LORA_RANK} LoRA on the three convs + head; everything else (BatchNorm too) frozen.",
        "",
        f"Neural methods: Adam, lr {ex.LR:g}, cosine decay, batch {ex.BATCH_SIZE}, no augmentation, no early "
        "stopping; the final model is scored once on a fixed, held-out, class-balanced test set. "
        "Accuracy: mean over seeds, sample std (ddof=1) and min - max; the plots shade min - max. "
        "`s / run` is the mean wall time of one seed's run (training + evaluation; for the probe: feature "
        "extraction + fit + scoring). The texture patches are 28x28 cuts of scikit-image's greyscale "
        "brick / grass / gravel photos (no resize needed); test patches come from other places of the same "
        "photos.",
        "",
        *sections,
        "## When to transfer: what the numbers say",
        "",
        f"{ex.VERDICT_RULE} The slides' own advice is shown under each measured row; the slides leave very "
        "little data on a very different dataset empty (NA), so that cell has only the measured verdict.",
        "",
        ex.when_to_transfer_markdown(ex.when_to_transfer(list(tables.values()))),
        "",
        *[summary(tables[t]) for t in tables],
        "",
        "Caveats: one small backbone pretrained on 4k digits, not ImageNet; three seeds; one fixed test set; "
        "one training recipe for all methods, not tuned per method. Each texture class is one photo, and "
        "train and test patches are cut from the same photo, so a small CNN learns the three classes from "
        "scratch with few patches; read the \"different\" column as: features learnt on MNIST digits are "
        "the wrong features for these textures, not as a general law about pretrained networks.",
        "",
    ])


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------


def measure(targets, threads: int, fast: bool) -> dict:
    """Run every target; print each table. Returns the run's record (JSON-ready): date, machine,
    load before / after, fast, per target (wall s, CPU s) and the table as a dict."""
    record = {"date": datetime.date.today().isoformat(), "machine": machine_text(threads),
              "load_before": os.getloadavg()[0], "fast": fast, "timings": {}, "tables": {}}
    for target in targets:
        wall, cpu = time.perf_counter(), time.process_time()
        table = ex.transfer_experiment(target, fast=fast, num_threads=threads)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"\n## {target} ({wall:.0f} s wall, {cpu:.0f} s CPU)\n\n{ex.to_markdown(table)}", flush=True)
        record["timings"][target], record["tables"][target] = (wall, cpu), table.as_dict()
    record["load_after"] = os.getloadavg()[0]
    return record


def render(record: dict, out: Path, assets: Path) -> str:
    """Write `out`/transfer.md and `assets`/transfer_<target>.png from a run's record;
    return the "when to transfer" table."""
    tables = {target: ex.TransferTable.from_dict(table) for target, table in record["tables"].items()}
    out.mkdir(parents=True, exist_ok=True)
    assets.mkdir(parents=True, exist_ok=True)
    for target, table in tables.items():
        ex.plot_transfer(table).savefig(assets / f"transfer_{target}.png", **PNG)
    link = Path(os.path.relpath(assets.resolve(), out.resolve())).as_posix()
    (out / "transfer.md").write_text(document(record, tables, link))
    return ex.when_to_transfer_markdown(ex.when_to_transfer(list(tables.values())))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for transfer.md")
    parser.add_argument("--assets", type=Path, default=ROOT / "course_lib" / "assets" / "transfer",
                        help="folder for transfer_results.json and the plots (package data: lecture 03 reads them)")
    parser.add_argument("--targets", nargs="+", default=list(ex.TARGETS), choices=list(ex.TARGETS))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--fast", action="store_true", help="COURSE_FAST sizes (a smoke run, not for the docs)")
    parser.add_argument("--render", action="store_true",
                        help="run nothing: rewrite transfer.md and the plots from ASSETS/transfer_results.json")
    args = parser.parse_args(argv)
    results = args.assets / "transfer_results.json"
    if args.render:
        record = json.loads(results.read_text())
    else:
        args.assets.mkdir(parents=True, exist_ok=True)
        record = measure(args.targets, args.threads or torch.get_num_threads(), args.fast)
        results.write_text(json.dumps(record, indent=1) + "\n")
    print(f"\n{render(record, args.out, args.assets)}\n\nwrote {args.out / 'transfer.md'} and "
          f"{args.assets}/transfer_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
