"""National scenario in one process against a local Ray with two actors (docs/cluster.md).

    .venv/bin/python benchmarks/bench_cluster.py --adults 10000000 20000000 --days 20 --rounds 2

Runs alternate (in-process, Ray, in-process, Ray, ...) so that other programs on a shared
machine weigh on both alike. Each run is a fresh `xinyong run` process under /usr/bin/time
(peak resident memory of the driver); a Ray run's actors report their own peaks
(shards.json). Prints one JSON line per run and writes them to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
XINYONG = ROOT / ".venv" / "bin" / "xinyong"


def one(adults: int, days: int, ray: bool, out: Path) -> dict:
    cmd = [str(XINYONG), "run", "national", "--adults", str(adults), "--days", str(days)]
    cmd += ["--out", str(out), "--overwrite", "--quiet"]
    if ray:
        cmd += ["--ray", "local", "--actors", "2"]
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(done.stderr[-2000:])
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1]) * 1024
    summary = json.loads((out / "summary.json").read_text())
    marker = json.loads((out / "run.json").read_text())  # the wall time, which varies
    row = {
        "adults": adults,
        "days": days,
        "how": "ray-2-actors" if ray else "in-process",
        "process_seconds": round(wall, 1),
        "simulation_seconds": marker["wall_seconds"],
        "records": summary["records"],
        "driver_peak_bytes": peak,
    }
    shards = out / "shards.json"
    if ray and shards.exists():
        row["actor_peak_bytes"] = [s["peak_rss_bytes"] for s in json.loads(shards.read_text())]
        row["actor_adults"] = [s["adults"] for s in json.loads(shards.read_text())]
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--adults", type=int, nargs="+", default=[10_000_000, 20_000_000])
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/xinyong-bench-cluster"))
    args = parser.parse_args()
    one(20_000, 2, False, args.out)  # compiles the kernels (cached), not timed
    shutil.rmtree(args.out, ignore_errors=True)
    rows = []
    for adults in args.adults:
        for _ in range(args.rounds):
            for ray in (False, True):
                row = one(adults, args.days, ray, args.out)
                print(json.dumps(row), flush=True)
                rows.append(row)
                shutil.rmtree(args.out, ignore_errors=True)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (results / f"cluster-{stamp}.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
