"""Run the lecture's transfer experiment in full mode and write docs/transfer.md and its plots.

    .venv/bin/python scripts/run_transfer_experiment.py              # both targets, full mode
    .venv/bin/python scripts/run_transfer_experiment.py --fast       # smoke run (COURSE_FAST sizes)
    .venv/bin/python scripts/run_transfer_experiment.py --out /tmp/t # write somewhere else

Runs `course_lib.experiment.transfer_experiment` for the "similar" (MNIST 5-9) and the
"different" (textures) target with its defaults (5 methods x 5/10/50/all labels per class
x seeds 0, 1, 2), prints each table as markdown, saves `docs/images/transfer_<target>.png`
and writes `docs/transfer.md`: setup, machine, torch version, measured seconds, the tables
and the slides' "when to transfer" table filled in from the numbers by a stated rule.
One torch thread by default (`--threads`): the course's 2-core machines are often shared,
and two threads on a busy 2-core machine run far slower than one. Full mode, measured on
the shared 2-core VM: 160 + 105 s of CPU time, 5.3 min of wall time at load ~3 (9.4 min
at load ~4.5); see docs/transfer.md.
"""

from __future__ import annotations

import argparse
import datetime
import math
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
from course_lib.device import get_device  # noqa: E402

PNG = dict(dpi=110, metadata={"Software": None})  # no version stamp: reruns give the same bytes
SMALL, LARGE = 5, None  # "very little data" and "quite a lot of data" rows of the slide
# Cheapest first (trainable parameters; scratch last: it throws the backbone away).
COST_ORDER = ("linear_probe", "lora", "finetune_last", "finetune_all", "scratch")
ADVICE = {
    "linear_probe": "linear classifier on the top layer (frozen features)",
    "lora": "LoRA adapters on every conv + new head",
    "finetune_last": "fine-tune the last conv block + new head",
    "finetune_all": "fine-tune all layers",
    "scratch": "train from scratch",
}
SLIDE = {  # the textbook table (cs231n-style slide) the lecture shows
    ("small", "similar"): "use a linear classifier on the top layer",
    ("small", "different"): "you're in trouble - try linear classifiers from different stages",
    ("large", "similar"): "fine-tune a few layers",
    ("large", "different"): "fine-tune a larger number of layers",
}


# ---------------------------------------------------------------------------------------
# Machine facts
# ---------------------------------------------------------------------------------------


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_text(threads: int) -> str:
    return (f"{os.cpu_count()}-core {platform.machine()} CPU ({cpu_name()}), {platform.system()}, "
            f"torch {torch.__version__} on {get_device()}, {threads} torch thread(s), Python {platform.python_version()}")


# ---------------------------------------------------------------------------------------
# Reading the numbers
# ---------------------------------------------------------------------------------------


def noise(best: ex.TransferRow, row: ex.TransferRow, test_size: int) -> float:
    """How far below the best a mean may be and still count as a tie: the larger of the two
    rows' seed std and two binomial standard errors of the best accuracy on the test set."""
    p = best.accuracy_mean
    return max(best.accuracy_std, row.accuracy_std, 2 * math.sqrt(p * (1 - p) / test_size))


def ties(table: ex.TransferTable, n) -> list[ex.TransferRow]:
    """Rows at label count `n` whose mean is within `noise` of the best mean, best first."""
    rows = sorted((table.row(m, n) for m in table.methods), key=lambda r: -r.accuracy_mean)
    best = rows[0]
    return [r for r in rows if best.accuracy_mean - r.accuracy_mean <= noise(best, r, table.test_size) + 1e-12]


def verdict(table: ex.TransferTable, n) -> str:
    """One slide cell: the cheapest method tied with the best, and the numbers behind it."""
    tied = ties(table, n)
    pick = min(tied, key=lambda r: COST_ORDER.index(r.method))
    rest = sorted((table.row(m, n) for m in table.methods if table.row(m, n) not in tied),
                  key=lambda r: -r.accuracy_mean)
    listing = lambda rows: ", ".join(f"{r.method} {r.accuracy_mean:.3f}" for r in rows) or "none"  # noqa: E731
    return (f"**{ADVICE[pick.method]}** ({pick.trainable_parameters:,} trainable). Within noise of the best: "
            f"{listing(tied)}; below: {listing(rest)}. Best pretrained vs scratch: {gain(table, n):+.3f}.")


def gain(table: ex.TransferTable, n) -> float:
    """Mean accuracy of the best pretrained method minus scratch's, at label count `n`."""
    pretrained = [table.row(m, n).accuracy_mean for m in table.methods if m != "scratch"]
    return max(pretrained) - table.row("scratch", n).accuracy_mean


