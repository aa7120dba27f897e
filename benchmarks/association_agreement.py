"""S1's summary metrics with step 5 drawn from the listed persons' neighbours only against the
per-day choice of sampler (world.World.association), over several seeds each.

    python benchmarks/association_agreement.py --adults 20000 --days 365 --seeds 8

Both samplers give every adult the model's probability of meeting a listed neighbour, so the
metrics must agree within their variation across seeds. Printed per metric: each sampler's
mean and 95% interval of the mean across seeds (t quantile), and the difference in standard
errors of the difference.
"""

from __future__ import annotations

import argparse
import math
import statistics

import xinyong
from xinyong import world

METRICS = [
    "association_records_per_adult_year",
    "neg_records_per_adult_year",
    "list_share.blacklist",
    "ever_listed_share.blacklist",
    "mean_score",
]
T975 = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57, 7: 2.45, 8: 2.36, 9: 2.31, 10: 2.26}


def summaries(adults: int, days: int, seeds: list[int], cost: float) -> list[dict]:
    saved = world.MEETING_COST
    world.MEETING_COST = cost
    try:
        return [
            xinyong.run(xinyong.load_scenario("s1", adults=adults, days=days, seed=s)).summary
            for s in seeds
        ]
    finally:
        world.MEETING_COST = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adults", type=int, default=20000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seeds", type=int, default=8)
    a = ap.parse_args()
    seeds = list(range(1, a.seeds + 1))
    before = summaries(a.adults, a.days, seeds, math.inf)  # listed neighbours every day
    after = summaries(a.adults, a.days, seeds, world.MEETING_COST)
    t = T975.get(len(seeds), 1.96)
    print(f"S1, {a.adults} adults x {a.days} days, seeds {seeds[0]}..{seeds[-1]}")
    print(f"{'metric':40} {'listed neighbours':>26} {'per-day choice':>26} {'z':>6}")
    for key in METRICS:
        cols = []
        for runs in (before, after):
            xs = [r[key] for r in runs]
            m, se = statistics.mean(xs), statistics.stdev(xs) / math.sqrt(len(xs))
            cols.append((m, se))
            print_col = f"{m:.5f} ± {t * se:.5f}"
            cols[-1] = (m, se, print_col)
        z = (cols[1][0] - cols[0][0]) / math.hypot(cols[0][1], cols[1][1])
        print(f"{key:40} {cols[0][2]:>26} {cols[1][2]:>26} {z:6.2f}")


if __name__ == "__main__":
    main()
