"""Keeps the books of a run: streams records and spells to Parquet, tallies each day, and
writes the end-of-run tables. Without a folder it keeps everything in memory (tests, API)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numba import njit

from xinyong import modules
from xinyong.consequences import reached
from xinyong.entities import EntityTables
from xinyong.observe import (
    FALSE_REPORT,
    FALSE_REPORTS,
    MISATTRIBUTED,
    MISATTRIBUTED_RECORDS,
    RECORDS,
    TRUE_EVENTS,
    TRUTH_NAMES,
    Records,
)
from xinyong.population import NBR_BLOCK, Population, neighbours_start
from xinyong.scenario import Scenario
from xinyong.scheme.state import SchemeState
from xinyong.store import (
    LAYOUTS,
    ChunkWriter,
    Layout,
    dictionary,
    stored_schema,
    write_batches,
    write_json,
)
from xinyong.threads import MIN_SPLIT, Inline, Pools, background, built_ahead, usable_cores

WORLDS = ("recorded", "shadow")
HOLD_ROWS = 1 << 16  # rows of a streamed table gathered into one Arrow batch, at least


# The records' columns _record_columns fills, in its order.
COMPUTED = ("record_id", "day", "actor", "points", "shadow_points", "appealed")
# The held tables' columns as the day's steps give them (observe.Records, scheme.lists).
HELD = {
    "records": {
        "record_id": np.int64, "day": np.int32, "person": np.int32, "behaviour": np.int16,
        "channel": np.int16, "truth": np.uint8, "actor": np.int32, "points": np.int32,
        "shadow_points": np.int32, "expiry_day": np.int32, "appealed": np.uint8,
    },
    "spells": {"person": np.int32, "list": np.int8, "world": np.int8, "start": np.int32,
               "end": np.int32},
}  # fmt: skip


class Held:
    """Rows of a streamed table gathered in column buffers until there are a batch's worth
    (Recorder._hold): each day's rows are written once where they stay, instead of held as
    the day's arrays and copied again into one (1.6 ms a day in national at 1 M adults)."""

    def __init__(self, dtypes: dict[str, type], rows: int) -> None:
        self.dtypes, self.batch_rows = dtypes, rows
        self.rows = 0
        self.largest = 0  # the most rows one day has added: the room left past a batch
        self.size = 0  # rows the buffers have room for
        self.buffers: dict[str, np.ndarray] = {}

    def whole(self, n: int) -> bool:
        """Whether a day of n rows is a batch as it is: a batch's worth, and nothing held."""
        return self.rows == 0 and n >= self.batch_rows

    def room(self, n: int) -> dict[str, np.ndarray]:
        """n rows after those held, to be filled in, counted as held."""
        end = self.rows + n
        self.largest = max(self.largest, n)
        if end > self.size or not self.buffers:
            self.size = max(self.batch_rows, end) + self.largest
            old = self.buffers
            self.buffers = {k: np.empty(self.size, d) for k, d in self.dtypes.items()}
            for k, column in old.items():  # a day larger than any before: rare
                self.buffers[k][: self.rows] = column[: self.rows]
        self.rows = end
        return {k: column[end - n : end] for k, column in self.buffers.items()}

    def take(self) -> dict[str, np.ndarray]:
        """The rows held, no longer held: the buffers themselves, handed to the batch, unless
        they have much room left over (then a copy, and the buffers kept)."""
        rows, self.rows = self.rows, 0
        if self.size - rows > rows // 4:
            return {k: column[:rows].copy() for k, column in self.buffers.items()}
        taken, self.buffers, self.size = self.buffers, {}, 0
        return {k: column[:rows] for k, column in taken.items()}


@dataclass(frozen=True)
class Ids:
    """How one city engine's rows read in the run's tables (shard.py): the global ids of its
    adults, children and ghosts, and its files, named so that sorted names put the cities in
    order (each table then reads the same whichever process wrote which city)."""

    city: int
    first_adult: int
    first_child: int
    ghosts: np.ndarray  # global ids of the ghost rows

    @property
    def prefix(self) -> str:
        return f"c{self.city:05d}-"


