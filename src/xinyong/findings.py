"""Findings from Python: `xinyong.audit(run)`, `xinyong.compare(a, b)`, `xinyong.explain(run, i)`.

Each returns a typed object over the same document the command line writes (`.doc`), with
its tables as pandas DataFrames:

    import xinyong
    run = xinyong.run(xinyong.load_scenario("s1", adults=20_000), out="runs/s1")
    audit = xinyong.audit(run)                 # or a run directory's path
    audit.metrics.loc["ever_wrongly_listed_share.blacklist", ["value", "count"]]
    audit.disparity[audit.disparity.flag]
    xinyong.compare("runs/s1", "runs/reform", replicates=4).table   # paired by seed
    xinyong.explain(run, 84656).verdict
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from xinyong.api import Run
from xinyong.api import run as run_scenario

RunLike = Run | str | Path


def _path(run: RunLike) -> Path | None:
    if isinstance(run, Run):
        return run.path
    return Path(run)


@dataclass(frozen=True)
class _Document:
    doc: dict[str, Any] = field(repr=False)

    @property
    def interval(self) -> str:
        """Kind of interval: 'within-run' (one run: nothing is called significant),
        'across-seeds' (replicates) or 'paired-seeds' (a comparison paired by seed)."""
        return str(self.doc.get("interval"))

    @property
    def warning(self) -> str | None:
        return self.doc.get("warning")


@dataclass(frozen=True)
class Audit(_Document):
    """An audit: every metric with its interval (and the kind of interval), the group
    comparisons, and the plain-language key findings."""

    @property
    def metrics(self) -> pd.DataFrame:
        """One row per metric (index: its name): value, low, high, interval, count, of,
        meaning, maps_to."""
        rows = [{"metric": name, **row} for name, row in self.doc["metrics"].items()]
        cols = ["metric", "value", "low", "high", "interval", "count", "of", "meaning", "maps_to"]
        frame = pd.DataFrame(rows)
        return frame.reindex(columns=cols + [c for c in frame.columns if c not in cols]).set_index(
            "metric"
        )

    @property
    def disparity(self) -> pd.DataFrame:
        """One row per group comparison, with the counts behind it and its status."""
        return pd.DataFrame(self.doc.get("disparity") or [])

    @property
    def key_findings(self) -> list[str]:
        """The report's opening sentences."""
        import re

        from xinyong.audit.report import key_findings

        return [re.sub(r"<[^>]+>", "", text) for text, _, _ in key_findings(self.doc)]

    def __getitem__(self, name: str) -> Any:
        """A metric's value."""
        return self.doc["metrics"][name]["value"]


@dataclass(frozen=True)
class Comparison(_Document):
    """A reform (B) against its base (A): one row per metric."""

    @property
    def table(self) -> pd.DataFrame:
        """metric (index), a, b, difference, low, high, kind, significant, seeds, meaning."""
        from xinyong.audit.compare import comparison_table

        return pd.DataFrame(comparison_table(self.doc)).set_index("metric")

    @property
    def parameters(self) -> pd.DataFrame:
        """The scenario keys that differ: key, a, b."""
        return pd.DataFrame(self.doc.get("parameters") or [], columns=["key", "a", "b"])

    @property
    def significant(self) -> list[str]:
        """Metrics whose across-seed interval of B - A excludes 0."""
        return [r["metric"] for r in self.doc["rows"] if r["significant"]]

    def write(self, out: str | Path) -> dict[str, Path]:
        """Write compare.html, .csv and .json into folder `out` (or next to an .html path)."""
        from xinyong.audit.compare import outputs, write_comparison

        files = outputs(Path(out), out)
        write_comparison(self.doc, files)
        return files


