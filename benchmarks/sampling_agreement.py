"""A scenario's summary metrics drawn the direct way against the event-driven samplers, over
several seeds each.

    python benchmarks/sampling_agreement.py --scenario s1 --adults 20000 --days 365 --seeds 10

Direct: step 5 from the listed persons' neighbours every day, and one uniform per member under
a behaviour effect and behaviour it acts on. Event-driven: the samplers World picks by the
lists' sizes (World.association, World.behaviour). Both give every member the model's
probabilities, so the metrics must agree within their variation across seeds. Printed per
metric: each way's mean and 95% interval of the mean across seeds (t quantile), and the
difference in standard errors of the difference (z).
"""

from __future__ import annotations

import argparse
import math
import statistics

import xinyong
from xinyong import world

METRICS = ["association_records_per_adult_year", "neg_records_per_adult_year", "mean_score"]
# And these of every list (and the companies' lists and ratings, where there are companies).
SHARES = ("list_share.", "ever_listed_share.", "company.list_share.", "company.rating_share.")
T975 = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57, 7: 2.45, 8: 2.36, 9: 2.31, 10: 2.26}


def summaries(name: str, adults: int, days: int, seeds: list[int], direct: bool) -> list[dict]:
    saved = world.MEETING_COST, world.AFFECTED_THINNING_FROM
    if direct:
        world.MEETING_COST = world.AFFECTED_THINNING_FROM = math.inf
    try:
        return [
            xinyong.run(xinyong.load_scenario(name, adults=adults, days=days, seed=s)).summary
            for s in seeds
        ]
    finally:
        world.MEETING_COST, world.AFFECTED_THINNING_FROM = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="s1")
    ap.add_argument("--adults", type=int, default=20000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seeds", type=int, default=8)
    a = ap.parse_args()
    seeds = list(range(1, a.seeds + 1))
    before = summaries(a.scenario, a.adults, a.days, seeds, True)
    after = summaries(a.scenario, a.adults, a.days, seeds, False)
    t = T975.get(len(seeds), 1.96)
    print(f"{a.scenario}, {a.adults} adults x {a.days} days, seeds {seeds[0]}..{seeds[-1]}")
    print(f"{'metric':40} {'direct':>26} {'event-driven':>26} {'z':>6}")
    shares = [k for k in before[0] if k.startswith(SHARES) and before[0][k] is not None]
    company = [k for k in ("company.neg_records_per_company_year",) if k in before[0]]
    for key in METRICS + company + shares:
        cols = []
        for runs in (before, after):
            xs = [r[key] for r in runs]
            cols.append((statistics.mean(xs), statistics.stdev(xs) / math.sqrt(len(xs))))
        spread = math.hypot(cols[0][1], cols[1][1])
        z = (cols[1][0] - cols[0][0]) / spread if spread else 0.0
        text = [f"{m:.5f} ± {t * se:.5f}" for m, se in cols]
        print(f"{key:40} {text[0]:>26} {text[1]:>26} {z:6.2f}")


if __name__ == "__main__":
    main()
