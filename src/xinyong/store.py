"""Run directories: Parquet tables written in chunks, read back through DuckDB or Arrow.

RUN/
  scenario.yaml          resolved scenario (packs embedded): repeats the run exactly
  summary.json           the summary metrics of docs/model.md plus adults, days, seed, wall seconds
  meta.json              index tables: behaviours, channels, lists and their consequences
  records/part-*.parquet every record (streamed; a crash loses at most the last chunk)
  spells/part-*.parquet  list spells per world (end null = still listed at T)
  appeals.parquet        appeals: record, person, filed and decision day, upheld (null
                         when the decision day is after the last day)
  daily.parquet          one row per day: events, records, lists, tiers, mean score
  behaviour_daily.parquet true events and records per day, behaviour and group
  persons/part-*.parquet adults at T (in parts written at once)
  children.parquet       children at T;  edges.parquet: the social graph

Some columns are stored in a shorter form (STORED_AS, HOW_STORED), which the run's DuckDB
views restore: read the files through `xinyong sql` or `Run.table` to see the tables as
docs/model.md defines them.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import stat
from collections.abc import Iterable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from xinyong import modules
from xinyong.atomic import (
    MARKER,
    MARKER_KIND,
    PART,
    is_module_table,
    read_marker,
    run_tables,
    write_text,
)
from xinyong.errors import XinyongError
from xinyong.files import read_bytes
from xinyong.observe import CORRECT, MISATTRIBUTED, TRUTH_NAMES
from xinyong.threads import background

WRITE_BUFFER = 4 << 20  # bytes gathered before each write to a file

# Columns stored in a shorter form than the table users see, and the SQL that restores them.
# A correct record's actor is its person and a false report has none, so on disk `actor` is
# kept for misattributed records only (-1 for the others): 44% of the records' bytes and a
# seventh of their writing time saved (docs/performance.md).
STORED_AS = {
    "records": {
        "actor": f"CASE truth WHEN '{TRUTH_NAMES[CORRECT]}' THEN person "
        f"WHEN '{TRUTH_NAMES[MISATTRIBUTED]}' THEN actor END",
    },
}
# Every table: booleans are stored as bytes 0 and 1 (Arrow encodes a Parquet boolean at about
# 3.4 ns a value, a byte at 1), and the columns a layout names in `minus_one_for_null` hold -1
# for null (definition levels cost as much as the values). Each such column says so in its
# field metadata, from which the views restore it.
HOW_STORED = b"xinyong.stored_as"
BYTE_BOOLEAN, MINUS_ONE_NULL = b"boolean as a byte", b"null as -1"


@functools.cache
def _names(names: tuple[str, ...]) -> pa.Array:
    return pa.array(names, type=pa.string())


def dictionary(codes: np.ndarray, names: list[str]) -> pa.DictionaryArray:
    """Codes into a fixed list of names: compact on disk, strings to DuckDB and Polars.
    The codes are indices into `names` by construction (compiled tables), so they are wrapped
    without a copy or a bounds check: the arrays a day hands over are never written again."""
    indices = pa.array(codes.astype(np.int16, copy=False))
    return pa.DictionaryArray.from_arrays(indices, _names(tuple(names)), safe=False)


def view_columns(name: str, files: list[Path]) -> str:
    """The select list that gives a table's columns, read from its Parquet `files`, as users
    see them: STORED_AS, then what each field's metadata says (HOW_STORED)."""
    if not files:
        return "*"
    restore = dict(STORED_AS.get(name, {}))
    for field in pq.read_schema(files[0]):
        how = (field.metadata or {}).get(HOW_STORED)
        if field.name in restore or how is None:
            continue
        quoted = f'"{field.name}"'
        restore[field.name] = (
            f"CAST({quoted} AS BOOLEAN)" if how == BYTE_BOOLEAN else f"NULLIF({quoted}, -1)"
        )
    if not restore:
        return "*"
    return "* REPLACE (" + ", ".join(f'{sql} AS "{c}"' for c, sql in restore.items()) + ")"


