"""Multi-city runs: each city is its own engine, and whole cities are held by shards.

A city's population, graph and random streams come from the scenario's seed and the city's
index alone (population.city_seed, population.cross_edges, population.child_counts), so a
run's tables do not depend on which process holds which city. Cities are coupled only through
cross-city edges: in step 5 an adult meets a neighbour of another city if that neighbour was
on the association list at the start of the day, and a module may read its neighbours' values
(the private score's connections). Each city keeps those neighbours as ghost rows of its
graph; at each day's start the shards pass on which of their boundary adults are listed (a
few per ten thousand adults a day) and, on the days a module asks, its shared values at the
boundary adults (`Boundary`), and nothing else. An in-process run is one shard holding every
city; a Ray run (cluster.py) is several, one barrier a day.

The run directory of a multi-city run holds each city's parts of the records, spells, persons,
children, edges and appeals, named c{city}-part-*.parquet so that every table reads in city
order; the daily tables are the sums of the shards' parts (parts/), merged once at the end.
"""

from __future__ import annotations

import gc
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from xinyong import checkpoint, modules, population
from xinyong.checkpoint import Checkpoints
from xinyong.engine import Part, Simulation
from xinyong.entities import compile_entity
from xinyong.recorder import Recorder, behaviour_daily_table, run_meta
from xinyong.scenario import Scenario
from xinyong.store import LAYOUTS, write_batches, write_json
from xinyong.threads import Pools, deferred_interrupt

# Tables each city writes its part of, concatenated in city order.
CITY_TABLES = ("records", "spells", "appeals", "persons", "children", "edges")
MIN_ROWS_PER_PART = 1 << 16  # rows a city's part holds at least (but its last)
MEANS = {"mean_score": 0, "mean_shadow_score": 1}  # daily means: world of the score sums


@dataclass(frozen=True)
class Layout:
    """Where each city's adults and children sit among the scenario's global ids."""

    sizes: np.ndarray  # int64 [K] adults per city
    first_adult: np.ndarray  # int64 [K + 1]
    first_child: np.ndarray  # int64 [K + 1]

    @classmethod
    def of(cls, sc: Scenario) -> Layout:
        sizes = population.city_sizes(sc.adults, [c.share for c in sc.cities])
        # round(child_ratio x adults) children in all, multinomial over the cities (the seed's
        # own stream: every process draws the same counts).
        children = population.child_counts(sc.seed, sc.population.child_ratio, sizes)
        starts = (np.concatenate([[0], np.cumsum(x)]).astype(np.int64) for x in (sizes, children))
        return cls(sizes.astype(np.int64), *starts)


def pack_bins(sizes: np.ndarray, bins: int) -> list[list[int]]:
    """Cities into `bins` bins of about equal cost (adults, which a day's work follows):
    largest first, each into the lightest bin so far; cities without adults are left out,
    and so are bins left empty."""
    load = [0] * bins
    out: list[list[int]] = [[] for _ in range(bins)]
    for k in sorted(np.flatnonzero(sizes > 0).tolist(), key=lambda k: (-int(sizes[k]), k)):
        b = min(range(bins), key=lambda b: (load[b], b))
        out[b].append(k)
        load[b] += int(sizes[k])
    return [sorted(b) for b in out if b]


@dataclass
class Partial:
    """What a shard hands back at the end: its cities' daily sums and counts (and, for a run
    kept in memory, its cities' tables)."""

    cities: list[int]
    adults: int
    children: int
    records: int
    daily: list[dict[str, int]]  # per day: the shard's sums, score sums instead of means
    behaviour: np.ndarray  # int64 [T, TALLIES, G B]
    tables: dict[str, list[pa.Table]] = field(default_factory=dict)  # in memory only
    peak_rss: int = 0  # bytes, where the process measured it (cluster.ShardActor)


