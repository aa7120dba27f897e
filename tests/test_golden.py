"""Every table of one small stressed run, fingerprinted: a speed-up must not change results.

If a change is meant to alter what a run draws or computes, update the digests below and say
why in the commit (and in docs/model-notes.md when the meaning changes).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pytest

import xinyong
from xinyong import threads

DIGESTS = {
    "records": "56f309f1b93edb35",
    "spells": "6cb6b45812efb089",
    "appeals": "d299a22234f4ea16",
    "daily": "33f551935175170b",
    "behaviour_daily": "5876e2183e374c02",
    "persons": "7c2a850b196ccdff",
    "children": "9ec429ac530442cc",
    "edges": "79d8dbed60605988",
}


def digest(table: pa.Table) -> str:
    """Column names, types and values in row order."""
    h = hashlib.sha256()
    for name, column in zip(table.column_names, table.columns, strict=True):
        h.update(f"{name}:{column.type}".encode())
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type):
                chunk = chunk.dictionary_decode()
            if pa.types.is_string(chunk.type):
                h.update("\0".join(str(v) for v in chunk.to_pylist()).encode())
            else:  # values with nulls as zeros (an object array's bytes would be addresses)
                zero = False if pa.types.is_boolean(chunk.type) else 0
                values = chunk.fill_null(zero).to_numpy(zero_copy_only=False)
                h.update(np.ascontiguousarray(values).tobytes())
                h.update(np.asarray(chunk.is_null()).tobytes())
    return h.hexdigest()[:16]


@pytest.fixture(scope="module", params=["one thread", "split"])
def golden_run(request: pytest.FixtureRequest) -> xinyong.Run:
    """The run as is, and with every step that can be split over two threads split."""
    with pytest.MonkeyPatch.context() as mp:
        if request.param == "split":
            mp.setattr(threads, "MIN_SPLIT", 1)
        return xinyong.run(xinyong.load_scenario("s1", adults=3000, days=200, seed=1))


@pytest.mark.parametrize("table", sorted(DIGESTS))
def test_tables_are_unchanged(golden_run: xinyong.Run, table: str) -> None:
    assert digest(golden_run.table(table)) == DIGESTS[table]
