"""The cost of one checkpoint (checkpoint.py) against the days between two (docs/performance.md).

    .venv/bin/python benchmarks/bench_checkpoint.py --adults 1000000 --days 30 --rounds 3

Steps a run directory's engine `--days` days, then takes a checkpoint: the time to wait for
the helper threads and flush the record and spell parts (`settle`), the time the day loop
waited in all (settle and the copy of the state), the time the checkpoint's thread took to
write the file, and its size; then the next `--days` days, and so on for `--rounds`
checkpoints. Prints one JSON line per checkpoint.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from xinyong import checkpoint
from xinyong.checkpoint import CHECKPOINT, Checkpoints
from xinyong.engine import Simulation
from xinyong.scenario import load_scenario


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="r1")
    ap.add_argument("--adults", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=30, help="days between checkpoints")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    total = args.days * (args.rounds + 1) + 1
    sc = load_scenario(args.scenario, adults=args.adults, days=total)
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        out = Path(tmp)
        (out / "scenario.yaml").write_text(sc.to_yaml())
        sim = Simulation(sc, out)
        cks = Checkpoints(out, args.days, sc.days, {"scenario": "", "every": args.days})
        t = 0
        for _ in range(args.rounds):
            began = time.perf_counter()
            for _ in range(args.days):
                sim.step(t)
                t += 1
            days = time.perf_counter() - began
            began = time.perf_counter()
            checkpoint.settle(sim)
            settled = time.perf_counter()
            cks.after_day(t - 1, [sim])
            waited = time.perf_counter() - began
            cks.wait()
            line = {
                "scenario": sc.name,
                "adults": sc.adults,
                "day": t,
                "days_s": round(days, 3),
                "settle_s": round(settled - began, 3),
                "loop_waited_s": round(waited, 3),
                "file_written_s": round(cks.write_cost, 3),
                "share_of_the_days": round(waited / days, 4),
                "bytes": (out / CHECKPOINT).stat().st_size,
            }
            print(json.dumps(line), flush=True)
        sim.finish()
        cks.close()


if __name__ == "__main__":
    main()
