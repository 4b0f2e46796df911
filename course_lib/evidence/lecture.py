"""The evidence in a lecture: run a claim's fast experiment live, show the committed full run,
and say in words whether the two agree.

A lecture cell does

    live = lecture.run_live("dropout")             # the claim's FAST settings, seeds LIVE_SEEDS
    lecture.show(live)                              # the claim, the live and recorded tables, the
                                                    # computed verdict, the agreement, the figure

Nothing here hard-codes a verdict: the full run's verdict comes from `verdicts.judge` on
`course_lib/evidence/results/<claim>.json`, and the agreement compares the sign of each of the
live run's differences with the comparisons the full run decided (holds / does not hold).
A live run of one or two seeds says little on its own; what it can do is point the same way.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from course_lib.evidence import claim_module
from course_lib.evidence.report import summary_markdown
from course_lib.evidence.stats import FAILS, HOLDS
from course_lib.evidence.table import EvidenceTable, load_result
from course_lib.evidence.verdicts import judge, overall

LIVE_SEEDS = (0,)


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with `n` torch CPU threads (tiny models: one thread is fastest on a shared CPU)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_live(name: str, seeds=LIVE_SEEDS, threads: int = 1) -> EvidenceTable:
    """The claim's experiment with its FAST settings (the tests' settings), on `threads` threads."""
    with torch_threads(threads):
        return claim_module(name).run(seeds=seeds, fast=True)


def recorded(name: str) -> EvidenceTable:
    """The committed full run of claim `name` (course_lib/evidence/results/<name>.json)."""
    return load_result(name)


@dataclass(frozen=True)
class Agreement:
    """One comparison the full run made, and what the live run's difference says about it."""

    text: str
    full_verdict: str
    live_difference: float | None  # expected-higher minus expected-lower in the live run; None: not in it
    agrees: bool | None  # None when the full run decided nothing (inconclusive) or the live run lacks it

    def words(self) -> str:
        if self.live_difference is None:
            return f"{self.text}: full run {self.full_verdict}; not measured in the live run"
        live = f"live difference {self.live_difference:+.3f}"
        if self.agrees is None:
            return f"{self.text}: full run {self.full_verdict}; {live} (nothing to agree with)"
        return f"{self.text}: full run {self.full_verdict}; {live}: {'agrees' if self.agrees else 'DISAGREES'}"


def agreements(name: str, live: EvidenceTable, full: EvidenceTable | None = None) -> list[Agreement]:
    """Every comparison of the full run with the live run's difference and whether its sign agrees
    (holds: live difference > 0; does not hold: < 0)."""
    module = claim_module(name)
    full = recorded(name) if full is None else full
    live_comparisons = {c.text: c for c in module.comparisons(live)}
    found = []
    for judged in judge(full, module.comparisons(full)):
        comparison = live_comparisons.get(judged.comparison.text)
        difference = _difference(comparison, live)
        decided = judged.verdict in (HOLDS, FAILS) and difference is not None
        agrees = ((difference > 0) == (judged.verdict == HOLDS)) if decided else None
        found.append(Agreement(judged.comparison.text, judged.verdict, difference, agrees))
    return found


def agreement_summary(found: list[Agreement]) -> str:
    """One sentence: how many of the comparisons the full run decided the live run points the same way on."""
    decided = [a for a in found if a.agrees is not None]
    if not decided:
        return "The full run decided none of these comparisons, so the live run has nothing to agree or disagree with."
    agree = sum(a.agrees for a in decided)
    verdict = "agrees with" if agree == len(decided) else "partly disagrees with" if agree else "disagrees with"
    return (f"The live run {verdict} the full run: on {agree} of the {len(decided)} comparisons the full run decided, "
            f"its difference points the same way.")


def full_verdict(name: str, full: EvidenceTable | None = None) -> str:
    """The full run's one-line verdict (as in docs/evidence.md)."""
    full = recorded(name) if full is None else full
    return overall(judge(full, claim_module(name).comparisons(full)))


def report_markdown(name: str, live: EvidenceTable) -> str:
    """Markdown: the claim, the live run's table and the recorded full run's table (mean, 95% interval)."""
    module, full = claim_module(name), recorded(name)
    metrics = module.table_metrics(full)
    return "\n\n".join([
        f"**Claim.** {module.CLAIM}",
        f"**Live run** (fast settings, seeds {list(live.seeds())}, {live.seconds:.0f} s):",
        summary_markdown(live, [m for m in metrics if m in live.metrics()]),
        f"**Recorded full run** ({len(full.seeds())} seeds, {full.setup.get('date', '?')}; mean and 95% interval):",
        summary_markdown(full, metrics),
    ])


def verdict_text(name: str, live: EvidenceTable) -> str:
    """Plain text: the full run's verdict, each comparison with the live run's difference, and the agreement."""
    full = recorded(name)
    found = agreements(name, live, full)
    return "\n".join([f"{name}: full-run verdict: {full_verdict(name, full)}"]
                     + [f"  - {a.words()}" for a in found] + [agreement_summary(found)])


def show(live: EvidenceTable):
    """In a notebook: display `report_markdown`, print `verdict_text`, display the full run's figure."""
    from IPython.display import Markdown, display

    name = live.claim
    display(Markdown(report_markdown(name, live)))
    print(verdict_text(name, live))
    figure = claim_module(name).plot(recorded(name))
    display(figure)
    return figure


def _difference(comparison, live: EvidenceTable) -> float | None:
    if comparison is None:
        return None
    try:
        return comparison.difference(live)
    except KeyError:
        return None
