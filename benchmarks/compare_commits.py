"""Two commits' engine benchmarks, run alternately on this machine.

    python benchmarks/compare_commits.py ba8ba33          # ba8ba33 against the working tree
    python benchmarks/compare_commits.py ba8ba33 HEAD --sizes 1000000 10000000 --rounds 3

Whole runs on a shared machine drift by 10 to 30% within an hour, so a time is compared only
with one taken beside it: each round runs every size for A, then for B. A commit is checked
out into a temporary git worktree; `.` is the working tree as it is. Both sides run through
this checkout's bench_engine.py with the commit's src/ first on the path, so only the engine
differs. Prints each run, then per size the median of each side and their ratio, in wall time
and in CPU time (all threads, summary queries included), which other programs taking the
cores move less.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_engine.py"


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """The src/ folder of `rev`, in a temporary worktree removed afterwards."""
    if rev == ".":
        yield ROOT / "src"
        return
    folder = Path(tempfile.mkdtemp(prefix="xinyong-compare-"))
    git = ["git", "-C", str(ROOT)]
    subprocess.run([*git, "worktree", "add", "--detach", str(folder), rev], check=True)
    try:
        yield folder / "src"
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(folder)], check=False)


def child(src: Path, adults: int, days: int, scenario: str) -> dict:
    """One benchmark run of the engine in `src`, in its own process."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, str(BENCH), "--child", str(adults), str(days), scenario]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{src}: {adults:,} adults failed\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def warm_up(src: Path, scenario: str) -> None:
    """That checkout's kernels compiled (its stale caches dropped first: xinyong.kernels;
    a small run where a commit has no such module)."""
    if not (src / "xinyong" / "kernels.py").exists():
        child(src, 2000, 10, scenario)
        return
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-m", "xinyong.kernels"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{src}: the warm-up failed\n{res.stderr[-2000:]}")


def engine_of(src: Path) -> Path:
    """Where the engine run with `src` first on the path is imported from."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    code = "import xinyong; print(xinyong.__file__)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return Path(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="commit A (the baseline)")
    ap.add_argument("b", nargs="?", default=".", help="commit B (default: the working tree)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000_000])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--scenario", default="r1")
    args = ap.parse_args()
    with checkout(args.a) as src_a, checkout(args.b) as src_b:
        sides = {"A": src_a, "B": src_b}
        for name, src in sides.items():
            if not engine_of(src).is_relative_to(src):
                sys.exit(f"{name}: xinyong is not imported from {src}")
            warm_up(src, args.scenario)
        walls: dict[tuple[str, int], list[float]] = {}
        cpus: dict[tuple[str, int], list[float]] = {}
        for r in range(args.rounds):
            for adults in args.sizes:
                for name, src in sides.items():
                    res = child(src, adults, args.days, args.scenario)
                    wall, total = res["wall_seconds"], res["wall_seconds_with_summary"]
                    walls.setdefault((name, adults), []).append(wall)
                    cpus.setdefault((name, adults), []).append(res["cpu_seconds_with_summary"])
                    print(
                        f"round {r + 1}  {name}  {adults:>12,} x {args.days}: {wall:8.2f} s"
                        f"  ({total:.2f} s with the summary queries,"
                        f" {res['cpu_seconds_with_summary']:.2f} s of CPU)"
                    )
    print(f"A = {args.a}, B = {args.b}; medians:")
    for adults in args.sizes:
        for what, times in (("wall", walls), ("CPU ", cpus)):
            a = statistics.median(times["A", adults])
            b = statistics.median(times["B", adults])
            print(
                f"  {adults:>12,} x {args.days} {what}: A {a:8.2f} s  B {b:8.2f} s  B/A {b / a:.3f}"
            )


if __name__ == "__main__":
    main()
