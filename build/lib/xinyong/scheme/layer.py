"""Layer 4 for one entity kind: records become points in two worlds (step 7), points are given
back at expiry (step 1), and tiers and lists follow (steps 8-9). The kernels are in `scoring`
and `lists`; this keeps their state and the work scheduled for later days."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from xinyong.observe import Records
from xinyong.schedule import by_day
from xinyong.scheme import lists, scoring
from xinyong.scheme.compile import SchemeTables
from xinyong.scheme.state import SchemeState
from xinyong.threads import Halves, join

YEAR = 365  # yearly caps count in windows floor(t / 365) from day 0


@dataclass
class Scored:
    """Step 7's outcome, per record of the day."""

    applied: np.ndarray  # int32 [n, 2] points added to the recorded and shadow score
    expiry_day: np.ndarray  # int32 [n] the day the points are given back, -1 never
    effect: np.ndarray  # bool [n] the record has direct effects (listings, tier caps)
    with_effect: np.ndarray  # int64 the rows of those records, ascending
    tier_may_move: np.ndarray  # members whose score left the bounds of their tier


class Scheme:
    def __init__(
        self,
        tables: SchemeTables,
        negative: np.ndarray,
        city: np.ndarray,
        group: np.ndarray,
        deterrence: tuple[float, float],
        days: int,
        halves: Halves,
        groups: int = 2,
    ) -> None:
        self.tables, self.city, self.group, self.days, self.halves = (
            tables, city, group, days, halves,
        )  # fmt: skip
        self.state = SchemeState.new(tables, city, *deterrence, groups)
        self.view = self.state.view()
        self.rules, self.list_rules = tables.rules(negative), tables.list_rules()
        st = self.state
        self.counts = lists.Counts(st.tier_count, st.list_count, st.wrong_count)
        self.min_stay_lists = int((tables.min_stay > 0).sum(axis=1).max())
        self.expiries: dict[int, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
        self.checks: dict[int, list[np.ndarray]] = defaultdict(list)  # persons to re-check
        # Zeroed, and zeroed again after each use: flags the persons to re-evaluate.
        self.touched = np.zeros(len(city), dtype=np.uint8)
        self.moved: list[np.ndarray] = []  # members whose recorded lists changed
        self.ended: list[tuple[np.ndarray, ...]] = []  # spells ended, since last taken
        # Kept for daily means. Column by column: NumPy's sum over axis 0 of an (N, 2) array
        # took ten times as long (150 ms at 10 M adults).
        self.score_sum = np.array([st.score[:, w].sum(dtype=np.int64) for w in range(2)])

    # -- step 1 and upheld appeals -------------------------------------------------------------

    def expire(self, t: int) -> list[np.ndarray]:
        """Step 1; returns the members whose score changed."""
        if t > 0 and t % YEAR == 0:
            self.state.cap_used[:] = 0  # a new yearly-cap window begins
        out = []
        for person, delta in self.expiries.pop(t, []):
            self.give_back(person, delta)
            out.append(person)
        return out

    def give_back(self, person: np.ndarray, delta: np.ndarray) -> None:
        tb = self.tables
        self.score_sum += scoring.reverse_points(
            self.state.score, person, delta, self.city, tb.city_pack, tb.score_lo, tb.score_hi
        )

    # -- step 7 ----------------------------------------------------------------------------

    def score(self, t: int, rec: Records) -> Scored:
        """Step 7 (and deterrence, step 10)."""
        tb = self.tables
        # Scored grouped by person (each person's records keep their order): the same result
        # as creation order, with memory read almost sequentially.
        order = scoring.person_order(rec.person, len(self.city))
        applied = np.empty((len(rec), 2), dtype=np.int32)

        def score_part(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            batch = scoring.Batch(order, lo, hi, rec.person, rec.behaviour, rec.truth, applied)
            return scoring.score_records(t, batch, self.city, self.rules, self.view)

        if self.halves.split(len(rec)):  # two bins of persons, each with its own state
            mid = scoring.middle_bin_start(order, rec.person)
            parts = self.halves.run(lambda: score_part(0, mid), lambda: score_part(mid, len(rec)))
            with_effect, check_day, tier_may_move = join(*parts)
        else:
            with_effect, check_day, tier_may_move = score_part(0, len(rec))
        # Points given back at expiry; expiries after the last day need no bookkeeping.
        batch = scoring.Batch(order, 0, len(rec), rec.person, rec.behaviour, rec.truth, applied)
        expiry_day, totals, due = scoring.expiries(
            t, batch, self.city, tb.city_pack, tb.expiry, self.days
        )
        self.score_sum += totals
        for day, sel in by_day(expiry_day[due], None, t + 1, self.days):
            self.expiries[day].append((rec.person[due[sel]], applied[due[sel]]))
        in_order = np.argsort(with_effect, kind="stable")  # a handful a day
        with_effect, check_day = with_effect[in_order], check_day[in_order]
        for day, sel in by_day(check_day, None, t + 1, self.days):
            self.checks[day].append(rec.person[with_effect[sel]])
        effect = np.zeros(len(rec), dtype=bool)
        effect[with_effect] = True
        return Scored(applied, expiry_day, effect, with_effect, tier_may_move)

    # -- steps 8-9 ---------------------------------------------------------------------------

    def tiers_and_lists(self, t: int, changed: list[np.ndarray], recheck: list[np.ndarray]):
        """Steps 8-9 for the members whose score changed and those to re-check (with those
        scheduled for today). Day 0: everyone."""
        recheck = recheck + self.checks.pop(t, [])
        if t == 0:  # every member rechecked: their ids in order, without sorting them
            why = np.full(len(self.city), lists.RECHECK, dtype=np.uint8)
            for persons in changed:
                why[persons] |= lists.SCORE_CHANGED
            persons = np.arange(len(self.city), dtype=np.int32)
        else:
            reasons = [np.full(len(p), lists.SCORE_CHANGED, dtype=np.uint8) for p in changed]
            reasons += [np.full(len(p), lists.RECHECK, dtype=np.uint8) for p in recheck]
            persons, why = lists.sorted_unique(
                np.concatenate(changed + recheck),
                np.concatenate(reasons),
                self.touched,
                self.halves,
            )
        self.reevaluate(t, persons, why, True)

    def reevaluate(self, t: int, persons: np.ndarray, reasons: np.ndarray, full: bool) -> None:
        """lists.evaluate for these members (distinct, ascending), over two threads when
        there are many. Without `full`, record-entered listings only (steps 2-3)."""
        if self.halves.split(len(persons)):
            # Distinct persons: each half changes its own persons' state and counts into its
            # own tallies; the second half's counts are added after.
            mid = len(persons) // 2
            zeros = lists.Counts(*(np.zeros_like(c) for c in self.counts))
            first, second = self.halves.run(
                lambda: self.evaluate(t, persons[:mid], reasons[:mid], full, self.counts),
                lambda: self.evaluate(t, persons[mid:], reasons[mid:], full, zeros),
            )
            for total, part in zip(self.counts, zeros, strict=True):
                total += part
            spells, ck_person, ck_day, moved = join(first, second)
        else:
            spells, ck_person, ck_day, moved = self.evaluate(t, persons, reasons, full, self.counts)
        self.ended.append(spells)
        self.moved.append(moved)
        for day, sel in by_day(ck_day, None, t + 1, self.days):
            self.checks[day].append(ck_person[sel])

    def evaluate(
        self, t: int, persons: np.ndarray, reasons: np.ndarray, full: bool, counts: lists.Counts
    ) -> tuple:
        capacity = (
            lists.spell_capacity(self.state.bits, persons),
            len(persons) * 2 * self.min_stay_lists,  # both worlds
        )
        return lists.evaluate(
            t,
            lists.Due(persons, reasons, full),
            self.city,
            self.group,
            self.list_rules,
            self.view,
            counts,
            capacity,
        )

    # -- what others read ------------------------------------------------------------------

    def take_moved(self) -> np.ndarray | None:
        """The members whose recorded lists changed since last asked (ids ascending, once
        each), or None."""
        if not self.moved:
            return None
        moved = np.concatenate(self.moved)
        self.moved = []
        return lists.sorted_unique(moved, np.ones(len(moved), np.uint8), self.touched)[0]

    def take_ended(self) -> list[tuple[np.ndarray, ...]]:
        """The spells ended since last asked, in the order they ended."""
        ended, self.ended = self.ended, []
        return ended