def _shifted(ids: np.ndarray, by: int) -> np.ndarray:
    """Ids moved by `by`, -1 (none) left as is."""
    if by == 0:
        return ids
    return np.where(ids >= 0, ids + by, ids).astype(ids.dtype)


@dataclass
class DayBook:
    """What the recorder is given of one day: its records and the counters after it."""

    t: int
    records: Records
    applied: np.ndarray  # int32 [n, 2] points per world
    expiry_day: np.ndarray
    appealed: np.ndarray  # rows of the records appealed today
    first_record_id: int
    tallies: np.ndarray  # observe.TALLIES rows per (behaviour, group)
    association_events: int
    decided: tuple[np.ndarray, np.ndarray] | None  # appeals decided: (record ids, upheld)
    settlements: int
    spells: list[tuple[np.ndarray, ...]]  # spells ended today, in order
    score_sum: np.ndarray  # int64 [2]
    list_count: np.ndarray  # int64 [2, L]
    wrong_count: np.ndarray  # int64 [L] wrongly listed members
    tier_count: np.ndarray  # int64 [P, maxT] recorded


CODE = pa.dictionary(pa.int16(), pa.string())
STREAM_SCHEMAS = {
    "records": pa.schema(
        [
            ("record_id", pa.int64()),
            ("day", pa.int32()),
            ("person", pa.int32()),
            ("behaviour", CODE),
            ("channel", CODE),
            ("truth", CODE),
            ("actor", pa.int32()),
            ("points", pa.int32()),
            ("shadow_points", pa.int32()),
            ("expiry_day", pa.int32()),
            ("appealed", pa.bool_()),
        ]
    ),
    "spells": pa.schema(
        [
            ("person", pa.int32()),
            ("list", CODE),
            ("world", CODE),
            ("start", pa.int32()),
            ("end", pa.int32()),
        ]
    ),
}


@njit(cache=True, nogil=True)
def _record_columns(first, t, adult0, truth, actor, applied, appealed, columns):
    """The records batch's record ids, day, actor as stored on disk (misattributed records'
    only, as global ids from `adult0`; -1 for the others), points of each world
    (contiguous: Arrow copies a strided column slowly, 0.7 ms a day) and appeal flags (0 or
    1), in one pass."""
    record_id, day, stored_actor, points, shadow_points, was_appealed = columns
    for r in range(truth.shape[0]):
        record_id[r] = first + r
        day[r] = t
        stored_actor[r] = actor[r] + adult0 if truth[r] == MISATTRIBUTED else -1
        points[r] = applied[r, 0]
        shadow_points[r] = applied[r, 1]
        was_appealed[r] = 0
    for r in appealed:
        was_appealed[r] = 1


@njit(cache=True, nogil=True)
def open_spells(since: np.ndarray) -> tuple[np.ndarray, ...]:
    """Spells still open (start >= 0) as (person, list, world, start, end = -1), in the order
    of np.nonzero(since >= 0): one compiled pass instead of a mask of all adults' lists."""
    n = 0
    for v in since.reshape(since.size):  # a view (ravel would copy: 0.7 s at 10 M adults)
        n += v >= 0
    person = np.empty(n, dtype=np.int32)
    li = np.empty(n, dtype=np.int8)
    world = np.empty(n, dtype=np.int8)
    start = np.empty(n, dtype=np.int32)
    x = 0
    for p in range(since.shape[0]):
        for w in range(since.shape[1]):
            for k in range(since.shape[2]):
                if since[p, w, k] >= 0:
                    person[x], li[x], world[x], start[x] = p, k, w, since[p, w, k]
                    x += 1
    return person, li, world, start, np.full(n, -1, dtype=np.int32)


