"""`xinyong audit RUN_DIR`: metrics (with intervals), metrics.json and the HTML report.

A run directory made with `--replicates K` holds one run per seed under `replicates/`; the
audit then reports each metric's mean over the replicates with a 95% Student t interval.
The scheme-off world needed for the behaviour metrics is run once per run directory and kept
in its `baseline/` folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xinyong.atomic import locked
from xinyong.audit import stats
from xinyong.audit.metrics import audit_metrics, baseline_scenario, disparity_row
from xinyong.errors import XinyongError
from xinyong.scenario import load_scenario
from xinyong.store import RunDir, write_json

REPLICATES = "replicates"
BASELINE = "baseline"


def replicate_dirs(path: Path) -> list[Path]:
    """The run directories a path stands for: its replicates (each checked), or itself."""
    return RunDir(path).replicate_dirs()


def audit_one(path: Path, baseline: bool = True) -> dict[str, Any]:
    rd = RunDir(path)
    if not (path / "summary.json").exists():
        raise XinyongError("the run did not finish (no summary.json)", file=path)
    sc = load_scenario(path / "scenario.yaml")
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


def combine(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """One document over replicates: each metric's mean with a t interval; curves, matrices
    and tables are those of the first replicate."""
    doc = dict(docs[0])
    doc["replicates"] = len(docs)
    if len(docs) == 1:
        return doc
    doc["run"] = combine_summaries([d["run"] for d in docs])
    metrics = {}
    for name, row in docs[0]["metrics"].items():
        v, lo, hi = stats.mean_interval([d["metrics"].get(name, {}).get("value") for d in docs])
        metrics[name] = {**row, "value": v, "low": lo, "high": hi}
    doc["metrics"] = metrics
    disparity = []
    for i, row in enumerate(docs[0]["disparity"]):
        same = [d["disparity"][i] for d in docs if i < len(d["disparity"])]
        r, lo, hi = stats.mean_interval([s["ratio"] for s in same])
        value = stats.mean_interval([s["value"] for s in same])[0]
        ref = stats.mean_interval([s["reference_value"] for s in same])[0]
        disparity.append(
            disparity_row(row["metric"], row["group"], row["reference"], value, ref, r, lo, hi)
        )
    doc["disparity"] = disparity
    return doc


def combine_summaries(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each numeric summary key over replicates, with `intervals` {key: [low, high]}."""
    out: dict[str, Any] = {}
    intervals: dict[str, list] = {}
    for key, value in summaries[0].items():
        if isinstance(value, bool) or not isinstance(value, int | float) or key == "seed":
            out[key] = value
            continue
        m, lo, hi = stats.mean_interval([s.get(key) for s in summaries])
        out[key] = m
        intervals[key] = [lo, hi]
    out["seeds"] = [s.get("seed") for s in summaries]
    out["replicates"] = len(summaries)
    out["intervals"] = intervals
    return out


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
        doc = combine(docs)
        write_json(path / "metrics.json", doc)
        if report:
            from xinyong.audit.report import render_report

            # Written beside, then renamed: a reader never sees half a report.
            tmp = path / ".report.html.tmp"
            render_report(doc, RunDir(replicate_dirs(path)[0]).table("daily"), tmp)
            os.replace(tmp, path / "report.html")
    return doc