class ChunkWriter:
    """Buffers Arrow batches and writes a complete Parquet file per chunk of rows.

    Writing happens on a background thread (Arrow releases the GIL while encoding), so the
    simulation goes on while earlier chunks are compressed; at most `queued` chunks wait (with
    one, the day loop waited on the writer about 2 ms a day at 10 M adults).
    """

    def __init__(
        self,
        folder: Path,
        rows_per_part: int = 2_000_000,
        queued: int = 2,
        *,
        prefix: str = "",
        pool: Executor | None = None,
    ) -> None:
        self.folder = folder
        self.layout = LAYOUTS[folder.name]
        folder.mkdir(parents=True, exist_ok=True)
        self.rows_per_part = rows_per_part
        self.batches: list[pa.RecordBatch] = []
        self.rows = 0
        self.parts = 0
        # `prefix` names a city engine's parts (recorder.Ids); `pool`, a writer thread shared
        # with other writers of the process (left running by close).
        self.prefix = prefix
        self.owns_pool = pool is None
        self.pool = background() if pool is None else pool
        self.queued = queued
        self.pending: list[Future] = []  # in the order written

    def add(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        self.batches.append(batch)
        self.rows += batch.num_rows
        if self.rows >= self.rows_per_part:
            self.flush()

    def flush(self) -> None:
        if not self.batches:
            return
        table = pa.Table.from_batches(self.batches)
        self.wait(self.queued - 1)
        self.pending.append(
            self.pool.submit(
                write_batches,
                self.folder / f"{self.prefix}part-{self.parts:05d}.parquet",
                table,
                self.layout,
            )
        )
        self.parts += 1
        self.batches, self.rows = [], 0

    def wait(self, leave: int = 0) -> None:
        """Until at most `leave` chunks are still being written."""
        while len(self.pending) > leave:
            self.pending.pop(0).result()  # re-raises a failed write here

    def close(self, schema: pa.Schema) -> None:
        self.flush()
        self.wait()
        if self.owns_pool:
            self.pool.shutdown()
        if self.parts == 0:  # an empty table still has its columns
            empty = self.folder / f"{self.prefix}part-00000.parquet"
            write_batches(empty, schema.empty_table(), self.layout)


@dataclass(frozen=True)
class Layout:
    """How a table is written (measured on R1's tables; see docs/performance.md).

    `sorted`: columns in increasing order, the only ones whose min/max statistics let a reader
    skip row groups. Statistics and dictionaries on the other columns cost a third of the
    writing time and save nothing (person ids, points: near-unique or tiny after zstd).
    `nullable`: the only columns that may hold nulls. The others are written as required,
    which spares encoding definition levels: a quarter of the records' writing time.
    `minus_one_for_null`: integer columns that may hold nulls, written as required with -1
    for null (the views put the nulls back): for the records, whose nulls would cost as much
    as their values.
    `noisy`: numbers in no order, such as person ids and traits. These and the key (the first
    sorted column) are byte-stream split and lz4 compressed: their high bytes compress, the
    rest would cost zstd time for nothing (person ids a third smaller than plain and zstd and
    twice as fast to write).
    `split`: numbers with few high bytes, such as scores and degrees: byte-stream split before
    zstd, smaller and two to three times faster than zstd alone.
    `dictionary`: numbers with few values (besides dictionary-typed columns).
    Other columns are compressed as they are with `codec`: zstd, or lz4 for the records,
    written while the run goes on (their encoding is a quarter of a 10 M adult run's work):
    15% faster to write, 7% larger.
    """

    sorted: tuple[str, ...] = ()
    nullable: tuple[str, ...] = ()
    minus_one_for_null: tuple[str, ...] = ()
    codec: str = "zstd"
    noisy: tuple[str, ...] = ()
    split: tuple[str, ...] = ()
    dictionary: tuple[str, ...] = ()


LAYOUTS = {
    "records": Layout(
        sorted=("record_id", "day"),
        minus_one_for_null=("actor", "expiry_day"),
        codec="lz4",
        noisy=("person",),
    ),
    "spells": Layout(nullable=("end",)),  # persons in order within each day
    "daily": Layout(sorted=("day",)),
    "behaviour_daily": Layout(sorted=("day",)),
    "appeals": Layout(sorted=("record_id",), nullable=("upheld",), noisy=("person",)),
    "persons": Layout(
        sorted=("person",),
        noisy=("partner", "risk", "civic"),
        split=("degree", "score", "shadow_score"),
        dictionary=("deter",),
    ),
    "children": Layout(sorted=("child",), nullable=("parent2",), noisy=("parent1", "parent2")),
    "edges": Layout(sorted=("a",), noisy=("b",)),
}


def write_batches(
    path: Path, batches: pa.Table | Iterable[pa.RecordBatch], layout: Layout = Layout()
) -> None:
    """Write whole or not at all: a crash leaves no half-written file under the final name.

    Dictionary-coded columns keep Parquet dictionaries; see `Layout` for the rest (about 4x
    faster than pyarrow's defaults, and smaller)."""
    tmp = path.with_name("." + path.name + ".tmp")
    writer = None
    # Buffered: Arrow writes each page as it is encoded, one system call per few kilobytes.
    sink = pa.output_stream(str(tmp), buffer_size=WRITE_BUFFER)
    try:
        for batch in [batches] if isinstance(batches, pa.Table) else batches:
            if writer is None:
                schema = stored_schema(batch.schema, layout)
                types = {f.name: f.type for f in schema}
                numeric = {
                    n for n, t in types.items() if pa.types.is_integer(t) or pa.types.is_floating(t)
                }
                noisy = numeric & {*layout.sorted[:1], *layout.noisy}
                split = noisy | (numeric & set(layout.split))
                dictionary = {n for n, t in types.items() if pa.types.is_dictionary(t)}
                writer = pq.ParquetWriter(
                    sink,
                    schema,
                    compression={
                        n: "lz4" if n in noisy else "zstd" if n in split else layout.codec
                        for n in types
                    },
                    use_dictionary=sorted(dictionary | (set(layout.dictionary) & set(types))),
                    write_statistics=[n for n in layout.sorted if n in types],
                    column_encoding=dict.fromkeys(sorted(split), "BYTE_STREAM_SPLIT"),
                    # Values handed to the encoders 64 k at a time instead of 1 k, in version 2
                    # data pages (read by DuckDB, Polars and Arrow): the records 12% faster.
                    write_batch_size=1 << 16,
                    data_page_version="2.0",
                )
            writer.write(_as_stored(batch, schema, path))
        if writer is None:
            raise ValueError(f"{path.name}: nothing to write (not even a schema)")
        writer.close()
        sink.close()
        settle(tmp)
    except BaseException:
        if writer is not None:
            writer.close()
        sink.close()
        tmp.unlink(missing_ok=True)
        raise
    tmp.rename(path)


def settle(path: Path) -> None:
    """Put the file on disk and let go of its cached pages: the next files' pages then reuse
    them, where pages new to this virtual machine cost more to fill than the data does
    (docs/performance.md). A crash of the machine, too, then loses no file already named."""
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            getattr(os, "fdatasync", os.fsync)(fd)  # macOS has fsync only
        except OSError as exc:  # a file system that cannot: the file is written all the same
            if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
                raise
        if hasattr(os, "posix_fadvise"):
            with contextlib.suppress(OSError):  # advice only: a file system may ignore it
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def stored_schema(schema: pa.Schema, layout: Layout) -> pa.Schema:
    """The columns as written: booleans as bytes, `minus_one_for_null` columns required, each
    marked in its field metadata (HOW_STORED); only `nullable` columns optional."""
    return pa.schema([_stored_field(f, layout) for f in schema])


def _stored_field(field: pa.Field, layout: Layout) -> pa.Field:
    nullable = field.name in layout.nullable
    if pa.types.is_boolean(field.type):
        return pa.field(field.name, pa.uint8(), nullable, {HOW_STORED: BYTE_BOOLEAN})
    if field.name in layout.minus_one_for_null:
        return pa.field(field.name, field.type, False, {HOW_STORED: MINUS_ONE_NULL})
    return field.with_nullable(nullable)


def _as_stored(
    batch: pa.Table | pa.RecordBatch, schema: pa.Schema, path: Path
) -> pa.Table | pa.RecordBatch:
    """The columns as `schema` stores them, refusing nulls in a required column."""
    columns = []
    for field, column in zip(schema, batch.columns, strict=True):
        how = (field.metadata or {}).get(HOW_STORED)
        if how == BYTE_BOOLEAN and pa.types.is_boolean(column.type):
            column = pc.cast(column, pa.uint8())
        elif how == MINUS_ONE_NULL and column.null_count:
            column = pc.fill_null(column, -1)
        if not field.nullable and column.null_count:
            raise ValueError(f"{path.name}: column '{field.name}' has nulls but is required")
        columns.append(column)
    kind = pa.Table if isinstance(batch, pa.Table) else pa.RecordBatch
    return kind.from_arrays(columns, schema=schema)


def write_json(path: Path, data: Any) -> None:
    """Write a JSON document whole or not at all."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


MAX_JSON = 256 << 20  # a run's JSON documents (an audit's curves are a few MiB)


def read_json(path: Path, what: str) -> Any:
    """A JSON document of a run directory (a regular file, not a symbolic link); a missing or
    damaged one is a one-line error that says what to do."""
    if not os.path.lexists(path):
        raise XinyongError(
            f"{what} is missing: the run is damaged; {again(path.parent)}", file=path
        )
    try:
        return json.loads(read_bytes(path, MAX_JSON, follow_links=False))
    except XinyongError as err:
        raise XinyongError(
            f"{what} {err.message}: the run is damaged; {again(path.parent)}", file=path
        ) from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise XinyongError(
            f"{what} is damaged ({exc.__class__.__name__}); {again(path.parent)}", file=path
        ) from None


def summary_problem(summary: Any, *, single: bool) -> str | None:
    """What is wrong with a summary document, or None: a mapping holding the keys every
    reader uses (`single`: a run's seed; else a set's seeds), each of its type, and every
    other value a number or null."""
    if not isinstance(summary, dict):
        return "not a mapping"
    needed = ["scenario", "adults", "days", "seed" if single else "seeds"]
    for key in needed:
        if key not in summary:
            return f"no '{key}'"
    for key, value in summary.items():
        kind = SUMMARY_TYPES.get(key, (int, float, type(None)))
        if key == "seed":
            kind = int
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"'{key}' is {type(value).__name__}"
        if key in ("adults", "days") and not (value >= 1 and float(value).is_integer()):
            return f"'{key}' is {value!r}"  # a set's is a mean over seeds: a whole float
    if not single and not all(isinstance(s, int) for s in summary["seeds"]):
        return "'seeds' are not whole numbers"
    return None


def again(run: Path) -> str:
    """What to do about a damaged or unfinished run."""
    return f"run it again (xinyong run {run / 'scenario.yaml'} --out {run} --overwrite)"


def sql_string(value: str | Path) -> str:
    """A SQL string literal (DuckDB): paths and names are quoted, never pasted."""
    return "'" + str(value).replace("'", "''") + "'"


# What every reader of a run relies on; anything else in a document or a table may vary
# with the scenario (a list's columns, a metric per pack).
SUMMARY_TYPES: dict[str, type | tuple[type, ...]] = {
    "scenario": str,
    "adults": (int, float),
    "days": (int, float),
    "intervals": dict,
    "per_seed": dict,
    "seeds": list,
    "interval": str,
}
META_TYPES: dict[str, type] = {"behaviours": list, "channels": list, "lists": list, "tiers": dict}
# The columns each table must hold; each module's come from its declaration (modules.columns).
COLUMNS = {
    "records": ("record_id", "day", "person", "behaviour", "channel", "truth", "actor", "points",
                "shadow_points", "expiry_day", "appealed"),
    "spells": ("person", "list", "world", "start", "end"),
    "appeals": ("record_id", "person", "filed_day", "decision_day", "upheld"),
    "daily": ("day", "mean_score"),
    "behaviour_daily": ("day", "behaviour", "group", "true_events", "records"),
    "persons": ("person", "city", "group", "risk", "civic", "degree", "score", "shadow_score"),
    "children": ("child", "city", "group", "parent1", "parent2"),
    "edges": ("a", "b"),
}  # fmt: skip
_CHECKED: dict[Path, tuple] = {}  # run directory -> what its files were when last checked


class RunDir:
    """Read side of a run directory: refuses, in one line naming what is missing or damaged,
    a folder that is not a run, a run that did not finish and tables that cannot be read.
    Every reader (audit, explain, sql, compare, the report, Run.open, the web application)
    opens a run here, so every one runs the same damage check (`check`).

    `finished=False` opens a run still being written (its summary is computed from it)."""

    def __init__(self, path: str | Path, *, finished: bool = True) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise XinyongError("not a run directory (no such folder)", file=self.path)
        entries = self._entries() if finished else ()  # before any file is read
        self.marker = read_marker(self.path)
        if self.marker is None and not (self.path / "scenario.yaml").exists():
            raise XinyongError("not a run directory (no scenario.yaml)", file=self.path)
        if finished:
            self.check(entries)

    def check(self, entries: tuple | None = None) -> None:
        """The damage check: no symbolic link or special file, the marker, the summary's
        schema, the scenario, the meta and each table's parts and columns; the first problem
        in one line naming the file. Done once per state of the folder's files."""
        entries = self._entries() if entries is None else entries
        key = self.path.resolve()
        if _CHECKED.get(key) == entries:
            return
        self._check_marker()
        self.summary()
        sc = self.scenario()
        if not self.is_set:
            self._check_meta()
            for name in run_tables(sc):  # the run's own, and those of the modules it ran
                self.files(name)
        if len(_CHECKED) > 1024:
            _CHECKED.clear()
        _CHECKED[key] = entries

    def _entries(self) -> tuple:
        """The run's files and table folders as they are now; a symbolic link or a FIFO,
        socket or device among them is refused (a run never holds one)."""
        out = []
        folders = [self.path]
        while folders:
            folder = folders.pop()
            try:
                names = sorted(os.listdir(folder))
            except OSError as exc:
                raise XinyongError(
                    f"cannot list the run ({os.strerror(exc.errno or 0)})", file=folder
                ) from None
            for name in names:
                entry = folder / name
                try:
                    st = os.lstat(entry)
                except OSError:
                    continue  # gone meanwhile
                if stat.S_ISLNK(st.st_mode):
                    raise XinyongError(
                        f"is a symbolic link: a run directory holds none; {again(self.path)}",
                        file=entry,
                    )
                if stat.S_ISDIR(st.st_mode):
                    if folder == self.path and name in run_tables():
                        folders.append(entry)
                    continue
                if not stat.S_ISREG(st.st_mode):
                    raise XinyongError(f"is not a regular file; {again(self.path)}", file=entry)
                out.append((str(entry), st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(out)

    def _check_marker(self) -> None:
        marker = self.path / MARKER
        data = read_json(marker, MARKER)
        if not isinstance(data, dict) or data.get("kind") != MARKER_KIND:
            raise XinyongError(
                f"{MARKER} is damaged (not a run's marker); {again(self.path)}", file=marker
            )
        if data.get("complete") is not True:
            raise XinyongError(
                "the run did not finish (stopped or killed before its end; a finished run is "
                "renamed into place, so this is a leftover staging folder): run it again",
                file=self.path,
            )

    def _check_meta(self) -> None:
        file = self.path / "meta.json"
        meta = read_json(file, "meta.json")
        if not isinstance(meta, dict):
            raise XinyongError(
                f"meta.json is damaged (not a mapping); {again(self.path)}", file=file
            )
        for key, kind in META_TYPES.items():
            if not isinstance(meta.get(key), kind):
                raise XinyongError(
                    f"meta.json is damaged ('{key}' is not a {kind.__name__}); {again(self.path)}",
                    file=file,
                )

    def scenario(self) -> Any:
        """The run's resolved scenario (a damaged one is a damaged run). Its packs are
        embedded: it may name no other file, so none is followed."""
        from xinyong.scenario import load_scenario
        from xinyong.yamlio import builtin_only

        file = self.path / "scenario.yaml"
        if not os.path.lexists(file):
            raise XinyongError(f"scenario.yaml is missing; {again(self.path)}", file=self.path)
        try:
            with builtin_only(file):
                return load_scenario(file)
        except XinyongError as err:
            where = f"{err.field}: " if err.field else ""
            raise XinyongError(
                f"scenario.yaml is damaged ({where}{err.message}); {again(self.path)}",
                file=err.file or file,
                line=err.line,
            ) from None

    @property
    def is_set(self) -> bool:
        """A `--replicates K` set: one run directory per seed under replicates/, no tables."""
        return (self.path / "replicates").is_dir() and not self.has("persons")

    def replicate_dirs(self) -> list[Path]:
        """The runs of a set (each checked), or [this run]."""
        if not self.is_set:
            return [self.path]
        seeds = (self.marker or {}).get("seeds")
        if seeds is None:  # a set made before markers: the seeds that finished
            found = sorted(
                (self.path / "replicates").glob("seed-*"),
                key=lambda p: int(p.name.removeprefix("seed-")),
            )
            dirs = [p for p in found if (p / "summary.json").exists()]
        else:
            dirs = [self.path / "replicates" / f"seed-{s}" for s in seeds]
        for d in dirs:
            if not d.is_dir():
                raise XinyongError(
                    f"replicate {d.name} is missing; {again(self.path)}", file=self.path
                )
            RunDir(d)
        if not dirs:
            raise XinyongError(
                f"the set holds no finished replicate; {again(self.path)}", file=self.path
            )
        return dirs

    def summary(self) -> dict[str, Any]:
        """summary.json, its schema checked: the keys every reader uses with their types,
        every other value a number or null."""
        file = self.path / "summary.json"
        if not os.path.lexists(file):
            raise XinyongError(
                f"the run did not finish (no summary.json); {again(self.path)}", file=self.path
            )
        summary = read_json(file, "summary.json")
        problem = summary_problem(summary, single=not self.is_set)
        if problem is not None:
            raise XinyongError(
                f"summary.json is damaged ({problem}); {again(self.path)}", file=file
            )
        return summary

    def meta(self) -> dict[str, Any]:
        return read_json(self.path / "meta.json", "meta.json")

    def has(self, name: str) -> bool:
        """Whether the run holds table `name`, as a folder of parts or as one file (runs of
        earlier versions wrote the persons table as one file); `connect` views those it holds."""
        return (self.path / name).is_dir() or (self.path / f"{name}.parquet").exists()

    def files(self, name: str) -> list[Path]:
        """The Parquet files of table `name`, each checked to be whole (its footer read)."""
        folder = self.path / name
        if folder.is_dir():
            files = sorted(f for f in folder.glob("*part-*.parquet") if PART.fullmatch(f.name))
        elif (self.path / f"{name}.parquet").exists():
            files = [self.path / f"{name}.parquet"]
        else:
            raise XinyongError(f"table '{name}' is missing; {again(self.path)}", file=self.path)
        if not files:
            raise XinyongError(f"table '{name}' has no parts; {again(self.path)}", file=self.path)
        columns = None
        for file in files:
            try:
                names = pq.read_metadata(file).schema.to_arrow_schema().names
            except (OSError, pa.ArrowException) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
                raise XinyongError(
                    f"table '{name}' is damaged ({reason}); {again(self.path)}", file=file
                ) from None
            required = COLUMNS.get(name) or modules.columns().get(name, ())
            missing = [c for c in required if c not in names]
            if missing or (columns is not None and names != columns):
                what = f"no column '{missing[0]}'" if missing else "columns unlike its other parts"
                raise XinyongError(
                    f"table '{name}' is damaged ({what}); {again(self.path)}", file=file
                )
            columns = names
        return files

    def table(self, name: str) -> pa.Table:
        if name not in run_tables():
            raise XinyongError(f"unknown table '{name}' (tables: {', '.join(run_tables())})")
        return self.connect().sql(f"SELECT * FROM {name}").to_arrow_table()

    def connect(self, *, threads: int | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with one view per table of the run. `threads=1`
        makes floating-point sums come out the same on every run (summary, audit)."""
        con = duckdb.connect()
        if threads is not None:
            con.execute(f"SET threads = {int(threads)}")
        if self.is_set:
            return con
        for name in run_tables():
            if not self.has(name) and name == "children" and self.marker is None:
                continue  # very early runs had no children table
            if is_module_table(name) and not self.has(name):
                continue  # a run whose scenario leaves that module off
            files = self.files(name)
            columns = view_columns(name, files)
            listed = ", ".join(sql_string(f) for f in files)
            con.sql(f"CREATE VIEW {name} AS SELECT {columns} FROM read_parquet([{listed}])")
        return con
