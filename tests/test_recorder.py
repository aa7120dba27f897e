"""The recorder's held rows: a small city's days gathered into batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import xinyong
from tests.test_golden import digest
from xinyong import recorder
from xinyong.recorder import Held


def test_held_rows_come_back_in_order_in_the_buffers_or_as_a_copy() -> None:
    held = Held({"day": np.int32}, 10)
    for day in range(3):
        held.room(4)["day"][:] = day
    assert held.size == 14  # a batch's 10 rows, and room for one more day of 4
    buffer = held.buffers["day"]
    rows = held.take()["day"]
    assert rows.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert np.shares_memory(rows, buffer)  # 2 rows to spare of 14: handed over
    assert (held.rows, held.size, held.buffers) == (0, 0, {})

    held.room(3)["day"][:] = 7
    held.room(20)["day"][:] = 8  # larger than any day before: the buffers grow
    assert held.size == 23 + 20
    rows = held.take()["day"]
    assert rows.tolist() == [7] * 3 + [8] * 20
    assert not np.shares_memory(rows, held.buffers["day"])  # 20 of 43 to spare: a copy
    assert (held.rows, held.size) == (0, 43)  # and the buffers kept for the next rows


def test_empty_day_held() -> None:
    held = Held({"day": np.int32, "person": np.int32}, 10)
    assert {k: len(v) for k, v in held.room(0).items()} == {"day": 0, "person": 0}
    assert held.rows == 0


@pytest.mark.parametrize("on_disk", [False, True])
def test_records_the_same_whatever_rows_are_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_disk: bool
) -> None:
    """Batches of 97 rows (buffers grown, handed over and copied) against the default."""
    sc = xinyong.load_scenario("national", adults=3000, days=40, seed=3)
    expected = xinyong.run(sc, out=tmp_path / "default" if on_disk else None)
    monkeypatch.setattr(recorder, "HOLD_ROWS", 97)
    run = xinyong.run(sc, out=tmp_path / "run" if on_disk else None)
    for name in ("records", "spells"):
        assert run.table(name).num_rows > 97
        assert digest(run.table(name)) == digest(expected.table(name))
