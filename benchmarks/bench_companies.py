"""C1 (R1 plus companies) against R1 in alternating runs, each in its own process.

    python benchmarks/bench_companies.py --sizes 1000000 10000000 --rounds 3
    python benchmarks/bench_companies.py --scenario p1   # R1 plus credit, the same way

Prints each run's wall and CPU seconds (records written to disk, summary included) and the
median ratio C1 / R1 of each, per size: on a shared machine, alternating pairs and CPU time
are what compare (docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(scenario: str, adults: int, days: int) -> dict:
    code = (
        f"import sys, json; sys.path.insert(0, {str(HERE)!r}); from bench_engine import one; "
        f"print(json.dumps(one({adults}, {days}, {scenario!r}, None)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scenario", default="c1", help="the scenario set against R1")
    args = ap.parse_args()
    other = args.scenario
    child(other, 20_000, 30)  # warm-up: numba's compile cache
    for adults in args.sizes:
        wall: list[float] = []
        cpu: list[float] = []
        for r in range(args.rounds):
            pair = {s: child(s, adults, args.days) for s in ("r1", other)}
            for s, res in pair.items():
                wall_s, cpu_s = res["wall_seconds_with_summary"], res["cpu_seconds_with_summary"]
                print(
                    f"{adults:>11,} {s}  round {r}: wall {wall_s:7.2f} s, cpu {cpu_s:7.2f} s, "
                    f"peak {res['peak_rss_mib']} MiB"
                )
            wall.append(
                pair[other]["wall_seconds_with_summary"] / pair["r1"]["wall_seconds_with_summary"]
            )
            cpu.append(
                pair[other]["cpu_seconds_with_summary"] / pair["r1"]["cpu_seconds_with_summary"]
            )
        print(f"{adults:>11,} {other} / r1: wall median {statistics.median(wall):.3f} "
              f"(range {min(wall):.3f}-{max(wall):.3f}), cpu median {statistics.median(cpu):.3f} "
              f"(range {min(cpu):.3f}-{max(cpu):.3f}) over {args.rounds} pairs")  # fmt: skip


if __name__ == "__main__":
    main()
