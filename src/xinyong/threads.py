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
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

MIN_SPLIT = 50_000  # items (records, persons) below which one thread does the work
# Enough for the kernel to prefer the day loop 3 to 1, not so much that other programs on
# the machine starve the pipelines (measured at 5, 10 and 19: the same within the noise).
BACKGROUND_NICENESS = 5


_budget: int | None = None  # cores granted to this process (a Ray worker), if any


def usable_cores() -> int:
    """Cores this process may run on (its affinity, where the system tells it), at most the
    budget set_core_budget gave it."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    return cores if _budget is None else max(1, min(cores, _budget))


def set_core_budget(cores: int | None) -> None:
    """Use at most `cores` cores from now on (None: all): numba's threads, the two-thread
    Halves, and with one core no helper threads at all. A Ray worker is given cores by
    reservation, not by affinity, so the engine must be told (cluster.py)."""
    global _budget
    _budget = cores
    from numba import config, set_num_threads

    set_num_threads(max(1, min(usable_cores(), config.NUMBA_NUM_THREADS)))


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


class Inline(Executor):
    """An executor that runs each task at once on the caller's thread: the helper threads of
    a process given one core (set_core_budget). Results are the same, only later."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        done: Future[T] = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            done.set_exception(exc)
        return done


def background() -> Executor:
    """A one-thread pool whose thread gives way to the day loop (run inline when the process
    was given a budget of one core)."""
    if _budget is not None and usable_cores() == 1:
        return Inline()
    return ThreadPoolExecutor(max_workers=1, initializer=_lower_priority)


# Adults from which a city engine of a shard hands its positive behaviour and its records
# batches to the shard's helper threads. A smaller city's day is too little work for the
# hand-off and the interpreter lock the two threads then share: national at 1 M adults (31
# cities, 32 k adults on average) ran 55 to 57 ms a day with that work inline against 79 to
# 81 with threads, three-cities (333 k on average) 24 to 26 with threads against 30 inline,
# cities (125 k) about the same either way (profile_steps, 60 days, two runs each).
THREADED_FROM = 150_000


@dataclass
class Pools:
    """The helper threads of the city engines of one process (shard.py), shared so that a
    process holding hundreds of cities still runs a handful of threads."""

    halves: Halves
    ahead: Executor  # positive behaviour drawn ahead
    pipeline: Executor  # the recorders' batches
    writer: Executor  # Parquet files written while the run goes on

    @classmethod
    def new(cls) -> Pools:
        return cls(Halves(), background(), background(), background())

    def for_city(self, adults: int) -> Pools:
        """The pools a city engine of this many adults uses: below THREADED_FROM, its
        positive behaviour and records batches run inline (the Parquet writer and the
        halves stay shared)."""
        if adults >= THREADED_FROM:
            return self
        inline = Inline()
        return Pools(self.halves, inline, inline, self.writer)

    def shutdown(self) -> None:
        self.halves.shutdown()
        for pool in (self.ahead, self.pipeline, self.writer):
            pool.shutdown()


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


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[Callable[[], None]]:
    """Ctrl-C (SIGINT) while this is held takes effect when the function it yields is
    called (at the end of a day): raised inside a compiled kernel, KeyboardInterrupt would
    come out as a SystemError. A second Ctrl-C is raised at once. Only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    hit: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if hit:
            raise KeyboardInterrupt
        hit.append(signum)

    def check() -> None:
        if hit:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield check
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
