"""Python API for notebooks and scripts.

import xinyong
sc = xinyong.load_scenario("r1", adults=50_000).with_(**{"channels.camera.misattribute": 0.05})
run = xinyong.run(sc)                 # in memory; or run(sc, out="runs/x") for a directory
run.summary["wrongly_listed_share.blacklist"]
run.table("records")                  # pyarrow.Table; run.polars("records") for Polars
run.sql("SELECT truth, count(*) FROM records GROUP BY truth")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
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
        *,
        scenario: Scenario | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.summary = summary
        self.path = path
        self._tables = tables or {}
        self._scenario = scenario
        self._meta = meta

    @classmethod
    def open(cls, path: str | Path) -> Run:
        rd = RunDir(path)
        return cls(rd.summary(), rd.path)

    @property
    def scenario(self) -> Scenario:
        """The resolved scenario the run was made from."""
        if self._scenario is None:
            if self.path is None:
                raise KeyError("this in-memory run kept no scenario")
            self._scenario = load_scenario(self.path / "scenario.yaml")
        return self._scenario

    @property
    def meta(self) -> dict[str, Any]:
        """The run's index tables (behaviours, channels, lists and their consequences)."""
        if self._meta is None:
            if self.path is None:
                raise KeyError("this in-memory run kept no meta")
            self._meta = RunDir(self.path).meta()
        return self._meta

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
) -> Run:
    """Simulate a scenario; with `out`, write a run directory (records streamed to disk).
    `script` adds hand-made true events: {day: [(adult, behaviour), ...]}.
    `keep_freed_memory` tunes glibc's allocator for the run (`memory.keep_freed`)."""
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
    sim = Simulation(sc, path, rows_per_part)
    sim.run(on_day)
    wall = time.perf_counter() - started
    meta = sim.recorder.meta()
    result = Run(
        {}, path, None if path is not None else sim.recorder.in_memory, scenario=sc, meta=meta
    )
    children, records = sim.pop.children, sim.next_record_id
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
        write_json(path / "summary.json", summary)
    return result
