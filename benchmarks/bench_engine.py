"""Engine benchmark: R1 at several population sizes, records written to disk.

    python benchmarks/bench_engine.py                 # 100k, 1M and 10M adults, 365 days
    python benchmarks/bench_engine.py --sizes 1000000
    python benchmarks/bench_engine.py --huge          # adds 100M adults x 30 days

Each size runs in its own process (so peak memory is that run's), after a warm-up that fills
numba's compile cache. Prints wall seconds, adult-days and records per second, and peak
resident memory; appends the figures with the machine's description to results/. The machine's
speed of the moment is measured before and after the runs (`calibration`): on a shared virtual
machine it changes from day to day, and figures taken on different days compare only through it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def one(adults: int, days: int, scenario: str, keep: Path | None) -> dict:
    """Runs in the child process: one simulation, its timings and peak memory."""
    import xinyong

    out = keep or Path(tempfile.mkdtemp(prefix="xinyong-bench-"))
    try:
        sc = xinyong.load_scenario(scenario, adults=adults, days=days)
        t0, cpu0 = time.perf_counter(), cpu_seconds()
        run = xinyong.run(sc, out, overwrite=True)
        total, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        sim_wall = run.summary["wall_seconds"]
        return {
            "scenario": scenario,
            "adults": adults,
            "days": days,
            "wall_seconds": round(sim_wall, 2),
            "wall_seconds_with_summary": round(total, 2),
            # All threads' CPU time, summary queries included: less moved than wall time by
            # other programs taking the cores (not by their use of caches and memory).
            "cpu_seconds_with_summary": round(cpu, 2),
            "adult_days_per_second": round(adults * days / sim_wall),
            "records": run.summary["records"],
            "records_per_second": round(run.summary["records"] / sim_wall),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
    finally:
        if keep is None:
            shutil.rmtree(out, ignore_errors=True)


def cpu_seconds() -> float:
    """User and system CPU time of this process, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine() -> dict:
    mem = None
    if Path("/proc/meminfo").exists():
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        mem = round(int(first.split()[1]) / 1024**2, 1)
    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def calibration() -> dict[str, float]:
    """The machine's speed now, best of five: NumPy's PCG64 filling doubles (the engine's
    draws), on one thread and on two at once (a run keeps both cores busy), a copy of 256 MiB
    on one thread (bytes read and written per second), and one step of a Python loop."""
    import numpy as np

    def best(f: Callable[[], object]) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            f()
            times.append(time.perf_counter() - start)
        return min(times)

    rngs = [np.random.default_rng(seed) for seed in range(2)]
    doubles = [np.empty(10_000_000) for _ in range(2)]
    pool = ThreadPoolExecutor(2)  # NumPy fills without the GIL

    def fill_on_two() -> None:
        list(pool.map(lambda k: rngs[k].random(out=doubles[k]), range(2)))

    src = np.ones(1 << 25)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # first touch of dst outside the timing

    def loop() -> None:
        x = 0
        for i in range(1_000_000):
            x += i

    speed = {
        "random_double_ns": round(best(lambda: rngs[0].random(out=doubles[0])) / 1e7 * 1e9, 2),
        "random_double_ns_two_threads": round(best(fill_on_two) / 1e7 * 1e9, 2),
        "copy_gb_per_s": round(2 * src.nbytes / best(lambda: np.copyto(dst, src)) / 1e9, 1),
        "python_loop_step_ns": round(best(loop) / 1e6 * 1e9, 1),
    }
    pool.shutdown()
    return speed


def show(when: str, speed: dict[str, float]) -> None:
    print(
        f"machine speed {when}: {speed['random_double_ns']} ns a random double "
        f"({speed['random_double_ns_two_threads']} on two threads at once), "
        f"{speed['copy_gb_per_s']} GB/s copy, {speed['python_loop_step_ns']} ns a Python loop step",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--scenario", default="r1")
    ap.add_argument("--huge", action="store_true", help="also 100M adults x 30 days")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        adults, days, scenario = int(args.child[0]), int(args.child[1]), args.child[2]
        print(json.dumps(one(adults, days, scenario, None)))
        return
    # Warm-up: stale kernel caches dropped, every kernel compiled (xinyong.kernels).
    subprocess.run([sys.executable, "-m", "xinyong.kernels"], check=True, capture_output=True)
    jobs = [(n, args.days) for n in args.sizes] + ([(100_000_000, 30)] if args.huge else [])
    speed = {"before": calibration()}
    show("before", speed["before"])
    rows = []
    for adults, days in jobs:
        res = subprocess.run(
            [sys.executable, __file__, "--child", str(adults), str(days), args.scenario],
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            print(f"{adults:>12,} adults: failed\n{res.stderr[-2000:]}", file=sys.stderr)
            continue
        row = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{adults:>12,} adults x {days} days: {row['wall_seconds']:8.2f} s  "
            f"{row['adult_days_per_second'] / 1e6:8.1f} M adult-days/s  "
            f"{row['records_per_second'] / 1e6:6.2f} M records/s  "
            f"peak {row['peak_rss_mib']:,} MiB",
            flush=True,
        )
    speed["after"] = calibration()
    show("after", speed["after"])
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"engine-{stamp}.json"
    record = {"machine": machine(), "calibration": speed, "results": rows}
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
