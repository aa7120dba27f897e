"""Run directories: what is written in chunks on disk equals what a run keeps in memory."""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import xinyong
from xinyong import recorder, store


@pytest.mark.parametrize(("chunk", "cores"), [(64, 3), (192, 1)])
def test_chunked_tables_on_disk_equal_the_tables_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, cores: int
) -> None:
    sc = xinyong.load_scenario("r1", adults=1000, days=30)  # 1000 adults: a partial last chunk
    in_memory = xinyong.run(sc)
    monkeypatch.setattr(recorder, "ROWS_PER_CHUNK", chunk)
    monkeypatch.setattr(recorder, "MIN_SPLIT", 300)  # so 1000 adults make up to 3 parts
    monkeypatch.setattr(recorder, "usable_cores", lambda: cores)
    on_disk = xinyong.run(sc, tmp_path / "run")
    for name in ("persons", "edges", "records", "spells", "children", "appeals", "daily"):
        assert plain(on_disk.table(name)).equals(plain(in_memory.table(name))), name
    parts = sorted((tmp_path / "run" / "persons").glob("*.parquet"))
    rows = [pq.ParquetFile(p).metadata.num_rows for p in parts]
    assert rows == ([333, 333, 334] if cores == 3 else [1000])
    assert pq.ParquetFile(parts[0]).metadata.num_row_groups > 1
    degrees = in_memory.table("persons").column("degree").to_numpy()
    assert on_disk.table("edges").num_rows == degrees.sum() // 2 > 0


def test_a_run_without_children_still_has_their_table_and_its_columns(tmp_path: Path) -> None:
    sc = xinyong.load_scenario("r1", adults=500, days=3, overrides={"population.child_ratio": 0})
    for run in (xinyong.run(sc), xinyong.run(sc, tmp_path / "run")):
        children = run.table("children")
        assert children.num_rows == 0
        assert children.column_names == [
            "child",
            "city",
            "group",
            "parent1",
            "parent2",
            "restricted",
            "privileged",
        ]


def plain(table: pa.Table) -> pa.Table:
    """Dictionary columns decoded (DuckDB reads them back as strings)."""
    return pa.table(
        {
            name: col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col
            for name, col in zip(table.column_names, table.columns, strict=True)
        }
    )


def test_only_the_layouts_nullable_columns_are_written_as_optional(tmp_path: Path) -> None:
    xinyong.run(xinyong.load_scenario("r1", adults=1000, days=5), tmp_path / "run")
    for name, layout in store.LAYOUTS.items():
        folder = tmp_path / "run" / name
        path = next(folder.glob("*.parquet")) if folder.is_dir() else folder.with_suffix(".parquet")
        schema = pq.read_schema(path)
        assert {f.name for f in schema if f.nullable} == set(layout.nullable), name


def test_a_required_column_with_nulls_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    batch = pa.record_batch({"a": pa.array([1, None, 3]), "b": pa.array([1, 2, 3])})
    with pytest.raises(ValueError, match="column 'a' has nulls but is required"):
        store.write_batches(tmp_path / "t.parquet", [batch], store.Layout(nullable=("b",)))
    assert list(tmp_path.iterdir()) == []


def test_records_store_the_actor_of_misattributed_records_only(tmp_path: Path) -> None:
    run = xinyong.run(xinyong.load_scenario("r1", adults=2000, days=30), tmp_path / "run")
    raw = plain(pq.read_table(tmp_path / "run" / "records"))
    view = run.table("records")
    assert raw.column("record_id").equals(view.column("record_id"))
    truth = raw.column("truth").to_numpy(zero_copy_only=False)
    stored = raw.column("actor").to_numpy()
    misattributed = truth == "misattributed"
    assert misattributed.sum() > 0
    assert (stored[~misattributed] == -1).all() and (stored[misattributed] >= 0).all()
    # The run's view fills the column back in: a correct record's actor is its person.
    actor = view.column("actor").to_numpy(zero_copy_only=False)
    person = view.column("person").to_numpy()
    correct = truth == "correct"
    assert (actor[correct] == person[correct]).all()
    assert np.isnan(actor[truth == "false_report"].astype(float)).all()
    assert (actor[misattributed] == stored[misattributed]).all()


