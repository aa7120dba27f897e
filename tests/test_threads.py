"""The run's threads: halves joined in order, errors not lost, background at a lower priority."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

from xinyong import threads


def test_halves_run_the_second_half_elsewhere_and_join_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(threads, "MIN_SPLIT", 10)
    halves = threads.Halves()
    try:
        assert halves.split(10) and not halves.split(9)
        ids = halves.run(threading.get_ident, threading.get_ident)
        assert ids[0] == threading.get_ident() != ids[1]
        first = (np.array([1, 2]), (np.array([5]), np.array([], dtype=np.int64)))
        second = (np.array([3]), (np.array([6, 7]), np.array([8])))
        joined = threads.join(first, second)
        assert joined[0].tolist() == [1, 2, 3]
        assert [a.tolist() for a in joined[1]] == [[5, 6, 7], [8]]
    finally:
        halves.shutdown()


def test_a_failing_half_fails_the_step_after_the_other_half_is_done() -> None:
    halves = threads.Halves()
    done = []

    def slow() -> None:
        threading.Event().wait(0.05)
        done.append(True)

    def fail() -> None:
        raise ValueError("half failed")

    try:
        with pytest.raises(ValueError, match="half failed"):
            halves.run(fail, slow)
        assert done == [True]
    finally:
        halves.shutdown()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness: Linux")
def test_background_threads_run_at_a_lower_priority() -> None:
    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    mine = niceness()
    with threads.background() as pool:
        theirs = pool.submit(niceness).result()
    # Raising niceness is always allowed; lowering it (a caller already nicer) only for root.
    allowed = os.geteuid() == 0 or mine <= threads.BACKGROUND_NICENESS
    assert theirs == (threads.BACKGROUND_NICENESS if allowed else mine)
    assert niceness() == mine  # the caller's priority is untouched


def test_built_ahead_gives_every_item_in_order_and_a_failure_where_it_happened() -> None:
    built: list[int] = []

    def chunks():
        for k in range(5):
            built.append(k)
            yield k
        raise ValueError("chunk 5")

    got = []
    with pytest.raises(ValueError, match="chunk 5"):
        for item in threads.built_ahead(chunks()):
            assert built[-1] <= item + 1  # at most one item built ahead of the one in use
            got.append(item)
    assert got == [0, 1, 2, 3, 4]