@dataclass(frozen=True)
class Explanation:
    """One adult's story: the verdict, the records that mattered, the spells and why."""

    doc: dict[str, Any] = field(repr=False)

    @property
    def verdict(self) -> str:
        return str(self.doc["story"]["verdict"])

    @property
    def routine(self) -> str:
        """The one-line summary of the routine positive records."""
        return str(self.doc["story"]["routine"])

    @property
    def records(self) -> pd.DataFrame:
        """Every record against the adult."""
        return pd.DataFrame(self.doc["records"])

    @property
    def mattered(self) -> pd.DataFrame:
        """The records that mattered (negative, wrong or list-changing)."""
        keep = set(self.doc["story"]["mattered"])
        return pd.DataFrame([r for r in self.doc["records"] if r["record_id"] in keep])

    @property
    def spells(self) -> pd.DataFrame:
        """Recorded list spells with why each happened (through the shadow world)."""
        return pd.DataFrame(self.doc["story"]["spells"])

    def write_html(self, path: str | Path) -> None:
        """The timeline page `xinyong explain --html` writes."""
        from xinyong.audit.explain import render_html

        render_html(self.doc, path)


def audit(run: RunLike, *, baseline: bool = True, report: bool = False) -> Audit:
    """Audit a run (a Run, in memory or on disk, or a run directory's path). On disk this
    writes metrics.json (and report.html with `report=True`), as `xinyong audit` does."""
    from xinyong.audit.audit import audit as audit_dir
    from xinyong.audit.audit import label_intervals
    from xinyong.audit.metrics import audit_metrics, baseline_scenario

    path = _path(run)
    if path is not None:
        return Audit(audit_dir(path, baseline=baseline, report=report))
    if not isinstance(run, Run):
        raise TypeError("audit takes a Run or a run directory's path")
    # One thread: the same metrics as the audit of the run's directory, to the last digit.
    base = None
    if baseline:
        base = run_scenario(baseline_scenario(run.scenario)).connect(threads=1)
    metrics = audit_metrics(run.connect(threads=1), run.scenario, run.meta, base)
    return Audit(label_intervals({"run": run.summary, "replicates": 1, **metrics}))


def compare(
    a: RunLike,
    b: RunLike,
    *,
    replicates: int | None = None,
    baseline: bool = False,
    out: str | Path | None = None,
) -> Comparison:
    """B (the reform) against A (the base). Run directories may be compared `replicates`
    seeds each, paired by seed (the missing seeds are run into OUT or B's folder); two
    in-memory runs are compared run against run (within-run intervals)."""
    from xinyong.audit import compare as cmp

    pa_, pb_ = _path(a), _path(b)
    if pa_ is not None and pb_ is not None:
        return Comparison(cmp.compare(pa_, pb_, baseline=baseline, replicates=replicates, out=out))
    if replicates:
        raise ValueError("compare with replicates needs run directories (run(..., out=...))")
    ra, rb = (x if isinstance(x, Run) else Run.open(x) for x in (a, b))
    da, db = audit(ra, baseline=baseline).doc, audit(rb, baseline=baseline).doc
    params = cmp.scenario_differences(
        ra.scenario.model_dump(mode="json"), rb.scenario.model_dump(mode="json")
    )
    sides = [
        cmp.side_of_docs("A (in memory)", {ra.summary["seed"]: da}),
        cmp.side_of_docs("B (in memory)", {rb.summary["seed"]: db}),
    ]
    return Comparison(cmp.compare_sides(*sides, params))


def explain(run: RunLike, person: int | None = None, **member: int) -> Any:
    """One adult's story from a run directory (a Run written with `out=`, or its path), or,
    with KIND=ID, the story of a member of another entity kind a module adds (`company=12`:
    a companies.explain.CompanyExplanation)."""
    from xinyong.audit.hooks import explainer

    path = _path(run)
    if path is None:
        raise ValueError("explain reads a run directory: run the scenario with out=...")
    if (person is None) == (len(member) != 1):
        raise ValueError("explain takes an adult id or one KIND=ID, e.g. company=12")
    if member:
        ((kind, ident),) = member.items()
        teller = explainer(kind)
        doc = teller.explain(path, ident)
        return doc if teller.wrap is None else teller.wrap(doc)
    return Explanation(explainer("adult").explain(path, person))


__all__ = [
    "Audit",
    "Comparison",
    "Explanation",
    "audit",
    "compare",
    "explain",
]