class Recorder:
    def __init__(
        self,
        scenario: Scenario,
        tables: EntityTables,
        pop: Population,
        out: Path | None = None,
        rows_per_part: int = 2_000_000,
        *,
        ids: Ids | None = None,
        pools: Pools | None = None,
    ) -> None:
        self.tables, self.tb = tables, tables.scheme
        self.ids = ids
        self.adult0 = 0 if ids is None else ids.first_adult
        self.prefix = "" if ids is None else ids.prefix
        # Which columns of a day's tallies (G b + group) belong to negative behaviours (column
        # 0 of this matrix) and which to positive ones (column 1).
        self.groups = len(tables.kind.groups)
        negative = np.repeat(tables.world.negative.astype(np.int64), self.groups)
        self.sign_columns = np.stack([negative, 1 - negative], axis=1)
        self.pop = pop
        self.cities = list(scenario.cities) if ids is None else [scenario.cities[ids.city]]
        self.appeal_days = scenario.appeals.appeal_days
        self.out = out
        self.records_on_disk = stored_schema(STREAM_SCHEMAS["records"], LAYOUTS["records"])
        self.booked_days = 0
        self.writers: dict[str, ChunkWriter] = {}
        self.memory: dict[str, list[pa.RecordBatch]] = {"records": [], "spells": []}
        # Rows held until a batch's worth (_hold): no more than a part's (a city's parts
        # are small), so a shard of many cities holds about what its writers would.
        self.hold_rows = min(HOLD_ROWS, rows_per_part)
        self.held = {name: Held(dtypes, self.hold_rows) for name, dtypes in HELD.items()}
        self.batch_of = {"records": self._records_batch, "spells": self._spells_batch}
        writer = None if pools is None else pools.writer
        if out is not None:
            self.writers = {
                name: ChunkWriter(out / name, rows_per_part, prefix=self.prefix, pool=writer)
                for name in ("records", "spells")
            }
        # The daily row's columns of the lists and tiers, named once (a day of a small city
        # spent more on naming them than on its steps' arithmetic).
        self.list_columns = [
            (f"list.{n}", f"shadow_list.{n}", f"wrongly_listed.{n}") for n in self.tb.lists
        ]
        self.tier_cells = [
            (p, k, f"tier.{name}")
            for p, names in enumerate(self.tb.tier_names)
            for k, name in enumerate(names)
        ]
        self.tier_columns = list(dict.fromkeys(key for _, _, key in self.tier_cells))
        self.daily: list[dict[str, Any]] = []
        self.beh_daily: list[np.ndarray] = []
        self.score_sums: list[np.ndarray] = []  # int64 [2] per day, for shards' merged daily
        self.appeals_filed: list[tuple[np.ndarray, ...]] = []
        self.decisions: list[tuple[np.ndarray, np.ndarray]] = []
        self.in_memory: dict[str, pa.Table] = {}
        self.module_meta: dict[str, Any] = {}  # meta.json's entry of each module (the engine's)
        self.owns_pools = pools is None
        self.pipeline = background() if pools is None else pools.pipeline
        self.booking: Future | None = None
        if out is not None:  # the graph never changes: write it while the run goes on
            self.edges_pool = background() if pools is None else pools.writer
            self.edges_written = self.edges_pool.submit(
                write_batches, self._path("edges"), self._edges(), LAYOUTS["edges"]
            )

    def _path(self, name: str) -> Path:
        """Where an end-of-run table is written: one file, or a city engine's part of it."""
        assert self.out is not None
        if self.ids is None:
            return self.out / f"{name}.parquet"
        folder = self.out / name
        folder.mkdir(exist_ok=True)
        return folder / f"{self.prefix}part-00000.parquet"

    def module_tables(self, tables: dict[str, pa.Table]) -> None:
        """A module's end-of-run tables: kept in memory, or written as each table's file (a
        city engine's part of it)."""
        if self.out is None:
            self.in_memory.update(tables)
            return
        nullable = modules.nullable()
        for name, table in tables.items():
            write_batches(self._path(name), table, Layout(nullable=nullable.get(name, ())))

    # -- streaming -----------------------------------------------------------------------------

    def _emit(self, name: str, batch: pa.RecordBatch) -> None:
        if name in self.writers:
            self.writers[name].add(batch)
        else:
            self.memory[name].append(batch)

    def _hold(self, name: str, columns: dict[str, np.ndarray]) -> None:
        """Rows of a streamed table, held until there are enough for one batch: a small
        city's day is a few thousand records, and a Parquet file of hundreds of such
        batches took the writer far longer to encode than holding them costs (`national`
        at 1 M adults 13% slower with a batch a day). A day of a batch's worth or more,
        with nothing held, is a batch as it is."""
        held = self.held[name]
        n = len(next(iter(columns.values())))
        whole = held.whole(n)
        self._store(name, whole, {} if whole else held.room(n), columns)

    def _store(
        self, name: str, whole: bool, made: dict[str, np.ndarray], given: dict[str, np.ndarray]
    ) -> None:
        """A day's rows: the columns `given` copied beside those already `made` in the held
        rows (Held.room), or, for a whole batch (Held.whole), both a batch as they are."""
        if whole:
            self._emit(name, self.batch_of[name]({**made, **given}))
            return
        for key, column in given.items():
            made[key][:] = column
        if self.held[name].rows >= self.hold_rows:  # a batch's worth
            self._release(name)

    def _release(self, name: str) -> None:
        held = self.held[name]
        if held.rows:
            self._emit(name, self.batch_of[name](held.take()))

    def release_held(self) -> None:
        """Every held row into its batch (writers and memory), after the day's booking: at a
        checkpoint the parts on disk hold exactly the days so far."""
        self.wait_day()
        for name in self.held:
            self._release(name)

    def day(self, book: DayBook) -> None:
        """Book a day. The counters are read now; the records batch is built on the
        recorder's thread while the simulation goes on (the day's arrays are never written
        again). At most one day waits, so memory stays bounded."""
        for spells in book.spells:
            self.spells_ended(spells)
        decided = upheld = 0
        if book.decided is not None:
            self.decisions.append(book.decided)
            decided, upheld = len(book.decided[1]), int(book.decided[1].sum())
        tallied = None  # filled in on the recorder's thread
        row: dict[str, Any] = {
            "day": book.t,
            "true_negative": tallied,
            "true_positive": tallied,
            "association_events": book.association_events,
            "records_negative": tallied,
            "records_positive": tallied,
            "records_correct": tallied,
            "records_misattributed": tallied,
            "records_false_report": tallied,
            "appeals_filed": len(book.appealed),
            "appeals_decided": decided,
            "appeals_upheld": upheld,
            "settlements": book.settlements,
            "mean_score": float(book.score_sum[0]) / self.pop.adults,
            "mean_shadow_score": float(book.score_sum[1]) / self.pop.adults,
        }
        listed, wrong = book.list_count.tolist(), book.wrong_count.tolist()
        for li, (on, shadow_on, wrongly) in enumerate(self.list_columns):
            row[on], row[shadow_on], row[wrongly] = listed[0][li], listed[1][li], wrong[li]
        tiers = book.tier_count.tolist()
        for key in self.tier_columns:
            row[key] = 0
        for p, k, key in self.tier_cells:  # tiers of the same name summed over the packs
            row[key] += tiers[p][k]
        self.score_sums.append(book.score_sum)
        self.booked_days += 1
        self.wait_day()
        if isinstance(self.pipeline, Inline):  # a small city of a shard: no hand-off
            self._book(row, book)
        else:
            self.booking = self.pipeline.submit(self._book, row, book)

    def wait_day(self) -> None:
        if self.booking is not None:
            self.booking.result()  # re-raises a failure of the recorder's thread here
            self.booking = None

    def _book(self, row: dict[str, Any], book: DayBook) -> None:
        rec, t, first = book.records, book.t, book.first_record_id
        applied, expiry_day, appealed, tallies = (
            book.applied, book.expiry_day, book.appealed, book.tallies,
        )  # fmt: skip
        n = len(rec)
        held = self.held["records"]
        whole = held.whole(n)
        # Filled in one compiled pass: new arrays (allocated by NumPy: huge pages) for a
        # whole batch, else the held rows' buffers.
        dtypes = HELD["records"]
        columns = {k: np.empty(n, dtypes[k]) for k in COMPUTED} if whole else held.room(n)
        _record_columns(first, t, self.adult0, rec.truth, rec.actor, applied, appealed,
                        tuple(columns[k] for k in COMPUTED))  # fmt: skip
        person = rec.person
        if self.adult0:  # a city engine's: global ids
            person = person + np.int32(self.adult0)
        given = {"person": person, "behaviour": rec.behaviour, "channel": rec.channel,
                 "truth": rec.truth, "expiry_day": expiry_day}  # fmt: skip
        if not self.out:  # the actor column users see (on disk: store.STORED_AS)
            given["actor"] = _shifted(rec.actor, self.adult0)
        self._store("records", whole, columns, given)
        if len(appealed):
            self.appeals_filed.append(
                (first + appealed, person[appealed], np.full(len(appealed), t, dtype=np.int32))
            )
        # True events and records per behaviour and group (for detection and chilling audits).
        self.beh_daily.append(tallies)
        # Each tally row's sums over the negative and the positive columns, in one product.
        sums = (tallies @ self.sign_columns).tolist()
        misattributed, false = (sum(sums[k]) for k in (MISATTRIBUTED_RECORDS, FALSE_REPORTS))
        row["true_negative"], row["true_positive"] = sums[TRUE_EVENTS]
        row["records_negative"] = sums[RECORDS][0]
        row["records_positive"] = n - row["records_negative"]
        row["records_correct"] = n - misattributed - false
        row["records_misattributed"] = misattributed
        row["records_false_report"] = false
        self.daily.append(row)

    def _records_batch(self, c: dict[str, np.ndarray]) -> pa.RecordBatch:
        tb = self.tables
        if self.out:  # in the form stored on disk (store.STORED_AS, store.HOW_STORED)
            schema = self.records_on_disk
            actor = pa.array(c["actor"])  # -1 but for misattributed records
            expiry = pa.array(c["expiry_day"])  # -1: never expires
            appealed = pa.array(c["appealed"])
        else:
            schema = STREAM_SCHEMAS["records"]
            actor = pa.array(c["actor"], mask=c["truth"] == FALSE_REPORT)
            expiry = pa.array(c["expiry_day"], mask=c["expiry_day"] < 0)
            appealed = pa.array(c["appealed"].view(np.bool_))
        return pa.record_batch(
            schema=schema,
            data={
                "record_id": pa.array(c["record_id"]),
                "day": pa.array(c["day"]),
                "person": pa.array(c["person"]),
                "behaviour": dictionary(c["behaviour"], tb.world.behaviours),
                "channel": dictionary(c["channel"], tb.observation.names),
                "truth": dictionary(c["truth"], list(TRUTH_NAMES)),
                "actor": actor,
                "points": pa.array(c["points"]),
                "shadow_points": pa.array(c["shadow_points"]),
                "expiry_day": expiry,
                "appealed": appealed,
            },
        )

    def spells_ended(self, spells: tuple[np.ndarray, ...]) -> None:
        person, li, world, start, end = spells
        if len(person):
            self._hold(
                "spells",
                {"person": person, "list": li, "world": world, "start": start, "end": end},
            )

    def _spells_batch(self, c: dict[str, np.ndarray]) -> pa.RecordBatch:
        return pa.record_batch(
            schema=STREAM_SCHEMAS["spells"],
            data={
                "person": pa.array(c["person"] + self.adult0, type=pa.int32()),
                "list": dictionary(c["list"], self.tb.lists),
                "world": dictionary(c["world"], list(WORLDS)),
                "start": pa.array(c["start"], type=pa.int32()),
                "end": pa.array(c["end"], type=pa.int32(), mask=c["end"] < 0),
            },
        )

    # -- end of run ----------------------------------------------------------------------------

    def finish(self, state: SchemeState) -> None:
        """Write the end-of-run tables from the final state."""
        self.wait_day()
        if self.owns_pools:
            self.pipeline.shutdown()
        tables: dict[str, Callable[[], Iterator[pa.RecordBatch] | pa.Table]] = {
            "daily": lambda: pa.Table.from_pylist(self.daily),
            "behaviour_daily": self._behaviour_daily,
            "appeals": self._appeals,
            "children": lambda: self._children(state),
        }

        def end_spells() -> None:  # spells still open at T end with null
            self.spells_ended(open_spells(state.since))
            self.release_held()
            for name, writer in self.writers.items():
                writer.close(STREAM_SCHEMAS[name])

        if self.out is None:
            end_spells()
            if self.ids is not None:  # the shard merges the daily tables of its cities
                del tables["daily"], tables["behaviour_daily"]
            tables["persons"] = lambda: built_ahead(self._persons(state, 0, self.pop.adults))
            tables["edges"] = self._edges
            for name, build in tables.items():
                self.in_memory[name] = as_table(build())
            for name, batches in self.memory.items():
                self.in_memory[name] = pa.Table.from_batches(batches, schema=STREAM_SCHEMAS[name])
            return
        # Each table in row chunks: a 100 M adult run never holds a whole copy. The persons
        # table, the largest, in parts written at once, the first on this thread; the spells
        # and the small tables on one more thread beside them (nothing else is left to run).
        out = self.out
        folder = out / "persons"
        folder.mkdir(exist_ok=self.ids is not None)
        if self.ids is not None:
            del tables["daily"], tables["behaviour_daily"]

        def write_the_rest() -> None:
            end_spells()
            for name, build in tables.items():
                write_batches(self._path(name), build(), LAYOUTS[name])

        def write_persons(part: int, lo: int, hi: int) -> None:
            batches = built_ahead(self._persons(state, lo, hi))
            name = f"{self.prefix}part-{part:05d}.parquet"
            write_batches(folder / name, batches, LAYOUTS["persons"])

        first, *rest = person_parts(self.pop.adults)
        with ThreadPoolExecutor(1 + len(rest)) as pool:
            others = [pool.submit(write_the_rest)]
            others += [pool.submit(write_persons, k, *part) for k, part in enumerate(rest, 1)]
            try:
                write_persons(0, *first)
            finally:
                for written in others:  # re-raises a failed write here, once all are done
                    written.result()
                self.edges_written.result()
                if self.owns_pools:
                    self.edges_pool.shutdown()
        if self.ids is None:  # a multi-city run's is written once, by shard.py
            write_json(self.out / "meta.json", self.meta())

    def meta(self) -> dict[str, Any]:
        meta = run_meta(self.tables, self.cities)
        meta.update(self.module_meta)
        return meta

    def _behaviour_daily(self) -> pa.Table:
        behaviours, groups = self.tables.world.behaviours, list(self.tables.kind.groups)
        if not self.beh_daily:
            counts = np.zeros((0, 4, len(groups) * len(behaviours)), dtype=np.int64)
        else:
            counts = np.stack(self.beh_daily)  # [T, 4, B * G]
        return behaviour_daily_table(counts, behaviours, groups)

    def _appeals(self) -> pa.Table:
        if self.appeals_filed:
            rid, person, day = (np.concatenate(c) for c in zip(*self.appeals_filed, strict=True))
        else:
            rid = np.empty(0, np.int64)
            person = day = np.empty(0, np.int32)
        upheld = np.zeros(len(rid), dtype=bool)
        decided = np.zeros(len(rid), dtype=bool)
        if self.decisions:
            d_rid = np.concatenate([d[0] for d in self.decisions])
            d_up = np.concatenate([d[1] for d in self.decisions])
            pos = np.searchsorted(rid, d_rid)  # record ids are filed in increasing order
            decided[pos] = True
            upheld[pos] = d_up
        return pa.table(
            {
                "record_id": pa.array(rid, type=pa.int64()),
                "person": pa.array(person, type=pa.int32()),
                "filed_day": pa.array(day, type=pa.int32()),
                "decision_day": pa.array(day + self.appeal_days, type=pa.int32()),
                "upheld": pa.array(upheld, mask=~decided),
            }
        )

    def _persons(self, st: SchemeState, lo: int, hi: int) -> Iterator[pa.RecordBatch]:
        """Adults lo .. hi - 1, in row chunks."""
        tb, pop, groups = self.tb, self.pop, list(self.tables.kind.groups)
        names = sorted({n for t in tb.tier_names for n in t})
        code = np.zeros((len(tb.packs), max(len(t) for t in tb.tier_names)), dtype=np.int16)
        for p, tiers in enumerate(tb.tier_names):
            for k, name in enumerate(tiers):
                code[p, k] = names.index(name)
        civic = pop.civic
        # np.take, not fancy indexing: five times faster with small integer indices.
        for a, b in row_chunks(hi, first=lo):
            first_code = np.take(tb.city_pack, pop.city[a:b]) * code.shape[1]
            bits = st.bits[a:b]
            cols: dict[str, Any] = {
                "person": np.arange(a + self.adult0, b + self.adult0, dtype=np.int32),
                "city": dictionary(pop.city[a:b], [c.name for c in self.cities]),
                "group": dictionary(pop.group[a:b], groups),
                "risk": pop.risk_buckets.value(pop.risk_rank[a:b]),
                "civic": civic[a:b],
                "partner": _shifted(pop.partner(np.arange(a, b)).astype(np.int32), self.adult0),
                "degree": pop.nbr_degree[a:b].astype(np.int32),
                "score": st.score[a:b, 0].copy(),
                "shadow_score": st.score[a:b, 1].copy(),
                "tier": dictionary(np.take(code, first_code + st.tier[a:b, 0]), names),
                "shadow_tier": dictionary(np.take(code, first_code + st.tier[a:b, 1]), names),
                "deter": np.take(st.deter_table, st.deter_level[a:b]),
            }
            for li, name in enumerate(tb.lists):
                cols[f"on.{name}"] = (bits[:, 0] >> li & 1).astype(bool)
                cols[f"shadow_on.{name}"] = (bits[:, 1] >> li & 1).astype(bool)
            yield pa.record_batch(cols)

    def _children(self, state: SchemeState) -> Iterator[pa.RecordBatch]:
        pop, bits = self.pop, state.bits[:, 0]
        reach = self.tables.consequences.relations["children"]
        child0 = 0 if self.ids is None else self.ids.first_child
        for a, b in row_chunks(pop.children):
            city, parents = pop.child_city[a:b], (pop.parent1[a:b], pop.parent2[a:b])
            ids = [_shifted(p, self.adult0) for p in parents]
            yield pa.record_batch(
                {
                    "child": np.arange(a + child0, b + child0, dtype=np.int32),
                    "city": dictionary(city, [c.name for c in self.cities]),
                    "group": dictionary(pop.child_group[a:b], list(self.tables.kind.groups)),
                    "parent1": ids[0],
                    "parent2": pa.array(ids[1], mask=parents[1] < 0),
                    "restricted": reached(reach.sanction, bits, city, parents),
                    "privileged": reached(reach.privilege, bits, city, parents),
                }
            )

    def _edges(self) -> Iterator[pa.RecordBatch]:
        """Each undirected edge once, as (a, b) with a < b, in chunks of adults. A city
        engine's, in global ids: an edge to another city is written by the city of its lower
        end."""
        pop = self.pop
        ghosts = np.empty(0, np.int64) if self.ids is None else self.ids.ghosts
        for a, b in row_chunks(pop.adults):
            lo = pop.nbr_block[a // NBR_BLOCK]
            hi = neighbours_start(b, pop.nbr_block, pop.nbr_degree)
            src = np.repeat(np.arange(a, b, dtype=np.int32), pop.nbr_degree[a:b])
            nbr = pop.nbr[lo:hi]
            if self.ids is not None:
                src = src + np.int32(self.adult0)
                far = nbr >= pop.adults
                nbr = np.where(far, 0, nbr + self.adult0).astype(np.int32)
                nbr[far] = ghosts[pop.nbr[lo:hi][far] - pop.adults]
            keep = src < nbr
            yield pa.record_batch({"a": src[keep], "b": nbr[keep]})


def behaviour_daily_table(counts: np.ndarray, behaviours: list[str], groups: list[str]) -> pa.Table:
    """The behaviour_daily table from the day's tallies [T, TALLIES, G B]."""
    G, B = len(groups), len(behaviours)
    T = counts.shape[0]
    day = np.repeat(np.arange(T, dtype=np.int32), G * B)
    code = np.tile(np.arange(G * B), T)
    return pa.table(
        {
            "day": day,
            "behaviour": dictionary(code // G, behaviours),
            "group": dictionary(code % G, groups),
            "true_events": counts[:, 0].ravel(),
            "records": counts[:, 1].ravel(),
            "misattributed": counts[:, 2].ravel(),
            "false_reports": counts[:, 3].ravel(),
        }
    )


def run_meta(tables: EntityTables, cities: list) -> dict[str, Any]:
    """meta.json: the index tables of a run (behaviours, channels, lists, tiers, packs)."""
    tb, world, cons = tables.scheme, tables.world, tables.consequences
    return {
        "behaviours": world.behaviours,
        "channels": tables.observation.names,
        "lists": tb.lists,
        "tiers": dict(zip(tb.packs, tb.tier_names, strict=True)),
        "negative": [bool(x) for x in world.negative],
        "association_behaviour": world.behaviours[cons.assoc_behaviour],
        "consequences": cons.by_list,
        "consequences_by_pack": cons.by_pack,
        "city_pack": {c.name: c.pack for c in cities},
        "groups": list(tables.kind.groups),
    }


# A multiple of the graph's block of adults, and Parquet's row group as Arrow writes it by
# default. Chunks of 4 M rows held 0.46 GiB more at 100 M adults, the edges' temporaries kept.
ROWS_PER_CHUNK = 1 << 20


def row_chunks(n: int, first: int = 0) -> Iterator[tuple[int, int]]:
    """Rows first .. n - 1 in chunks; at least one chunk, so that a table without rows is
    still written with its columns."""
    yield first, min(first + ROWS_PER_CHUNK, n)
    for a in range(first + ROWS_PER_CHUNK, n, ROWS_PER_CHUNK):
        yield a, min(a + ROWS_PER_CHUNK, n)


def person_parts(adults: int) -> list[tuple[int, int]]:
    """The persons table's parts (row ranges), one per usable core, none below MIN_SPLIT rows.
    Encoding 10 M adults' table took 1.35 to 1.59 s on one core, 0.86 to 0.91 s in two halves
    at once."""
    parts = max(1, min(usable_cores(), adults // MIN_SPLIT))
    return [(k * adults // parts, (k + 1) * adults // parts) for k in range(parts)]


def as_table(built: Iterator[pa.RecordBatch] | pa.Table) -> pa.Table:
    return built if isinstance(built, pa.Table) else pa.Table.from_batches(list(built))