class Shard:
    """Whole cities of a scenario in one process: one engine per city, stepped together,
    sharing a handful of helper threads."""

    def __init__(
        self,
        sc: Scenario,
        cities: list[int],
        out: Path | None = None,
        rows_per_part: int = 2_000_000,
    ) -> None:
        self.sc, self.out = sc, out
        layout = Layout.of(sc)
        cities = [k for k in cities if layout.sizes[k] > 0]
        self.cities = cities
        cross = population.cross_edges(sc.seed, sc.population, layout.sizes, cities)
        tables = compile_entity(sc)
        self.pools = Pools.new()
        # Each city buffers its records up to its share of the shard's rows per part: the
        # shard then holds about as many rows waiting as one engine would (31 full buffers
        # held 0.9 KB per adult more at 2 M adults x 365 days).
        held = max(1, int(layout.sizes[cities].sum()))
        self.engines = [
            Simulation(
                sc,
                out,
                max(MIN_ROWS_PER_PART, rows_per_part * int(layout.sizes[k]) // held),
                part=Part(
                    k,
                    int(layout.sizes[k]),
                    int(layout.first_adult[k]),
                    int(layout.first_child[k]),
                    int(layout.first_child[k + 1] - layout.first_child[k]),
                    cross[k],
                ),
                pools=self.pools,
                tables=tables,
            )
            for k in cities
        ]

    def boundary(self, t: int) -> Boundary:
        """What the shard's cities pass on at the start of day t: their adults with
        neighbours in other cities who are on the association list (global ids, ascending),
        and the values the modules share (Module.shared)."""
        parts = [e.listed_boundary() for e in self.engines]  # cities ascending
        listed = np.concatenate(parts) if parts else np.empty(0, np.int64)
        return Boundary(listed, merged_values([e.boundary_values(t) for e in self.engines]))

    def step(self, t: int, start: Boundary) -> Boundary:
        """Day t in every city, given what every city passed on at its start (`exchange`);
        returns the shard's own for the next day."""
        for engine in self.engines:
            if start.values:
                engine.receive_ghost_values(start.values)
            engine.step(t, engine.listed_ghosts(start.listed))
        return self.boundary(t + 1)

    def finish(self) -> Partial:
        """Write the cities' end-of-run tables; the shard's sums of the daily tables."""
        for engine in self.engines:
            engine.finish()
        self.pools.shutdown()
        days = self.engines[0].recorder.booked_days if self.engines else 0
        daily = summed_daily([e.recorder for e in self.engines], days)
        tables = self.engines[0].tables if self.engines else compile_entity(self.sc)
        groups = len(tables.kind.groups)
        width = groups * len(tables.world.behaviours)
        behaviour = np.zeros((days, 4, width), dtype=np.int64)
        for engine in self.engines:
            behaviour += np.stack(engine.recorder.beh_daily) if days else 0
        partial = Partial(
            self.cities,
            sum(e.pop.adults for e in self.engines),
            sum(e.pop.children for e in self.engines),
            sum(e.records for e in self.engines),
            daily,
            behaviour,
        )
        if self.out is None:
            partial.tables = {
                name: [e.recorder.in_memory[name] for e in self.engines]
                for name in city_tables(self.sc)
            }
        return partial


@dataclass
class Outcome:
    """A finished multi-city run, before its summary: tables in memory (or None, on disk),
    the index tables, and counts."""

    tables: dict[str, pa.Table] | None
    meta: dict[str, Any]
    children: int
    records: int
    shards: list[dict[str, Any]]


def run_in_process(
    sc: Scenario,
    out: Path | None,
    rows_per_part: int = 2_000_000,
    on_day: Callable[[int], None] | None = None,
    bins: int = 1,
    *,
    checkpoints: Checkpoints | None = None,
    resumed: dict[str, Any] | None = None,
) -> Outcome:
    """Every city in this process: one shard, or `bins` shards stepped in turn (the same
    exchange as a Ray run's, without Ray: for tests). Every city engine is checkpointed
    together (`checkpoints`), and restored from the checkpoint `resumed` when given."""
    layout = Layout.of(sc)
    shards = [Shard(sc, cities, out, rows_per_part) for cities in pack_bins(layout.sizes, bins)]
    engines = [e for s in shards for e in s.engines]
    first_day = 0 if resumed is None else checkpoint.restore(engines, resumed)
    start = exchange([s.boundary(first_day) for s in shards])
    gc.freeze()  # as Simulation.run: the population is left out of the collector's passes
    try:
        with deferred_interrupt() as interrupted:  # Ctrl-C: at the end of a day
            for t in range(first_day, sc.days):
                start = exchange([s.step(t, start) for s in shards])
                if checkpoints is not None:  # the engines hold the next day's start (listed)
                    checkpoints.after_day(t, engines)
                if on_day is not None:
                    on_day(t)
                interrupted()
        partials = [s.finish() for s in shards]
    finally:
        gc.unfreeze()
    return merge(sc, out, partials)


def city_tables(sc: Scenario) -> tuple[str, ...]:
    """The tables each city engine writes a part of."""
    return CITY_TABLES + modules.tables(sc)


Shared = dict[str, tuple[np.ndarray, np.ndarray]]  # "module.attribute": (ids, values)


@dataclass
class Boundary:
    """What cities pass on to each other at the start of a day: `listed`, the boundary
    adults on the association list (global ids), and `values`, the modules' shared values
    at their boundary adults (Module.shared); ids ascending."""

    listed: np.ndarray
    values: Shared = field(default_factory=dict)


def merged_values(parts: list[Shared]) -> Shared:
    """Several cities' shared values as one, each key's ids ascending."""
    pieces: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for part in parts:
        for key, pair in part.items():
            pieces.setdefault(key, []).append(pair)
    out = {}
    for key, pairs in pieces.items():
        ids = np.concatenate([i for i, _ in pairs])
        order = np.argsort(ids, kind="stable")
        out[key] = (ids[order], np.concatenate([v for _, v in pairs])[order])
    return out


def exchange(parts: list[Boundary]) -> Boundary:
    """The shards' boundaries as every shard reads them."""
    if not parts:
        return Boundary(np.empty(0, np.int64))
    listed = np.sort(np.concatenate([p.listed for p in parts]))
    return Boundary(listed, merged_values([p.values for p in parts]))


def merge(sc: Scenario, out: Path | None, partials: list[Partial]) -> Outcome:
    """The run's daily tables, summed over the shards (integers: the same sums in any
    order), and meta.json; in memory, the cities' tables concatenated in city order."""
    tables = compile_entity(sc)
    partials = sorted(partials, key=lambda p: p.cities[0] if p.cities else -1)
    daily = merged_daily([p.daily for p in partials], sc.adults)
    behaviour = partials[0].behaviour.copy()
    for p in partials[1:]:
        behaviour += p.behaviour
    groups = list(tables.kind.groups)
    behaviour_daily = behaviour_daily_table(behaviour, tables.world.behaviours, groups)
    meta = run_meta(tables, list(sc.cities))
    for _, spec in modules.active(sc):
        meta[spec.name] = spec.runtime_class().meta(sc, tables)
    shards = [{"cities": p.cities, "adults": p.adults, "records": p.records} for p in partials]
    in_memory = None
    if out is None:
        by_city = sorted(
            ((k, name, table) for p in partials for name, ts in p.tables.items()
             for k, table in zip(p.cities, ts, strict=True)),
            key=lambda x: x[0],
        )  # fmt: skip
        in_memory = {
            name: pa.concat_tables([t for _, n, t in by_city if n == name])
            for name in city_tables(sc)
        }
        in_memory["daily"], in_memory["behaviour_daily"] = daily, behaviour_daily
    else:
        parts = out / "parts"
        parts.mkdir(exist_ok=True)
        for i, p in enumerate(partials):  # each shard's sums, as merged below
            write_batches(parts / f"daily-s{i:04d}.parquet", pa.Table.from_pylist(p.daily))
        write_batches(out / "daily.parquet", daily, LAYOUTS["daily"])
        write_batches(out / "behaviour_daily.parquet", behaviour_daily, LAYOUTS["behaviour_daily"])
        write_json(out / "meta.json", meta)
    return Outcome(
        in_memory,
        meta,
        sum(p.children for p in partials),
        sum(p.records for p in partials),
        shards,
    )


def summed_daily(recorders: list[Recorder], days: int) -> list[dict[str, int]]:
    """The cities' daily rows summed day by day, with the score sums in place of the means
    (MEANS); a column a city's packs lack counts 0 there. Summed as arrays: value by value,
    national's 31 cities took 0.2 s at the end of a run."""
    if not days:
        return []
    names: dict[str, int] = {}  # each column's place, in the order the cities name them
    for rec in recorders:
        for key in rec.daily[0]:
            names.setdefault(key, len(names))
    total = np.zeros((days, len(names)), dtype=np.int64)
    for rec in recorders:
        keys = [key for key in rec.daily[0] if key != "day" and key not in MEANS]
        row_of = operator.itemgetter(*keys)
        values = np.array([row_of(row) for row in rec.daily[:days]], dtype=np.int64)
        total[:, [names[key] for key in keys]] += values.reshape(days, len(keys))
        sums = np.array(rec.score_sums[:days], dtype=np.int64)
        for key, world in MEANS.items():
            total[:, names[key]] += sums[:, world]
    total[:, names["day"]] = [row["day"] for row in recorders[0].daily[:days]]
    return [dict(zip(names, row, strict=True)) for row in total.tolist()]


def merged_daily(parts: list[list[dict[str, int]]], adults: int) -> pa.Table:
    """Daily rows summed over shards; the means from the summed score sums."""
    rows: list[dict[str, Any]] = []
    for day_rows in zip(*parts, strict=True):
        row: dict[str, Any] = {}
        for part in day_rows:
            for key, value in part.items():
                row[key] = value if key == "day" else row.get(key, 0) + value
        for key in MEANS:
            row[key] = row[key] / adults
        rows.append(row)
    return pa.Table.from_pylist(rows)
