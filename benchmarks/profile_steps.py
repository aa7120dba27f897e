"""Where a simulated day's time goes: each step of the day loop and its main kernels, timed.

    python benchmarks/profile_steps.py                      # R1, 10M adults, days 5..60
    python benchmarks/profile_steps.py --adults 1000000 --days 365
    python benchmarks/profile_steps.py --scenario three-cities --adults 1000000

A scenario of several cities runs as in a run in process: one engine per city, one shard.

Records are written to a temporary run directory, as in a real run. Times are wall time on
the main thread, per simulated day, over the days after `--warm-up` (day 0 evaluates every
adult), and CPU time of the thread that ran them; a kernel split over two threads counts
both halves. Work on the other threads (records batches, Parquet encoding, positive behaviour
drawn ahead) is timed on its own thread.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import xinyong
from xinyong import recorder, store
from xinyong.consequences import Consequences
from xinyong.engine import Simulation
from xinyong.observe import Observation
from xinyong.scheme import lists, scoring
from xinyong.scheme.layer import Scheme
from xinyong.shard import Shard, exchange
from xinyong.world import World

STEPS = [
    (Consequences, "start_of_day", "start-of-day lists"),
    (Scheme, "expire", "1 expiry"),
    (Consequences, "decide_appeals", "2 appeals decided"),
    (Consequences, "settle", "3 settlement"),
    (Simulation, "positive_behaviour", "4 positive behaviour (wait)"),
    (Simulation, "behaviour", "4 negative behaviour"),
    (World, "association", "5 association"),
    (Observation, "day", "6 observation"),
    (Scheme, "score", "7 scoring"),
    (scoring, "person_order", "  order of scoring"),
    (scoring, "score_records", "  scoring kernel"),
    (Consequences, "keep_effects", "7 records' effects kept"),
    (Scheme, "tiers_and_lists", "8-9 tiers and lists"),
    (lists, "sorted_unique", "  persons to re-evaluate"),
    (lists, "evaluate", "  rules kernel"),
    (Consequences, "file_appeals", "11 appeals filed"),
    (recorder.Recorder, "wait_day", "recorder (wait)"),
]
# Work done on the other threads, timed on their thread (wall time: it includes waiting for a
# core while the main thread holds it).
BACKGROUND = [
    (Simulation, "draw_positive", "positive behaviour drawn ahead"),
    (recorder.Recorder, "_book", "records batch"),
    (store.ChunkWriter, "wait", "  waiting for the Parquet writer"),
    (store, "write_batches", "Parquet encoding, file to disk"),
]


def timed(owner: type | ModuleType, name: str, label: str, totals: Counter) -> None:
    """Wall time into totals[label], the calling thread's CPU time into totals[label, "cpu"]."""
    inner: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - start
            totals[label, "cpu"] += time.thread_time() - cpu

    setattr(owner, name, wrapper)  # the engine looks kernels up on their module at each call


def timed_modules(sim: Simulation, totals: Counter) -> list[str]:
    """Time each module step the engine calls (bound when the engine was built) like the
    day's own steps; their labels."""
    labels = []
    for place, steps in sim.module_steps.items():
        wrapped = []
        for step, method in steps:
            label = f"{type(method.__self__).__name__}.{step.method} (after {place})"
            holder = type("Step", (), {"call": staticmethod(method)})
            timed(holder, "call", label, totals)
            wrapped.append((step, holder.call))
            labels.append(label)
        sim.module_steps[place] = wrapped
    return labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="r1")
    ap.add_argument("--adults", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--warm-up", type=int, default=5)
    args = ap.parse_args()
    if args.days <= args.warm_up:
        ap.error("--days must exceed --warm-up")
    totals: Counter = Counter()
    for owner, name, label in STEPS + BACKGROUND:
        timed(owner, name, label, totals)
    out = Path(tempfile.mkdtemp(prefix="xinyong-profile-")) / "run"
    try:
        sc = xinyong.load_scenario(args.scenario, adults=args.adults, days=args.days)
        start = time.perf_counter()
        # Several cities: one engine per city in one shard, as a run in process steps them.
        shard = Shard(sc, list(range(len(sc.cities))), out) if len(sc.cities) > 1 else None
        engines = [Simulation(sc, out)] if shard is None else shard.engines
        start_of_day = None if shard is None else shard.boundary(0)
        setup = time.perf_counter() - start
        # Each engine's module steps, under one label per step (the cities' times summed).
        module_labels = list(dict.fromkeys(x for e in engines for x in timed_modules(e, totals)))
        for t in range(args.days):
            if t == args.warm_up:
                totals.clear()
                loop_start = time.perf_counter()
                cpu_start = time.process_time()
            if shard is None:
                engines[0].step(t)
            else:
                start_of_day = exchange([shard.step(t, start_of_day)])
        loop = time.perf_counter() - loop_start
        cores = (time.process_time() - cpu_start) / loop
        in_loop = Counter(totals)  # the end-of-run tables are not a day's work
        per_day = loop / (args.days - args.warm_up)
        start = time.perf_counter()
        if shard is None:
            engines[0].finish()
        else:
            shard.finish()
        finish = time.perf_counter() - start
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
    n = args.days - args.warm_up
    print(f"{sc.name}, {args.adults:,} adults: set-up {setup:.1f} s, end of run {finish:.1f} s")
    print(
        f"days {args.warm_up}..{args.days - 1}: {1e3 * per_day:.1f} ms a day, "
        f"{cores:.2f} cores busy on average (all threads)"
    )
    print(f"  {'':32s} {'wall':>7s}    {'CPU':>7s}")
    for _, _, label in STEPS:
        wall, cpu = (1e3 * in_loop[key] / n for key in (label, (label, "cpu")))
        print(f"  {label:32s} {wall:7.1f} ms {cpu:7.1f} ms")
    if module_labels:
        print("modules' steps:")
    for label in module_labels:
        wall, cpu = (1e3 * in_loop[key] / n for key in (label, (label, "cpu")))
        print(f"  {label:32s} {wall:7.1f} ms {cpu:7.1f} ms")
    print("other threads:")
    for _, _, label in BACKGROUND:
        wall, cpu = (1e3 * in_loop[key] / n for key in (label, (label, "cpu")))
        print(f"  {label:32s} {wall:7.1f} ms {cpu:7.1f} ms")
    adults = sum(e.pop.adults for e in engines)
    state = sum(sum(e.state_nbytes().values()) for e in engines) / adults
    print(f"simulation state: {state:.1f} bytes per adult")


if __name__ == "__main__":
    main()
