"""`xinyong sweep SCENARIO --set KEY=V1,V2,... --replicates K`: a grid of reforms.

Every grid point (each combination of the values given) is run with the same K seeds
(seed, seed+1, ...), so neighbouring points share their random draws (common random
numbers). Each point is a replicate run directory under OUT/points/; the sweep writes
sweep.json, sweep.csv (one row per point and metric: mean and 95% interval across seeds)
and sweep.html (one curve per key metric, with its intervals).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xinyong.audit.compare import KEY_METRICS, flat_rows
from xinyong.errors import XinyongError
from xinyong.replicates import REPLICATES, combine_summaries, run_jobs
from xinyong.scenario import Scenario
from xinyong.store import prepare_dir, write_json


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the first key varying slowest."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def _slug(i: int, point: dict[str, Any]) -> str:
    text = ",".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in point.items())
    return f"{i:02d}-" + re.sub(r"[^A-Za-z0-9_.=,-]", "_", text)[:80]


def sweep(
    scenario: Scenario,
    grid: dict[str, list[Any]],
    out: str | Path,
    *,
    replicates: int = 2,
    overwrite: bool = False,
    workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
    metrics: tuple[str, ...] = KEY_METRICS,
) -> dict[str, Any]:
    """Run the grid and audit each point (no scheme-off baseline); return the sweep document
    and write sweep.json, sweep.csv and sweep.html into `out`."""
    from xinyong.audit.audit import audit
    from xinyong.audit.report import csv_text, render_sweep

    if not grid or any(not values for values in grid.values()):
        raise XinyongError("a sweep needs at least one --set KEY=V1,V2,...", field="--set")
    path = Path(out)
    prepare_dir(path, overwrite)
    (path / "scenario.yaml").write_text(scenario.to_yaml())  # the base: marks it replaceable
    points = grid_points(grid)
    seeds = [scenario.seed + i for i in range(replicates)]
    scenarios, folders, jobs = [], [], []
    for i, point in enumerate(points):
        sc = scenario.with_(**point)
        folder = path / "points" / _slug(i, point)
        folder.mkdir(parents=True)
        (folder / "scenario.yaml").write_text(sc.to_yaml())
        scenarios.append(sc)
        folders.append(folder)
        jobs += [(sc.with_(seed=s), folder / REPLICATES / f"seed-{s}") for s in seeds]
    summaries = run_jobs(jobs, workers=workers, on_done=on_done)
    rows: list[dict[str, Any]] = []
    out_points = []
    for i, (point, folder) in enumerate(zip(points, folders, strict=True)):
        write_json(
            folder / "summary.json",
            combine_summaries(summaries[i * replicates : (i + 1) * replicates]),
        )
        flat = flat_rows(audit(folder, baseline=False, report=False))
        picked = {}
        for name in metrics:
            row = flat.get(name)
            if row is None:
                continue
            picked[name] = {k: row.get(k) for k in ("value", "low", "high", "interval")}
            rows.append(
                {**point, "metric": name, **picked[name], "seeds": replicates, "point": folder.name}
            )
        out_points.append({"values": point, "folder": str(folder), "metrics": picked})
    doc = {
        "scenario": scenario.name,
        "keys": list(grid),
        "grid": grid,
        "replicates": replicates,
        "seeds": seeds,
        "metrics": [m for m in metrics if any(m in p["metrics"] for p in out_points)],
        "points": out_points,
    }
    write_json(path / "sweep.json", doc)
    (path / "sweep.csv").write_text(csv_text(rows), "utf-8")
    render_sweep(doc, path / "sweep.html")
    return doc
