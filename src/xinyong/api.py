"""Python API for notebooks and scripts.

import xinyong
sc = xinyong.load_scenario("r1", adults=50_000).with_(**{"channels.camera.misattribute": 0.05})
run = xinyong.run(sc)                 # in memory; or run(sc, out="runs/x") for a directory
run.summary["wrongly_listed_share.blacklist"]
run.table("records")                  # pyarrow.Table; run.polars("records") for Polars
run.sql("SELECT truth, count(*) FROM records GROUP BY truth")
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from xinyong import memory
from xinyong.audit.summary import summary_metrics
from xinyong.engine import Simulation
from xinyong.scenario import Scenario, load_scenario
from xinyong.store import TABLES, RunDir, prepare_dir, write_json


class Run:
    """A finished run: its summary and tables, in memory or in a run directory."""

    def __init__(
        self,
        summary: dict[str, Any],
        path: Path | None = None,
        tables: dict[str, pa.Table] | None = None,
    ) -> None:
        self.summary = summary
        self.path = path
        self._tables = tables or {}

    @classmethod
    def open(cls, path: str | Path) -> Run:
        rd = RunDir(path)
        return cls(rd.summary(), rd.path)

    def connect(self) -> duckdb.DuckDBPyConnection:
        if self.path is not None:
            return RunDir(self.path).connect()
        con = duckdb.connect()
        for name, table in self._tables.items():
            con.register(name, table)
        return con

    def table(self, name: str) -> pa.Table:
        if self.path is not None:
            return RunDir(self.path).table(name)
        if name not in self._tables:
            raise KeyError(f"unknown table '{name}' (tables: {', '.join(TABLES)})")
        return self._tables[name]

    def polars(self, name: str) -> Any:
        import polars as pl

        return pl.from_arrow(self.table(name))

    def sql(self, query: str) -> pa.Table:
        return self.connect().sql(query).to_arrow_table()


def run(
    scenario: Scenario | str = "r1",
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    on_day: Callable[[int], None] | None = None,
    rows_per_part: int = 2_000_000,
    script: Mapping[int, list[tuple[int, str]]] | None = None,
    keep_freed_memory: bool = True,
    ray: str | None = None,
    actors: int | None = None,
) -> Run:
    """Simulate a scenario; with `out`, write a run directory (records streamed to disk).
    `script` adds hand-made true events: {day: [(adult, behaviour), ...]}.
    `keep_freed_memory` tunes glibc's allocator for the run (`memory.keep_freed`).
    `ray`: run whole cities on `actors` Ray actors, on the cluster at this address ("" or
    "local": a local Ray with this machine's cores); the tables are the same either way."""
    if keep_freed_memory:
        memory.keep_freed()
    sc = load_scenario(scenario) if isinstance(scenario, str) else scenario
    if script is not None:
        sc = sc.with_(script={d: [list(e) for e in evs] for d, evs in script.items()})
    path = Path(out) if out is not None else None
    if path is not None:
        prepare_dir(path, overwrite)
        (path / "scenario.yaml").write_text(sc.to_yaml())
    started = time.perf_counter()
    shards = None
    if ray is not None:  # whole cities on Ray actors (cluster.py)
        from xinyong.cluster import run_on_ray

        outcome = run_on_ray(sc, path, address=ray, actors=actors, rows_per_part=rows_per_part,
                             on_day=on_day)  # fmt: skip
    elif len(sc.cities) > 1:  # one engine per city, all in this process (shard.py)
        from xinyong.shard import run_in_process

        outcome = run_in_process(sc, path, rows_per_part, on_day)
    if ray is not None or len(sc.cities) > 1:
        wall = time.perf_counter() - started
        result = Run({}, path, outcome.tables)
        meta, children, records, shards = (
            outcome.meta, outcome.children, outcome.records, outcome.shards,
        )  # fmt: skip
    else:
        sim = Simulation(sc, path, rows_per_part)
        sim.run(on_day)
        wall = time.perf_counter() - started
        result = Run({}, path, None if path is not None else sim.recorder.in_memory)
        meta, children, records = sim.recorder.meta(), sim.pop.children, sim.next_record_id
        del sim  # the state is written out: free it before the summary queries (100 M adults)
    memory.release()
    metrics = summary_metrics(result.connect(), meta, sc.days)
    summary = {
        "scenario": sc.name,
        "adults": sc.adults,
        "children": children,
        "days": sc.days,
        "seed": sc.seed,
        "wall_seconds": round(wall, 3),
        "records": records,
        **metrics,
    }
    result.summary = summary
    if path is not None:
        if shards is not None:  # which cities each shard held (and its peak memory on Ray)
            write_json(path / "shards.json", shards)
        write_json(path / "summary.json", summary)
    return result


def _replicate(scenario: Scenario, out: Path) -> dict[str, Any]:
    return run(scenario, out, overwrite=True).summary


def run_replicates(
    scenario: Scenario,
    out: str | Path,
    replicates: int,
    *,
    overwrite: bool = False,
    workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
    ray: str | None = None,
    cores: int = 1,
) -> Run:
    """Run seeds seed, seed+1, ... in parallel processes into out/replicates/seed-S/; the
    top-level summary.json holds each metric's mean and 95% interval over the replicates.
    Workers are spawned processes: call this under `if __name__ == "__main__":` in scripts.
    `ray`: as Ray tasks of `cores` CPUs each instead, on the cluster at this address ("" or
    "local": a local Ray)."""
    from xinyong.audit.audit import REPLICATES, combine_summaries

    path = Path(out)
    prepare_dir(path, overwrite)
    (path / "scenario.yaml").write_text(scenario.to_yaml())
    seeds = [scenario.seed + i for i in range(replicates)]
    if ray is not None:
        from xinyong.cluster import replicates as on_ray

        done = on_ray(
            [scenario.with_(seed=s) for s in seeds],
            [path / REPLICATES / f"seed-{s}" for s in seeds],
            address=ray,
            cores=cores,
            on_done=on_done,
        )
        summary = combine_summaries(done)
        write_json(path / "summary.json", summary)
        return Run(summary, path)
    workers = workers or min(replicates, os.cpu_count() or 1)
    summaries: dict[int, dict[str, Any]] = {}
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = {
            pool.submit(_replicate, scenario.with_(seed=s), path / REPLICATES / f"seed-{s}"): s
            for s in seeds
        }
        for done, fut in enumerate(as_completed(futures)):
            summaries[futures[fut]] = fut.result()
            if on_done is not None:
                on_done(done)
    summary = combine_summaries([summaries[s] for s in seeds])
    write_json(path / "summary.json", summary)
    return Run(summary, path)
