"""The tidy table every evidence experiment returns: one `Record` per (condition, seed, metric).

`EvidenceTable` holds the records of one claim with the setup that produced them (sizes,
seeds, steps, fast or full) and the wall time; it summarizes any (condition, metric) as a
mean with a 95% t interval over seeds (`stats.mean_interval`) and round-trips through
JSON, so a full run can be committed and read back by lectures and tests.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from course_lib.evidence.stats import Interval, mean_interval

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Record:
    """One measured number: `metric` of `condition` in the run with `seed`."""

    condition: str
    seed: int
    metric: str
    value: float


@dataclass
class EvidenceTable:
    """All records of one claim's experiment, with its setup and wall time (seconds)."""

    claim: str
    records: list[Record]
    setup: dict = field(default_factory=dict)
    seconds: float = 0.0

    def conditions(self) -> list[str]:
        """Conditions in the order they first appear."""
        return list(dict.fromkeys(r.condition for r in self.records))

    def metrics(self) -> list[str]:
        """Metrics in the order they first appear."""
        return list(dict.fromkeys(r.metric for r in self.records))

    def seeds(self) -> list[int]:
        return sorted({r.seed for r in self.records})

    def values(self, condition: str, metric: str) -> list[float]:
        """The values of (condition, metric), in seed order; KeyError naming what exists if none."""
        rows = sorted((r for r in self.records if r.condition == condition and r.metric == metric),
                      key=lambda r: r.seed)
        if not rows:
            raise KeyError(f"no records for condition={condition!r}, metric={metric!r} in {self.claim!r}; "
                           f"conditions: {self.conditions()}, metrics: {self.metrics()}")
        return [r.value for r in rows]

    def interval(self, condition: str, metric: str, confidence: float = 0.95) -> Interval:
        """Mean and t interval over seeds of (condition, metric)."""
        return mean_interval(self.values(condition, metric), confidence)

    def summary(self, metrics: Iterable[str] | None = None) -> list[dict]:
        """One dict per (condition, metric): condition, metric, mean, low, high, n."""
        rows = []
        for metric in metrics if metrics is not None else self.metrics():
            for condition in self.conditions():
                if any(r.condition == condition and r.metric == metric for r in self.records):
                    ci = self.interval(condition, metric)
                    rows.append({"condition": condition, "metric": metric, "mean": ci.mean, "low": ci.low,
                                 "high": ci.high, "n": ci.n})
        return rows

    def to_json(self) -> str:
        return json.dumps({"claim": self.claim, "setup": self.setup, "seconds": self.seconds,
                           "records": [asdict(r) for r in self.records]}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> EvidenceTable:
        data = json.loads(text)
        return cls(data["claim"], [Record(**r) for r in data["records"]], data["setup"], data["seconds"])

    def save(self, directory: Path | str = RESULTS_DIR) -> Path:
        """Write `<directory>/<claim>.json`; returns the path."""
        path = Path(directory) / f"{self.claim}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n")
        return path


def load_result(claim: str, directory: Path | str = RESULTS_DIR) -> EvidenceTable:
    """The committed full-run table of `claim` (FileNotFoundError says how to make it)."""
    path = Path(directory) / f"{claim}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run `python scripts/run_evidence.py --only {claim}` to make it")
    return EvidenceTable.from_json(path.read_text())


def run_table(claim: str, seeds: Iterable[int], one_seed: Callable[[int], list[Record]], setup: dict) -> EvidenceTable:
    """Call `one_seed(seed)` for every seed and gather its records into a timed table.

    setup is stored with the seeds, the Python version and the machine (platform string).
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty; pass at least one seed, e.g. seeds=range(5)")
    start = time.perf_counter()
    records = [record for seed in seeds for record in one_seed(seed)]
    setup = dict(setup, seeds=seeds, python=platform.python_version(), machine=platform.machine())
    return EvidenceTable(claim, records, setup, time.perf_counter() - start)