def test_booleans_and_coded_nulls_are_stored_short_and_read_back_as_written(
    tmp_path: Path,
) -> None:
    table = pa.table(
        {
            "id": pa.array([0, 1, 2], pa.int32()),
            "flag": pa.array([True, False, True]),
            "maybe": pa.array([None, True, False]),
            "expiry": pa.array([7, None, 9], pa.int32()),
        }
    )
    layout = store.Layout(nullable=("maybe",), minus_one_for_null=("expiry",))
    path = tmp_path / "t.parquet"
    store.write_batches(path, table, layout)
    raw = pq.read_table(path)
    assert raw.schema.field("flag").type == pa.uint8() and not raw.schema.field("flag").nullable
    assert raw.column("maybe").to_pylist() == [None, 1, 0]
    assert raw.column("expiry").to_pylist() == [7, -1, 9]
    assert not raw.schema.field("expiry").nullable
    select = store.view_columns("t", [path])
    back = duckdb.sql(f"SELECT {select} FROM read_parquet('{path}')").to_arrow_table()
    assert back.schema.types == table.schema.types and back.column_names == table.column_names
    assert back.to_pydict() == table.to_pydict()


def test_a_failed_chunk_write_is_raised_and_the_chunks_before_it_stay_whole(
    tmp_path: Path,
) -> None:
    good = pa.record_batch({"person": pa.array([1, 2], pa.int32())})
    bad = pa.record_batch({"person": pa.array([3, None], pa.int32())})  # required column
    writer = store.ChunkWriter(tmp_path / "spells", rows_per_part=2)
    writer.add(good)
    writer.add(bad)
    with pytest.raises(ValueError, match="column 'person' has nulls but is required"):
        writer.add(good)
        writer.close(good.schema)
    assert pq.read_table(tmp_path / "spells" / "part-00000.parquet").num_rows == 2
    assert not (tmp_path / "spells" / "part-00001.parquet").exists()


def test_nothing_to_write_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nothing to write"):
        store.write_batches(tmp_path / "t.parquet", [])
    assert list(tmp_path.iterdir()) == []


def resident_pages(path: Path) -> int:
    """How many of the file's pages the page cache holds (Linux's mincore)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    size = path.stat().st_size
    pages = (ctypes.c_ubyte * -(-size // mmap.PAGESIZE))()
    with path.open("rb") as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY) as mm:
        start = ctypes.c_char.from_buffer(mm)  # maps the file, reads none of it
        ok = libc.mincore(ctypes.addressof(start), size, pages)
        del start  # the mapping can close only once nothing points into it
    assert ok == 0, os.strerror(ctypes.get_errno())
    return sum(p & 1 for p in pages)


def file_system_of(path: Path) -> str:
    mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    inside = [(m, fs) for m, fs in mounts if path.resolve().is_relative_to(m)]
    return max(inside, key=lambda mount: len(mount[0]))[1]


@pytest.mark.skipif(not Path("/proc/mounts").exists(), reason="Linux's page cache")
def test_a_written_file_is_on_disk_and_no_longer_in_the_page_cache(tmp_path: Path) -> None:
    if file_system_of(tmp_path) == "tmpfs":
        pytest.skip("tmpfs keeps its files in the page cache")
    table = pa.table({"person": np.arange(1_000_000, dtype=np.int32)})
    pq.write_table(table, tmp_path / "plain.parquet", compression="none")
    store.write_batches(tmp_path / "t.parquet", table)
    assert resident_pages(tmp_path / "plain.parquet") > 0  # what a write leaves, unless let go
    assert resident_pages(tmp_path / "t.parquet") == 0
    assert np.array_equal(pq.read_table(tmp_path / "t.parquet")["person"], table["person"])


@pytest.mark.parametrize(("error", "kept"), [(errno.EINVAL, True), (errno.EIO, False)])
def test_a_file_system_that_cannot_sync_keeps_the_file_one_that_fails_loses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int, kept: bool
) -> None:
    def refuse(fd: int) -> None:
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(os, "fdatasync", refuse, raising=False)
    monkeypatch.setattr(os, "fsync", refuse)
    path, table = tmp_path / "t.parquet", pa.table({"a": [1, 2, 3]})
    if kept:
        store.write_batches(path, table)
        assert pq.read_table(path)["a"].to_pylist() == [1, 2, 3]
    else:
        with pytest.raises(OSError, match=os.strerror(errno.EIO)):
            store.write_batches(path, table)
        assert list(tmp_path.iterdir()) == []
