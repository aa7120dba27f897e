"""`xinyong audit RUN_DIR`: metrics (with intervals), metrics.json and the HTML report.

A run directory made with `--replicates K` holds one run per seed under `replicates/`; the
audit then reports each metric's mean over the replicates with a 95% Student t interval
across seeds (`interval: across-seeds`). A single run's intervals come from within that run
(`interval: within-run`) and leave out run-to-run variation: the document says so.
The scheme-off world needed for the behaviour metrics is run once per run directory and kept
in its `baseline/` folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xinyong.atomic import locked
from xinyong.audit.metrics import ACROSS_SEEDS, INTERVAL_KINDS, WITHIN_RUN, audit_metrics
from xinyong.audit.metrics import baseline_scenario as baseline_scenario
from xinyong.errors import XinyongError
from xinyong.replicates import REPLICATES, combine, replicate_dirs
from xinyong.store import RunDir, write_json

__all__ = ["BASELINE", "REPLICATES", "audit", "audit_one", "replicate_dirs"]

BASELINE = "baseline"
SINGLE_RUN_WARNING = (
    "One run: its intervals come from within the run and leave out run-to-run variation. "
    "Run several seeds (xinyong run --replicates K, or xinyong compare --replicates K) "
    "before calling a difference real."
)


def audit_one(path: Path, baseline: bool = True) -> dict[str, Any]:
    """Audit metrics of one run directory (not a replicate folder)."""
    rd = RunDir(path)
    sc = rd.scenario()
    base_con = None
    if baseline:
        from xinyong.api import run

        base_dir = path / BASELINE
        if not (base_dir / "summary.json").exists():
            run(baseline_scenario(sc), base_dir, overwrite=True)
        base_con = RunDir(base_dir).connect(threads=1)
    # One thread: the same run gives the same metrics.json, byte for byte (parallel float
    # sums differ in their last digits).
    con = rd.connect(threads=1)
    return {"run": rd.summary(), **audit_metrics(con, sc, rd.meta(), base_con)}


def label_intervals(doc: dict[str, Any]) -> dict[str, Any]:
    """State in the document which kind of interval it gives, and warn for one run."""
    kind = ACROSS_SEEDS if doc.get("replicates", 1) > 1 else WITHIN_RUN
    doc["interval"] = kind
    doc["interval_meaning"] = INTERVAL_KINDS[kind]
    if kind == WITHIN_RUN:
        doc["warning"] = SINGLE_RUN_WARNING
    else:
        doc.pop("warning", None)
    return doc


def audit(
    path: str | Path,
    *,
    baseline: bool = True,
    report: bool = True,
    on_replicate: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Audit a run directory: write metrics.json (and report.html) into it; return the doc."""
    path = Path(path)
    RunDir(path)
    with locked(path):  # one writer of the run's derived files at a time
        docs = []
        for i, rep in enumerate(replicate_dirs(path)):
            docs.append(audit_one(rep, baseline))
            if on_replicate is not None:
                on_replicate(i)
        doc = label_intervals(combine(docs))
        # Whole or not at all: the report is written beside first, then metrics.json and the
        # report take their names; a failure leaves the run's files as they were.
        tmp = path / ".report.html.tmp"
        try:
            if report:
                from xinyong.audit.report import render_report

                render_report(doc, RunDir(replicate_dirs(path)[0]).table("daily"), tmp)
            write_json(path / "metrics.json", doc)
            if report:
                os.replace(tmp, path / "report.html")
                from xinyong.audit.cities import write_city_comparison

                write_city_comparison(replicate_dirs(path)[0])  # several cities: cities.html
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else exc.__class__.__name__
            raise XinyongError(
                f"cannot write the audit ({reason}); its files are as they were",
                file=exc.filename or path,
            ) from None
        finally:
            tmp.unlink(missing_ok=True)
    return doc
