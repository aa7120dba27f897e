"""`xinyong sweep SCENARIO --set KEY=V1,V2,... --replicates K`: a grid of reforms.

Every grid point (each combination of the values given) is run with the same K seeds
(seed, seed+1, ...), so neighbouring points share their random draws (common random
numbers). Each point is a replicate run directory under OUT/points/ (its `folder` in the
document, relative to OUT); the sweep writes
sweep.json, sweep.csv (one row per point and metric: mean and 95% interval across seeds)
and sweep.html (one curve per key metric, with its intervals).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xinyong.api import on_disk, writing
from xinyong.atomic import check_target, locked, marker, staged, write_marker, write_text
from xinyong.audit.compare import KEY_METRICS, flat_rows
from xinyong.errors import XinyongError
from xinyong.replicates import (
    REPLICATES,
    check_spawn_safe,
    combine_summaries,
    replicate_in_set,
    run_jobs,
)
from xinyong.scenario import Scenario
from xinyong.store import write_json


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
    ray: str | None = None,
    cores: int = 1,
) -> dict[str, Any]:
    """Run the grid and audit each point (no scheme-off baseline); return the sweep document
    and write sweep.json, sweep.csv and sweep.html into `out` (whole, as a run is). `ray`:
    each run as a Ray task of `cores` CPUs (replicates.run_jobs)."""
    from xinyong.audit.figures import csv_text
    from xinyong.audit.pages import render_sweep

    check_spawn_safe()
    if not grid or any(not values for values in grid.values()):
        raise XinyongError("a sweep needs at least one --set KEY=V1,V2,...", field="--set")
    path = Path(out)
    with writing(path):
        check_target(path, overwrite)
        with locked(path), staged(path, overwrite) as stage:
            jobs = {"workers": workers, "on_done": on_done, "ray": ray, "cores": cores}
            doc, rows = _run_grid(scenario, grid, stage, replicates, metrics, jobs)
            write_json(stage / "sweep.json", doc)
            write_text(stage / "sweep.csv", csv_text(rows))
            render_sweep(doc, stage / "sweep.html")
            write_marker(stage, marker(True, sweep=doc["keys"]))
    return doc


def _run_grid(
    scenario: Scenario,
    grid: dict[str, list[Any]],
    path: Path,
    replicates: int,
    metrics: tuple[str, ...],
    how: dict[str, Any],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Each grid point as a replicate set in path/points/, audited; the sweep document and
    its CSV rows. `how`: run_jobs' options."""
    from xinyong.audit.audit import audit

    write_text(path / "scenario.yaml", scenario.to_yaml())  # the base
    points = grid_points(grid)
    seeds = [scenario.seed + i for i in range(replicates)]
    scenarios, folders, jobs = [], [], []
    for i, point in enumerate(points):
        sc = scenario.with_(**point)
        folder = path / "points" / _slug(i, point)
        folder.mkdir(parents=True)
        write_text(folder / "scenario.yaml", sc.to_yaml())
        scenarios.append(sc)
        folders.append(folder)
        jobs += [(sc.with_(seed=s), folder / REPLICATES / f"seed-{s}") for s in seeds]
    summaries = run_jobs(jobs, worker=replicate_in_set, **how)
    rows: list[dict[str, Any]] = []
    out_points = []
    meanings: dict[str, str | None] = {}  # what each metric means: the charts' titles
    for i, (point, folder) in enumerate(zip(points, folders, strict=True)):
        summary = combine_summaries(summaries[i * replicates : (i + 1) * replicates])
        write_json(folder / "summary.json", on_disk(summary))
        write_marker(folder, marker(True, seeds=seeds))
        flat = flat_rows(audit(folder, baseline=False, report=False))
        picked = {}
        for name in metrics:
            row = flat.get(name)
            if row is None:
                continue
            picked[name] = {k: row.get(k) for k in ("value", "low", "high", "interval")}
            meanings.setdefault(name, row.get("meaning"))
            rows.append(
                {**point, "metric": name, **picked[name], "seeds": replicates, "point": folder.name}
            )
        # Relative to the sweep's folder: the document is written before the folder moves.
        where = str(folder.relative_to(path))
        out_points.append({"values": point, "folder": where, "metrics": picked})
    doc = {
        "scenario": scenario.name,
        "keys": list(grid),
        "grid": grid,
        "replicates": replicates,
        "seeds": seeds,
        "metrics": [m for m in metrics if any(m in p["metrics"] for p in out_points)],
        "points": out_points,
        "meanings": meanings,
    }
    return doc, rows
