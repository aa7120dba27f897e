"""Every built-in scenario against R1, per adult-day, in the same minutes.

    python benchmarks/bench_scenarios.py                          # 1 M adults x 365 days
    python benchmarks/bench_scenarios.py --adults 200000 --rounds 3 --scenarios s1 c1
    python benchmarks/bench_scenarios.py --profile                # and profile_steps of each

Each scenario runs right after an R1 run of the same size, each in its own process
(bench_engine.py's child, after `python -m xinyong.kernels` fills numba's compile cache with
every kernel a built-in scenario calls), `--rounds` times. A scenario's ratio is its wall
seconds per adult-day over those of the R1 run just before it, so both saw the machine of the
same minute; CPU seconds (all threads, summary queries included) give a second ratio that
other programs taking the cores move less.
Prints the pairs and each scenario's ratios, and writes them with the machine's speed before
and after (bench_engine.calibration) to results/scenarios-*.json; with `--profile`, the output
of profile_steps.py for each scenario to results/profile-*.txt.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench_engine import RESULTS, calibration, machine, show

HERE = Path(__file__).resolve().parent
BASELINE = "r1"


def child(scenario: str, adults: int, days: int) -> dict:
    """One run in its own process (bench_engine.one): wall and CPU seconds, records."""
    cmd = [sys.executable, str(HERE / "bench_engine.py"), "--child", str(adults), str(days)]
    res = subprocess.run([*cmd, scenario], capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{scenario}, {adults:,} adults x {days} days failed\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def per_adult_day(row: dict, key: str) -> float:
    return row[key] / (row["adults"] * row["days"])


def profile(scenario: str, adults: int, days: int, stamp: str) -> Path:
    """profile_steps.py's output for the scenario, kept in results/."""
    cmd = [sys.executable, str(HERE / "profile_steps.py"), "--scenario", scenario]
    cmd += ["--adults", str(adults), "--days", str(days)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"profile of {scenario} failed\n{res.stderr[-2000:]}")
    path = RESULTS / f"profile-{scenario}-{stamp}.txt"
    path.write_text(res.stdout)
    return path


def main() -> None:
    import xinyong.scenario

    builtin = xinyong.scenario.builtin_scenarios()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adults", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--scenarios", nargs="+", choices=builtin, default=builtin)
    ap.add_argument("--profile", action="store_true", help="also profile_steps per scenario")
    ap.add_argument("--profile-days", type=int, default=60)
    args = ap.parse_args()
    if args.adults < 1000 or args.days < 1 or args.rounds < 1:
        ap.error("--adults must be at least 1000, --days and --rounds at least 1")
    others = [s for s in args.scenarios if s != BASELINE]
    # Warm-up: every kernel the scenarios call into numba's cache (a 10-day run of S1 never
    # drew meetings, so its 1 M-adult run compiled them: a second of its measured time).
    subprocess.run([sys.executable, "-m", "xinyong.kernels"], check=True, capture_output=True)
    speed = {"before": calibration()}
    show("before", speed["before"])
    pairs = []
    for r in range(args.rounds):
        for scenario in others:
            base, row = (child(s, args.adults, args.days) for s in (BASELINE, scenario))
            ratio = {
                key: round(per_adult_day(row, key) / per_adult_day(base, key), 3)
                for key in ("wall_seconds", "cpu_seconds_with_summary")
            }
            pairs.append({"round": r, "scenario": scenario, "r1": base, "run": row, **ratio})
            print(
                f"round {r}  {scenario:20s} {row['wall_seconds']:7.2f} s "
                f"(R1 just before: {base['wall_seconds']:6.2f} s)  per adult-day: "
                f"{ratio['wall_seconds']:.2f} x R1 wall, "
                f"{ratio['cpu_seconds_with_summary']:.2f} x R1 CPU",
                flush=True,
            )
    speed["after"] = calibration()
    show("after", speed["after"])
    print(f"\n{'scenario':20s} {'wall / R1':>16s} {'CPU / R1':>16s}   per adult-day")
    summary = {}
    for scenario in others:
        mine = [p for p in pairs if p["scenario"] == scenario]
        cols = {}
        for key in ("wall_seconds", "cpu_seconds_with_summary"):
            xs = [p[key] for p in mine]
            cols[key] = {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}
        summary[scenario] = cols
        text = [f"{c['median']:.2f} ({c['min']:.2f}-{c['max']:.2f})" for c in cols.values()]
        print(f"{scenario:20s} {text[0]:>16s} {text[1]:>16s}")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"scenarios-{stamp}.json"
    record = {
        "machine": machine(),
        "calibration": speed,
        "adults": args.adults,
        "days": args.days,
        "pairs": pairs,
        "ratios": summary,
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written: {path}")
    if args.profile:
        for scenario in [BASELINE, *others]:
            print(f"profile written: {profile(scenario, args.adults, args.profile_days, stamp)}")


if __name__ == "__main__":
    main()
