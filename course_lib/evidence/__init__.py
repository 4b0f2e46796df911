"""The lecture's empirical claims, measured: one module per claim.

Each module has `NAME`, `TITLE`, `CLAIM` (the lecture's words), `run(seeds, fast, device)`
returning an `EvidenceTable` of (condition, seed, metric, value) records, `comparisons(table)`
(what the claim expects, judged by 95% interval overlap in `verdicts.judge`),
`table_metrics(table)` (the metrics worth a table) and `plot(table)` (only draws).
`scripts/run_evidence.py` runs them all and writes docs/evidence.md; the full-run tables
are committed under `course_lib/evidence/results/` and read back with `table.load_result`.
"""

import importlib

CLAIM_MODULES = ("batchnorm", "dropout", "augmentation", "tta", "init_gradients", "razavian", "tsne_codes",
                 "label_noise", "optimizers", "filter_stack", "first_filters", "detection")


def claim_module(name: str):
    """The module of claim `name` (imported on demand: no torch work at import time)."""
    if name not in CLAIM_MODULES:
        raise ValueError(f"unknown claim {name!r}; choose one of: {', '.join(CLAIM_MODULES)}")
    return importlib.import_module(f"course_lib.evidence.{name}")
