"""The run's threads.

`Halves`: two halves of one step's work at once, the main thread taking the first and a
helper thread the second. Only work split over disjoint persons is run this way (the
kernels release the GIL), and the halves' outputs are joined in order, so a run's results
do not depend on whether, or where, work was split. Small days are not split: a thread
hand-off costs tens of microseconds.

`background`: a worker for the pipelines a day does not wait on at once (positive behaviour
drawn ahead, records batches, Parquet encoding). On Linux its thread runs at a lower
priority, so that it takes the cores the day loop leaves idle rather than the main thread's:
2 to 3% faster at 10 M adults on two cores (both kept busier). It never changes a result:
the day loop waits for what it needs.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

MIN_SPLIT = 50_000  # items (records, persons) below which one thread does the work
# Enough for the kernel to prefer the day loop 3 to 1, not so much that other programs on
# the machine starve the pipelines (measured at 5, 10 and 19: the same within the noise).
BACKGROUND_NICENESS = 5


def usable_cores() -> int:
    """Cores this process may run on (its affinity, where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Halves:
    def __init__(self) -> None:
        self.min_split = MIN_SPLIT if usable_cores() > 1 else None
        self.pool = ThreadPoolExecutor(max_workers=1) if self.min_split is not None else None

    def split(self, items: int) -> bool:
        """Whether work over this many items is worth two threads."""
        return self.min_split is not None and items >= self.min_split

    def run(self, first: Callable[[], T], second: Callable[[], T]) -> tuple[T, T]:
        """first() on this thread while second() runs on the helper."""
        assert self.pool is not None
        other = self.pool.submit(second)
        try:
            mine = first()
        finally:
            theirs = other.result()  # waits even if first() failed: no half left running
        return mine, theirs

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def join(first: Any, second: Any) -> Any:
    """Two halves' outputs joined in order: arrays concatenated, tuples element by element."""
    if isinstance(first, tuple):
        return tuple(join(a, b) for a, b in zip(first, second, strict=True))
    return np.concatenate([first, second])


def background() -> ThreadPoolExecutor:
    """A one-thread pool whose thread gives way to the day loop."""
    return ThreadPoolExecutor(max_workers=1, initializer=_lower_priority)


def _lower_priority() -> None:
    if sys.platform.startswith("linux"):  # per-thread niceness: Linux only
        with contextlib.suppress(OSError):  # not allowed here: run as is
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)


def built_ahead(items: Iterable[T]) -> Iterator[T]:
    """The items in order, each next one built on a helper thread while the caller uses the
    one before (for chunks of a table: built by compiled loops and NumPy while the previous
    chunk is encoded; both release the interpreter)."""
    source = iter(items)
    done = object()
    with ThreadPoolExecutor(max_workers=1) as pool:  # on leaving, waits for a build begun
        pending = pool.submit(next, source, done)
        while (item := pending.result()) is not done:
            pending = pool.submit(next, source, done)
            yield item
