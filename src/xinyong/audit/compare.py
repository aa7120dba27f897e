"""`xinyong compare RUN_A RUN_B`: every metric of a reform against its base, with intervals.

The interval of a difference combines the two runs' own intervals as independent
(se = half-width / 1.96 each); for a reform run with the same seed (common random numbers)
this is conservative. Metrics without an interval get none.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from xinyong.audit.audit import audit
from xinyong.audit.stats import Z95
from xinyong.store import read_json


def _doc(path: Path, baseline: bool) -> dict[str, Any]:
    file = path / "metrics.json"
    if file.exists():
        return read_json(file, "metrics.json")
    return audit(path, baseline=baseline, report=False)


def _rows_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Summary keys (intervals from replicates when present), overlaid by audit metrics."""
    rows: dict[str, dict[str, Any]] = {}
    intervals = doc["run"].get("intervals", {})
    for key, value in doc["run"].items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or key in ("seed", "replicates", "wall_seconds", "days", "adults", "children")
        ):
            continue
        low, high = intervals.get(key, [None, None])
        rows[key] = {"value": value, "low": low, "high": high, "meaning": "MODEL.md summary"}
    rows.update(doc["metrics"])
    return rows


def _se(row: dict[str, Any]) -> float | None:
    if row.get("low") is None or row.get("high") is None:
        return None
    return (row["high"] - row["low"]) / (2 * Z95)


def compare(a: str | Path, b: str | Path, *, baseline: bool = False) -> dict[str, Any]:
    a, b = Path(a), Path(b)
    da, db = _doc(a, baseline), _doc(b, baseline)
    ra, rb = _rows_of(da), _rows_of(db)
    rows = []
    for name in ra:
        if name not in rb:
            continue
        va, vb = ra[name]["value"], rb[name]["value"]
        diff = None if va is None or vb is None else vb - va
        sa, sb = _se(ra[name]), _se(rb[name])
        low = high = None
        if diff is not None and sa is not None and sb is not None:
            half = Z95 * math.sqrt(sa * sa + sb * sb)
            low, high = diff - half, diff + half
        rows.append(
            {
                "metric": name,
                "meaning": ra[name].get("meaning", ""),
                "a": va,
                "b": vb,
                "difference": diff,
                "low": low,
                "high": high,
                "significant": low is not None and (low > 0 or high < 0),
            }
        )

    def side(path: Path, doc: dict[str, Any]) -> dict[str, Any]:
        run = doc["run"]
        return {
            "path": str(path),
            "scenario": run.get("scenario"),
            "seed": run.get("seed"),
            "replicates": doc.get("replicates", 1),
        }

    return {"a": side(a, da), "b": side(b, db), "rows": rows}