def summary(table: ex.TransferTable) -> str:
    """Two generated sentences: the pretraining gain and the best / worst method per label count."""
    counts = table.labels_per_class
    gains = ", ".join(f"{ex.labels_text(n)}: {gain(table, n):+.3f}" for n in counts)
    ranks = []
    for n in counts:
        rows = sorted((table.row(m, n) for m in table.methods), key=lambda r: -r.accuracy_mean)
        ranks.append(f"{ex.labels_text(n)}: {rows[0].method} / {rows[-1].method}")
    return (f"- **{table.target}** - best pretrained method minus scratch, by labels per class: {gains}. "
            f"Best / worst method: {'; '.join(ranks)}.")


def when_to_transfer(tables: dict[str, ex.TransferTable]) -> str:
    """The slide's 2 x 2 table (data size x similarity), one verdict per cell, slide advice below."""
    header = "| | similar dataset (MNIST 5-9) | very different dataset (textures) |\n|---|---|---|"
    lines = [header]
    for key, n, name in (("small", SMALL, f"very little data ({SMALL} labels / class)"),
                         ("large", LARGE, "quite a lot of data (all labels)")):
        cells = [verdict(tables[t], n) if t in tables else "not run" for t in ("similar", "different")]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
        slide = [SLIDE[(key, t)] for t in ("similar", "different")]
        lines.append(f"| *the slide says* | *{slide[0]}* | *{slide[1]}* |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# The document
# ---------------------------------------------------------------------------------------


def target_section(table: ex.TransferTable, seconds: float, cpu_seconds: float) -> str:
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
        f"![{table.target}](images/transfer_{table.target}.png)",
        "",
    ])


def document(tables, timings, threads: int, load_before, load_after, fast: bool) -> str:
    total = sum(wall for wall, _ in timings.values())
    sections = [target_section(tables[t], *timings[t]) for t in tables]
    mode = "FAST (smoke run: one seed, 1 epoch, small test set)" if fast else "full"
    return "\n".join([
        "# Transfer learning: when does the pretrained backbone help?",
        "",
        "Written by `scripts/run_transfer_experiment.py` (do not edit by hand: rerun it). "
        "The computation is `course_lib.experiment.transfer_experiment`; its docstring states every choice.",
        "",
        f"- Date: {datetime.date.today().isoformat()}; mode: {mode}",
        f"- Machine: {machine_text(threads)}",
        f"- Load average (1 min) before / after: {load_before:.1f} / {load_after:.1f} - the VM is shared with "
        "other jobs, so wall time exceeds CPU time; both are given.",
        f"- Total wall time, both targets: {total:.0f} s ({total / 60:.1f} min).",
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
        "Rule for each cell: among the methods whose mean is within noise of the best (noise = the larger of "
        "the two rows' seed std and two binomial standard errors of the best accuracy on the test set), pick "
        "the cheapest (fewest trainable parameters; scratch counts as most expensive since it discards the "
        "backbone). The slide's textbook advice is shown under each row.",
        "",
        when_to_transfer(tables),
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


def run_target(target: str, threads: int, fast: bool, images: Path):
    """Run one target; print its table; save its plot. Returns (table, wall s, CPU s)."""
    wall, cpu = time.perf_counter(), time.process_time()
    table = ex.transfer_experiment(target, fast=fast, num_threads=threads)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"\n## {target} ({wall:.0f} s wall, {cpu:.0f} s CPU)\n\n{ex.to_markdown(table)}", flush=True)
    ex.plot_transfer(table).savefig(images / f"transfer_{target}.png", **PNG)
    return table, wall, cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for transfer.md and images/")
    parser.add_argument("--targets", nargs="+", default=list(ex.TARGETS), choices=list(ex.TARGETS))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--fast", action="store_true", help="COURSE_FAST sizes (a smoke run, not for the docs)")
    args = parser.parse_args(argv)
    threads = args.threads or torch.get_num_threads()
    images = args.out / "images"
    images.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    tables, timings = {}, {}
    for target in args.targets:
        table, wall, cpu = run_target(target, threads, args.fast, images)
        tables[target], timings[target] = table, (wall, cpu)
    text = document(tables, timings, threads, load_before, os.getloadavg()[0], args.fast)
    (args.out / "transfer.md").write_text(text)
    print(f"\n{when_to_transfer(tables)}\n\nwrote {args.out / 'transfer.md'} and {images}/transfer_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
