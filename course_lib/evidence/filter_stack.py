"""Claim: a stack of 3x3 convolutions sees as far as one large filter with fewer parameters,
and is at least as accurate.

Setup: two CNNs that differ in one place. Both start with a 3x3 conv (1 -> C channels) + ReLU
and end with 4x4 max-pooling and one linear layer; in between, either three 3x3 convs
(C -> C, each + ReLU) or one 7x7 conv (C -> C) + ReLU. Both reach a 9x9 receptive field
(checked with `arithmetic.receptive_field`); `arithmetic.summarize` counts parameters and
MACs. Trained with Adam (lr 3e-3, batch 25) for `epochs` passes over `per_class` MNIST images
per class drawn with the seed. Metrics: `test_accuracy`, `parameters`, `macs`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from torch import nn

from course_lib.arithmetic import receptive_field, summarize
from course_lib.device import seed_everything
from course_lib.evidence import plotting
from course_lib.evidence._common import draw, mnist_split, score, train
from course_lib.evidence.table import EvidenceTable, Record, run_table
from course_lib.evidence.verdicts import Comparison

NAME = "filter_stack"
TITLE = "Three 3x3 convolutions against one 7x7"
CLAIM = ("A stack of three 3x3 conv layers has the receptive field of one 7x7 layer with fewer parameters "
         "(27 C^2 against 49 C^2) and more non-linearities.")
BODIES = ("3 x 3x3", "1 x 7x7")
CHANNELS = 8
INPUT = (1, 28, 28)


@dataclass(frozen=True)
class Settings:
    per_class: int = 100
    epochs: int = 3
    batch_size: int = 25
    lr: float = 3e-3
    test_size: int = 1000


FULL = Settings()
FAST = replace(FULL, per_class=30, epochs=3, test_size=400)


def build(body: str, channels: int = CHANNELS) -> nn.Sequential:
    """stem conv 3x3 (1 -> C) + ReLU, the body, 4x4 max-pool, linear: (N, 1, 28, 28) -> (N, 10)."""
    if body == "3 x 3x3":
        layers = [m for _ in range(3) for m in (nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())]
    elif body == "1 x 7x7":
        layers = [nn.Conv2d(channels, channels, 7, padding=3), nn.ReLU()]
    else:
        raise ValueError(f"unknown body {body!r}; choose one of {BODIES}")
    return nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), *layers, nn.MaxPool2d(4), nn.Flatten(),
                         nn.Linear(channels * 7 * 7, 10))


def last_conv_field(model: nn.Sequential) -> int:
    """Receptive field (pixels) of the last conv layer's output."""
    convs = [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
    return receptive_field(model, INPUT)[convs[-1]].size[0]


def run(seeds=range(5), fast: bool = False, device=None) -> EvidenceTable:
    s = FAST if fast else FULL
    split = mnist_split(s.test_size)
    counts = {body: summarize(build(body), INPUT) for body in BODIES}
    fields = {body: last_conv_field(build(body)) for body in BODIES}

    def one_seed(seed: int) -> list[Record]:
        x, y = draw(split.pool, s.per_class, seed)
        records = []
        for body in BODIES:
            seed_everything(seed)
            model = build(body)
            train(model, x, y, epochs=s.epochs, batch_size=s.batch_size, optimizer="adam", lr=s.lr, seed=seed,
                  device=device)
            records += [Record(body, seed, "test_accuracy", score(model, split.test_x, split.test_y)[1]),
                        Record(body, seed, "parameters", counts[body].total_params),
                        Record(body, seed, "macs", counts[body].total_macs)]
        return records

    return run_table(NAME, seeds, one_seed, dict(vars(s), fast=fast, channels=CHANNELS, receptive_field=fields))


def comparisons(table: EvidenceTable) -> list[Comparison]:
    return [Comparison("parameters: 7x7 above the 3x3 stack", ("1 x 7x7", "parameters"), ("3 x 3x3", "parameters")),
            Comparison("test accuracy: 3x3 stack above 7x7", ("3 x 3x3", "test_accuracy"),
                       ("1 x 7x7", "test_accuracy"))]


def table_metrics(table: EvidenceTable) -> list[str]:
    return ["test_accuracy", "parameters", "macs"]


def plot(table: EvidenceTable):
    """Test accuracy (95% intervals) and parameter counts of the two bodies."""
    fig, (acc, params) = plotting.figure(ncols=2, width=4.2)
    plotting.interval_points(acc, table, list(BODIES), "test_accuracy")
    acc.set_ylabel("test accuracy")
    acc.set_title(f"same {table.setup['receptive_field'][BODIES[0]]}x{table.setup['receptive_field'][BODIES[0]]} "
                  f"receptive field ({plotting.caption(table)})", fontsize=9)
    counts = [table.values(body, "parameters")[0] for body in BODIES]
    params.bar(list(BODIES), counts, color=["tab:blue", "tab:orange"])
    for x, count in enumerate(counts):
        params.text(x, count, f"{int(count):,}", ha="center", va="bottom", fontsize=8)
    params.set_ylabel("parameters (whole network)")
    params.set_title("parameters", fontsize=9)
    return fig
