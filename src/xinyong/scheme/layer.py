"""Layer 4 for one entity kind: records become points in two worlds (step 7), points are given
back at expiry (step 1), and tiers and lists follow (steps 8-9). The kernels are in `scoring`
and `lists`; this keeps their state and the work scheduled for later days."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from xinyong.observe import Records
from xinyong.schedule import by_day
from xinyong.scheme import features, lists, scoring
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
        self.features = tables.features
        if self.features is not None:
            f, pack_of_city = self.features, tables.city_pack
            # Per city: does its pack recalculate / give a clean-year bonus.
            self.recalculated_city = f.recalc_every[pack_of_city] > 0
            self.bonus_city = f.bonus_points[pack_of_city] > 0
            # Whether a record can be on a diminishing scale, pushed or count against a bonus
            # here: not in a city engine whose pack only recalculates (Suqian), or has no
            # feature of a scenario where others do.
            packs = np.unique(pack_of_city)
            self.scores_features = f.scores_records(packs)
            # Whether any of its packs has the periodic steps of step 1 (a recalculating
            # pack also defers each day's points to its recalculation).
            self.recalculates = bool(f.recalc_every[packs].any())
            self.bonuses = bool(f.bonus_points[packs].any())

    # -- step 1 and upheld appeals -------------------------------------------------------------

    def expire(self, t: int) -> list[np.ndarray]:
        """Step 1 (with the packs' periodic steps); returns the members whose score changed."""
        if t > 0 and t % YEAR == 0:
            self.state.cap_used[:] = 0  # a new yearly-cap window begins
            self.state.units_used[:] = 0  # and so does the count of a diminishing scale
        out = []
        for person, delta in self.expiries.pop(t, []):
            self.give_back(person, delta)
            out.append(person)
        if self.features is not None:
            if self.recalculates:
                out.append(self.recalculate(t))
            if self.bonuses:
                out.append(self.clean_year_bonus(t))
        return out

    def give_back(self, person: np.ndarray, delta: np.ndarray) -> None:
        """Points taken back (expiry, an upheld appeal); in a recalculated city they wait for
        the next recalculation."""
        tb = self.tables
        if self.features is not None and self.recalculates:
            later = self.recalculated_city[self.city[person]]
            scoring.move_points(None, self.state.pending, person[later], -delta[later])
            person, delta = person[~later], delta[~later]
        self.score_sum += scoring.reverse_points(
            self.state.score, person, delta, self.city, tb.city_pack, tb.score_lo, tb.score_hi
        )

    # -- periodic steps of some packs (scheme/features.py) -----------------------------------

    def _due(self, t: int, every: np.ndarray) -> np.ndarray:
        """The members of the cities whose pack's period `every` (per pack, 0 none) ends
        today (t > 0, t a multiple of it)."""
        due = [t > 0 and days > 0 and t % days == 0 for days in every.tolist()]
        if not any(due):  # most days: no NumPy, no pass over the members
            return np.empty(0, dtype=np.int32)
        pack_due = np.array(due)
        return np.flatnonzero(pack_due[self.tables.city_pack][self.city]).astype(np.int32)

    def recalculate(self, t: int) -> np.ndarray:
        """The periodic recalculation of packs with `recalculation: {every_days: N}` (Suqian,
        monthly): on each day t > 0 that is a multiple of N, before the day's events, the
        published score takes in every point recorded, expired or given back by an appeal
        since the last recalculation. Returns the members whose score changed."""
        members = self._due(t, self.features.recalc_every)
        if not len(members):  # most days
            return members
        st, tb = self.state, self.tables
        members = members[(st.pending[members] != 0).any(axis=1)]
        delta = -st.pending[members]
        st.pending[members] = 0
        self.score_sum += scoring.reverse_points(
            st.score, members, delta, self.city, tb.city_pack, tb.score_lo, tb.score_hi
        )
        return members

    def clean_year_bonus(self, t: int) -> np.ndarray:
        """The bonus of packs with `clean_year_bonus` (Fuzhou): on each day t > 0 that is a
        multiple of `every_days`, before the day's events, every member with no negative
        record in days t - every_days .. t - 1 gains `points` in that world (the recorded
        world counts every record, the shadow world correct ones), for `expiry_days`. Returns
        the members whose score changed."""
        f, st, tb = self.features, self.state, self.tables
        members = self._due(t, f.bonus_every)
        if not len(members):  # most days
            return members
        pk = tb.city_pack[self.city[members]]
        clean = st.last_bad[members] < (t - f.bonus_every[pk])[:, None]
        keep = clean.any(axis=1)
        members, pk = members[keep], pk[keep]
        bonus = np.where(clean[keep], f.bonus_points[pk][:, None], 0)
        before = st.score[members].astype(np.int64)
        after = np.clip(before + bonus, tb.score_lo[pk][:, None], tb.score_hi[pk][:, None])
        st.score[members] = after
        given = (after - before).astype(np.int32)
        self.score_sum += given.sum(axis=0, dtype=np.int64)
        for days in np.unique(f.bonus_expiry[pk]).tolist():
            if t + days < self.days:
                sel = f.bonus_expiry[pk] == days
                self.expiries[t + days].append((members[sel], given[sel]))
        return members

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
        if self.features is not None and self.scores_features:
            tier_may_move = np.concatenate([tier_may_move, self.score_features(t, rec, applied)])
        # Points given back at expiry; expiries after the last day need no bookkeeping.
        batch = scoring.Batch(order, 0, len(rec), rec.person, rec.behaviour, rec.truth, applied)
        expiry_day, totals, due = scoring.expiries(
            t, batch, self.city, tb.city_pack, tb.expiry, self.days
        )
        self.score_sum += totals
        if self.features is not None and self.recalculates:
            self.defer(rec, applied, order)
        for day, sel in by_day(expiry_day[due], t + 1, self.days):
            self.expiries[day].append((rec.person[due[sel]], applied[due[sel]]))
        if len(with_effect) > 1:
            in_order = np.argsort(with_effect, kind="stable")  # a handful a day
            with_effect, check_day = with_effect[in_order], check_day[in_order]
        for day, sel in by_day(check_day, t + 1, self.days):
            self.checks[day].append(rec.person[with_effect[sel]])
        effect = np.zeros(len(rec), dtype=bool)
        effect[with_effect] = True
        return Scored(applied, expiry_day, effect, with_effect, tier_may_move)

    def score_features(self, t: int, rec: Records, applied: np.ndarray) -> np.ndarray:
        """The day's records under a diminishing scale or a push (after their ordinary points),
        and the day of each member's last negative record for clean-year bonuses. Returns the
        members whose score these features changed."""
        f, tb, st = self.features, self.tables, self.state
        rows = features.featured_records(
            t, rec.person, rec.behaviour, rec.truth, self.city, tb.city_pack, tb.points,
            f.dim_units, f.push_below, self.bonus_city if f.bonus else self.bonus_city[:0],
            st.last_bad,
        )  # fmt: skip
        if not len(rows):
            return np.empty(0, dtype=np.int32)
        features.score_features(
            rows, rec.person, rec.behaviour, rec.truth, self.city, tb.city_pack, tb.score_lo,
            tb.score_hi, f.dim_units, f.dim_upto, f.dim_per, f.push_below, st.score,
            st.units_used, applied,
        )  # fmt: skip
        return rec.person[rows]

    def defer(self, rec: Records, applied: np.ndarray, order: np.ndarray) -> None:
        """In a recalculated city the day's points wait for the next recalculation: taken off
        the published score again (exactly what they added) and kept as pending."""
        st = self.state
        self.score_sum -= scoring.defer_points(
            st.score, st.pending, order, rec.person, applied, self.city, self.recalculated_city
        )

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
            parts = changed + recheck
            reason = [lists.SCORE_CHANGED] * len(changed) + [lists.RECHECK] * len(recheck)
            persons, why = lists.sorted_unique(
                np.concatenate(parts),
                np.repeat(np.array(reason, np.uint8), [len(p) for p in parts]),
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
        for day, sel in by_day(ck_day, t + 1, self.days):
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
