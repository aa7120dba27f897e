"""Run directories: Parquet tables written in chunks, read back through DuckDB or Arrow.

RUN/
  scenario.yaml          resolved scenario (packs embedded): repeats the run exactly
  summary.json           MODEL.md's summary metrics plus adults, days, seed, wall seconds
  meta.json              index tables: behaviours, channels, lists and their consequences
  records/part-*.parquet every record (streamed; a crash loses at most the last chunk)
  spells/part-*.parquet  list spells per world (end null = still listed at T)
  appeals.parquet        appeals: record, person, filed and decision day, upheld (null
                         when the decision day is after the last day)
  daily.parquet          one row per day: events, records, lists, tiers, mean score
  behaviour_daily.parquet true events and records per day, behaviour and group
  persons.parquet        adults at T;  children.parquet: children at T;  edges.parquet
"""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from xinyong.errors import XinyongError

TABLES = (
    "records",
    "spells",
    "appeals",
    "daily",
    "behaviour_daily",
    "persons",
    "children",
    "edges",
)


@functools.cache
def _names(names: tuple[str, ...]) -> pa.Array:
    return pa.array(names, type=pa.string())


def dictionary(codes: np.ndarray, names: list[str]) -> pa.DictionaryArray:
    """Codes into a fixed list of names: compact on disk, strings to DuckDB and Polars."""
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int16)), _names(tuple(names)))


class ChunkWriter:
    """Buffers Arrow batches and writes a complete Parquet file per chunk of rows.

    Writing happens on a background thread (Arrow releases the GIL while encoding), so the
    simulation goes on while the previous chunk is compressed; at most one chunk waits.
    """

    def __init__(self, folder: Path, rows_per_part: int = 2_000_000) -> None:
        self.folder = folder
        self.sorted_columns = SORTED_COLUMNS.get(folder.name, ())
        folder.mkdir(parents=True, exist_ok=True)
        self.rows_per_part = rows_per_part
        self.batches: list[pa.RecordBatch] = []
        self.rows = 0
        self.parts = 0
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.pending: Future | None = None

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
        self.wait()
        self.pending = self.pool.submit(
            write_batches,
            self.folder / f"part-{self.parts:05d}.parquet",
            table,
            self.sorted_columns,
        )
        self.parts += 1
        self.batches, self.rows = [], 0

    def wait(self) -> None:
        if self.pending is not None:
            self.pending.result()  # re-raises a failed write here
            self.pending = None

    def close(self, schema: pa.Schema) -> None:
        self.flush()
        self.wait()
        self.pool.shutdown()
        if self.parts == 0:  # an empty table still has its columns
            write_batches(self.folder / "part-00000.parquet", schema.empty_table())


# Columns in increasing order, per table: the only ones whose min/max statistics let a reader
# skip row groups. Statistics and dictionaries on the other columns cost a third of the
# writing time and save nothing (person ids, points: near-unique or tiny after zstd).
SORTED_COLUMNS = {
    "records": ("record_id", "day"),
    "daily": ("day",),
    "behaviour_daily": ("day",),
    "appeals": ("record_id",),
    "persons": ("person",),
    "children": ("child",),
    "edges": ("a",),
}


def write_batches(
    path: Path, batches: pa.Table | Iterable[pa.RecordBatch], sorted_columns: tuple[str, ...] = ()
) -> None:
    """Write whole or not at all: a crash leaves no half-written file under the final name.

    Dictionary-coded columns keep Parquet dictionaries; increasing integer columns are delta
    encoded and keep statistics (about 3x faster than the defaults, and smaller)."""
    tmp = path.with_name("." + path.name + ".tmp")
    writer = None
    try:
        for batch in [batches] if isinstance(batches, pa.Table) else batches:
            if writer is None:
                fields = {f.name: f.type for f in batch.schema}
                writer = pq.ParquetWriter(
                    tmp,
                    batch.schema,
                    compression="zstd",
                    use_dictionary=[n for n, t in fields.items() if pa.types.is_dictionary(t)],
                    write_statistics=[n for n in sorted_columns if n in fields],
                    column_encoding={
                        n: "DELTA_BINARY_PACKED"
                        for n in sorted_columns
                        if n in fields and pa.types.is_integer(fields[n])
                    },
                )
            writer.write(batch)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise ValueError(f"{path.name}: nothing to write (not even a schema)")
    tmp.rename(path)


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    tmp.rename(path)


def prepare_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        # Only a run directory is ever replaced: --overwrite must not delete other folders.
        if not (out / "scenario.yaml").exists():
            raise XinyongError("exists and is not a run directory; choose another --out", file=out)
        if not overwrite:
            raise XinyongError("run directory exists; pass --overwrite to replace it", file=out)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


class RunDir:
    """Read side of a run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not (self.path / "scenario.yaml").exists():
            raise XinyongError("not a run directory (no scenario.yaml)", file=self.path)

    def summary(self) -> dict[str, Any]:
        return json.loads((self.path / "summary.json").read_text())

    def meta(self) -> dict[str, Any]:
        return json.loads((self.path / "meta.json").read_text())

    def _source(self, name: str) -> str:
        folder = self.path / name
        if folder.is_dir():
            return str(folder / "*.parquet")
        return str(self.path / f"{name}.parquet")

    def table(self, name: str) -> pa.Table:
        if name not in TABLES:
            raise XinyongError(f"unknown table '{name}' (tables: {', '.join(TABLES)})")
        return self.connect().sql(f"SELECT * FROM {name}").to_arrow_table()

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with one view per table of the run."""
        con = duckdb.connect()
        for name in TABLES:
            src = self._source(name)
            if Path(src).exists() or "*" in src:
                con.sql(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{src}')")
        return con
