"""Python API for notebooks and scripts.

import xinyong
sc = xinyong.load_scenario("r1", adults=50_000).with_(**{"channels.camera.misattribute": 0.05})
run = xinyong.run(sc)                 # in memory; or run(sc, out="runs/x") for a directory
run.summary["wrongly_listed_share.blacklist"]
run.table("records")                  # pyarrow.Table; run.polars("records") for Polars
run.sql("SELECT truth, count(*) FROM records GROUP BY truth")
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from xinyong import checkpoint, memory
from xinyong.atomic import check_target, locked, marker, publish, staged, write_marker, write_text
from xinyong.audit.summary import summary_metrics
from xinyong.checkpoint import CHECKPOINT, Checkpoints, find_stage, scenario_digest
from xinyong.engine import Simulation
from xinyong.errors import XinyongError
from xinyong.scenario import Scenario, load_scenario
from xinyong.sizing import check_size
from xinyong.store import RunDir, run_tables, write_json


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
            self._scenario = RunDir(self.path).scenario()
        return self._scenario

    @property
    def meta(self) -> dict[str, Any]:
        """The run's index tables (behaviours, channels, lists and their consequences)."""
        if self._meta is None:
            if self.path is None:
                raise KeyError("this in-memory run kept no meta")
            self._meta = RunDir(self.path).meta()
        return self._meta

    def connect(self, *, threads: int | None = None) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the run's tables as views (`threads=1`: sums of floats
        the same on every run)."""
        if self.path is not None:
            return RunDir(self.path).connect(threads=threads)
        con = duckdb.connect()
        if threads is not None:
            con.execute(f"SET threads = {int(threads)}")
        for name, table in self._tables.items():
            con.register(name, table)
        return con

    def table(self, name: str) -> pa.Table:
        if self.path is not None:
            return RunDir(self.path).table(name)
        if name not in self._tables:
            raise KeyError(f"unknown table '{name}' (tables: {', '.join(run_tables())})")
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
    force: bool = False,
    ray: str | None = None,
    actors: int | None = None,
    checkpoint_days: int | None = None,
) -> Run:
    """Simulate a scenario; with `out`, write a run directory (records streamed to disk).
    `script` adds hand-made true events: {day: [(adult, behaviour), ...]}.
    `keep_freed_memory` tunes glibc's allocator for the run (`memory.keep_freed`).

    The run directory appears only once complete (written beside it, then renamed into
    place); `overwrite` replaces an earlier run only then. A scenario too large for the
    memory available is refused before anything is allocated, unless `force`.
    `ray`: run whole cities on `actors` Ray actors, on the cluster at this address ("" or
    "local": a local Ray with this machine's cores); the tables are the same either way.
    `checkpoint_days`: a run directory's checkpoints, every N days (0: none; None: every
    30 days, as often as their cost justifies), from which `resume` continues a killed run.
    Runs on Ray keep none."""
    if keep_freed_memory:
        memory.keep_freed()
    sc = load_scenario(scenario) if isinstance(scenario, str) else scenario
    if script is not None:
        sc = sc.with_(script={d: [list(e) for e in evs] for d, evs in script.items()})
    if ray is None:  # on Ray the memory is the cluster's, not this machine's
        check_size(sc, in_memory=out is None, force=force)
    if out is None:
        return simulate(sc, None, on_day, rows_per_part, ray, actors)
    path = Path(out)
    with writing(path):
        check_target(path, overwrite)
        with locked(path), staged(path, overwrite) as stage:
            result = simulate(
                sc,
                stage,
                on_day,
                rows_per_part,
                ray,
                actors,
                checkpoint_days=checkpoint_days,
                overwrite=overwrite,
            )
    result.path = path
    return result


def resume(
    path: str | Path,
    scenario: Scenario | None = None,
    *,
    on_day: Callable[[int], None] | None = None,
    checkpoint_days: int | None = None,
    keep_freed_memory: bool = True,
    force: bool = False,
) -> Run:
    """Continue a killed run from its last checkpoint: `path` is its run directory (or the
    staging folder it left). The tables are those an uninterrupted run would have written;
    the run directory is published as `run` publishes it. `scenario`, when given, must be the
    run's own (by default it is read from the staging folder). Refused in one line when there
    is nothing to resume."""
    if keep_freed_memory:
        memory.keep_freed()
    out, _ = find_stage(Path(path))
    with writing(out), locked(out):
        out, stage = find_stage(Path(path))  # again, now that no one else may take it
        data = checkpoint.read(stage / CHECKPOINT)
        yaml = stage / "scenario.yaml"
        text = yaml.read_text(encoding="utf-8")
        if data.get("scenario") != scenario_digest(text):
            raise XinyongError("the checkpoint was not made from this scenario", file=yaml)
        if scenario is None:
            scenario = load_scenario(yaml)
        elif scenario.to_yaml() != text:
            raise XinyongError(
                "is not the scenario given: resume without a scenario to take the run's own",
                file=yaml,
            )
        overwrite = bool(data["overwrite"])
        check_target(out, overwrite)
        check_size(scenario, in_memory=False, force=force)
        checkpoint.rewind(stage, data)
        every = data["every"] if checkpoint_days is None else checkpoint_days
        result = simulate(
            scenario,
            stage,
            on_day,
            int(data["rows_per_part"]),
            checkpoint_days=every,
            overwrite=overwrite,
            resumed=data,
        )
        check_target(out, overwrite)  # again: the folder may have changed meanwhile
        publish(stage, out)
    result.path = out
    return result


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """System errors while a run is written (a full disk, a file-size limit, no permission)
    become one-line errors; the staging folder is gone by then and `path` is as it was."""
    try:
        yield
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc) or exc.__class__.__name__
        raise XinyongError(
            f"cannot write the run ({reason}); nothing was replaced", file=path
        ) from None
    except MemoryError:
        raise XinyongError(
            "out of memory while running; nothing was replaced (see --force)", file=path
        ) from None


def simulate(
    sc: Scenario,
    path: Path | None,
    on_day: Callable[[int], None] | None,
    rows_per_part: int,
    ray: str | None = None,
    actors: int | None = None,
    *,
    checkpoint_days: int | None = 0,
    overwrite: bool = False,
    resumed: dict[str, Any] | None = None,
) -> Run:
    """Run `sc` into the fresh folder `path` (or in memory): one engine, one per city
    (several cities), or cities on Ray actors (`ray`, see `run`). With a path, the summary
    and the marker that says the run is complete are written last; checkpoints as
    `checkpoint_days` says (see `run`), and from the checkpoint `resumed` (read and rewound
    by `resume`) when given."""
    checkpoints = None
    if path is not None:
        if resumed is None:
            write_text(path / "scenario.yaml", sc.to_yaml())
        if ray is None and checkpoint_days != 0:
            header = {
                "scenario": scenario_digest((path / "scenario.yaml").read_text(encoding="utf-8")),
                "rows_per_part": rows_per_part,
                "overwrite": overwrite,
                "every": checkpoint_days,
            }
            checkpoints = Checkpoints(path, checkpoint_days, sc.days, header)
            if resumed is not None:
                checkpoints.elapsed, checkpoints.last_day = resumed["elapsed"], resumed["day"]
    started = time.perf_counter()
    before = 0.0 if resumed is None else float(resumed["elapsed"])
    shards = None
    try:
        if ray is not None:  # whole cities on Ray actors (cluster.py)
            from xinyong.cluster import run_on_ray

            outcome = run_on_ray(
                sc, path, address=ray, actors=actors, rows_per_part=rows_per_part, on_day=on_day
            )
        elif len(sc.cities) > 1:  # one engine per city, all in this process (shard.py)
            from xinyong.shard import run_in_process

            outcome = run_in_process(
                sc, path, rows_per_part, on_day, checkpoints=checkpoints, resumed=resumed
            )
        if ray is not None or len(sc.cities) > 1:
            wall = round(before + time.perf_counter() - started, 3)
            tables = outcome.tables
            meta, children, records = outcome.meta, outcome.children, outcome.records
            shards = outcome.shards
        else:
            sim = Simulation(sc, path, rows_per_part)
            first_day = 0 if resumed is None else checkpoint.restore([sim], resumed)
            sim.run(on_day, first_day=first_day, checkpoints=checkpoints)
            wall = round(before + time.perf_counter() - started, 3)
            tables = None if path is not None else sim.recorder.in_memory
            meta, children, records = sim.recorder.meta(), sim.pop.children, sim.next_record_id
            del sim  # the state is written out: free it before the summary queries (100 M)
    finally:
        if checkpoints is not None:  # the last checkpoint's file written (or failed)
            checkpoints.close()
    memory.release()
    if path is not None:
        con = RunDir(path, finished=False).connect(threads=1)
    else:
        con = Run({}, None, tables).connect(threads=1)
    # One thread: DuckDB's parallel float sums differ in their last digits from run to run.
    metrics = summary_metrics(con, meta, sc.days)
    summary = {
        "scenario": sc.name,
        "adults": sc.adults,
        "children": children,
        "days": sc.days,
        "seed": sc.seed,
        "wall_seconds": wall,
        "records": records,
        **metrics,
    }
    if path is not None:
        if shards is not None:  # which cities each shard held (and its peak memory on Ray)
            write_json(path / "shards.json", shards)
        write_json(path / "summary.json", on_disk(summary))
        (path / CHECKPOINT).unlink(missing_ok=True)  # a finished run needs none
        write_marker(path, marker(True, wall_seconds=wall))
    return Run(summary, path, tables, scenario=sc, meta=meta)


def on_disk(summary: dict[str, Any]) -> dict[str, Any]:
    """summary.json is the same for the same scenario and seed, byte for byte: the wall
    time, which is not, is kept in run.json instead."""
    return {k: v for k, v in summary.items() if k != "wall_seconds"}
