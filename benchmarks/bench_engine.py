"""Engine benchmark: R1 at several population sizes, records written to disk.

    python benchmarks/bench_engine.py                 # 100k, 1M and 10M adults, 365 days
    python benchmarks/bench_engine.py --sizes 1000000
    python benchmarks/bench_engine.py --huge          # adds 100M adults x 30 days

Each size runs in its own process (so peak memory is that run's), after a warm-up that fills
numba's compile cache. Prints wall seconds, adult-days and records per second, and peak
resident memory; appends the figures with the machine's description to results/.
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
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def one(adults: int, days: int, scenario: str, keep: Path | None) -> dict:
    """Runs in the child process: one simulation, its timings and peak memory."""
    import xinyong

    out = keep or Path(tempfile.mkdtemp(prefix="xinyong-bench-"))
    try:
        sc = xinyong.load_scenario(scenario, adults=adults, days=days)
        t0 = time.perf_counter()
        run = xinyong.run(sc, out, overwrite=True)
        total = time.perf_counter() - t0
        sim_wall = run.summary["wall_seconds"]
        return {
            "scenario": scenario,
            "adults": adults,
            "days": days,
            "wall_seconds": round(sim_wall, 2),
            "wall_seconds_with_summary": round(total, 2),
            "adult_days_per_second": round(adults * days / sim_wall),
            "records": run.summary["records"],
            "records_per_second": round(run.summary["records"] / sim_wall),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
    finally:
        if keep is None:
            shutil.rmtree(out, ignore_errors=True)


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
    subprocess.run(
        [sys.executable, __file__, "--child", "2000", "10", args.scenario],
        check=True,
        capture_output=True,
    )  # warm-up: compile cache
    jobs = [(n, args.days) for n in args.sizes] + ([(100_000_000, 30)] if args.huge else [])
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
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"engine-{stamp}.json"
    path.write_text(json.dumps({"machine": machine(), "results": rows}, indent=2) + "\n")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
