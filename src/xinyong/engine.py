"""The day loop (MODEL.md "Time and order within a day").

Each day t, in order: 1 expiry, 2 appeals due, 3 court performance, 4 behaviour,
5 association, 6 observation, 7 scoring, 8-9 tiers and lists, 10 consequences, 11 appeals
filed. The layers do the work; this file only sequences them and keeps the books.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xinyong import consequences, observe, population, randomness, world
from xinyong.buffers import headroom, with_capacity
from xinyong.errors import XinyongError
from xinyong.recorder import Recorder
from xinyong.scenario import Scenario
from xinyong.schedule import Pending, by_day
from xinyong.scheme import lists, scoring
from xinyong.scheme.compile import FOREVER, NO_TIER, Tables, compile_scenario
from xinyong.scheme.state import SchemeState
from xinyong.threads import Halves, background, join

YEAR = 365  # yearly caps count in windows floor(t / 365) from day 0
DRAWN_AHEAD = 2  # days of positive behaviour drawn ahead on the worker thread


@dataclass
class Records:
    """One day's records, in creation order."""

    person: np.ndarray
    behaviour: np.ndarray
    channel: np.ndarray
    truth: np.ndarray
    actor: np.ndarray
    # The rows of the positive behaviours' records (most of a day's): passes that look for
    # negative records skip them.
    positive: slice = field(default_factory=lambda: slice(0, 0))

    @classmethod
    def concat(cls, parts: list[tuple], positive: slice = slice(0, 0)) -> Records:
        return cls(*(np.concatenate(cols) for cols in zip(*parts, strict=True)), positive)

    def __len__(self) -> int:
        return len(self.person)


@dataclass
class Placed:
    """Records in columns with free rows around them (observe.observe's `before` and `after`),
    so that the few records of a day that come before and after them are copied in, instead
    of the many copied out (the day's positive records: 17 MB a day at 10 M adults)."""

    columns: tuple[np.ndarray, ...]
    first: int
    n: int
    counts: np.ndarray  # the observed events' tallies (observe.observe)

    @classmethod
    def of(cls, observed: tuple, before: int = 0) -> Placed:
        n, *columns, counts = observed
        return cls(tuple(columns), before, int(n), counts)

    def view(self) -> tuple[np.ndarray, ...]:
        return tuple(c[self.first : self.first + self.n] for c in self.columns)

    def around(self, before: tuple, after: tuple) -> Records:
        """Records `before`, these, then `after`, in the free rows where they fit."""
        lo, hi = self.first - len(before[0]), self.first + self.n + len(after[0])
        positive = slice(len(before[0]), len(before[0]) + self.n)
        if lo < 0 or hi > len(self.columns[0]):
            return Records.concat([before, self.view(), after], positive)
        for column, ahead, behind in zip(self.columns, before, after, strict=True):
            column[lo : self.first] = ahead
            column[self.first + self.n : hi] = behind
        return Records(*(c[lo:hi] for c in self.columns), positive)


class Simulation:
    def __init__(
        self, scenario: Scenario, out: Path | None = None, rows_per_part: int = 2_000_000
    ) -> None:
        self.sc = scenario
        self.tb: Tables = compile_scenario(scenario)
        self.script = {
            day: (
                np.array([a for a, _ in evs], dtype=np.int32),
                np.array([self.tb.behaviours.index(b) for _, b in evs], dtype=np.int16),
            )
            for day, evs in scenario.script.items()
        }
        seeds = np.random.SeedSequence(scenario.seed).spawn(8)
        self.pop = population.generate(scenario, seeds[0])
        (
            self.rng_world,
            self.rng_assoc,
            self.rng_observe,
            self.rng_court,
            self.rng_appeals,
            self.rng_world_positive,
            self.rng_observe_positive,
        ) = (np.random.default_rng(s) for s in seeds[1:])
        self.state = SchemeState.new(
            self.tb, self.pop.city, scenario.consequences.eta, scenario.consequences.deter_floor
        )
        self.groups = observe.GroupIndex.of(self.pop.city, self.pop.group, len(scenario.cities))
        self.pending = Pending()
        n = self.pop.adults
        # Zeroed, and zeroed again after each use: step 5 counts listed neighbours in it,
        # steps 8-9 flag the persons to re-evaluate in it.
        self.touched = np.zeros(n, dtype=np.uint8)
        wide = self.pop.nbr_degree.dtype != np.uint8
        self.listed_nbrs = np.zeros(n, dtype=np.uint16) if wide else self.touched
        # Start-of-day members of the recorded lists that steps 3-5 read (nobody is listed
        # before day 0), and the adults whose recorded lists changed since.
        self.members = {
            name: np.empty(0, dtype=np.int32) for name in ("distressed", "assoc", "settle")
        }
        k = len(scenario.cities)
        self.member_masks = {
            "distressed": self.tb.distress_mask,
            "assoc": np.full(k, self.tb.assoc_bit, dtype=np.int64),
            "settle": np.full(k, self.tb.settle_mask, dtype=np.int64),
        }
        self.moved: list[np.ndarray] = []
        self.n_tiers = np.array([len(t) for t in self.tb.tier_names], dtype=np.int64)
        self.min_stay_lists = int((self.tb.min_stay > 0).sum(axis=1).max())
        # Per city and behaviour: the direct listings its records enter, as (slot, days), and
        # the tier it caps (NO_TIER: none). Read for each record with effects, hundreds a
        # day, so kept as Python values (indexing the arrays made that 10 us a record).
        tb = self.tb
        self.effect_rules = [
            [
                (
                    [
                        (int(tb.direct_slot[li]), int(tb.direct_days[k, b, li]))
                        for li in np.flatnonzero(tb.direct_days[k, b]).tolist()
                    ],
                    int(tb.tier_cap[tb.city_pack[k], b]),
                )
                for b in range(len(tb.behaviours))
            ]
            for k in range(len(scenario.cities))
        ]
        self.candidates = {
            which: world.expected_candidates(
                self.tb.base, self.pop.risk_buckets, self.pop.civic_buckets, self.tb.negative, which
            )
            for which in (world.NEGATIVE, world.POSITIVE)
        }
        # Positive behaviour and its observation read only fixed traits and population data,
        # so the next days' are drawn on a worker thread while the current day runs.
        self.ahead = background()
        self.halves = Halves()  # steps over disjoint persons, split over two threads
        self.positive_next: dict[int, Future] = {}  # days drawn ahead, in order
        self.recorder = Recorder(scenario, self.tb, self.pop, out, rows_per_part)
        self.next_record_id = 0
        # Kept for daily means. Column by column: NumPy's sum over axis 0 of an (N, 2) array
        # took ten times as long (150 ms at 10 M adults).
        score = self.state.score
        self.score_sum = np.array([score[:, w].sum(dtype=np.int64) for w in range(2)])

    def state_nbytes(self) -> dict[str, int]:
        """Bytes held per array of the simulation's state (population and graph included),
        each buffer counted once."""
        seen: dict[int, tuple[str, int]] = {}

        def walk(obj: object, name: str) -> None:
            if isinstance(obj, np.ndarray):
                base = obj.base if isinstance(obj.base, np.ndarray) else obj
                seen.setdefault(id(base), (name, base.nbytes))
            elif hasattr(obj, "__dataclass_fields__"):
                for key in obj.__dataclass_fields__:
                    walk(getattr(obj, key), f"{name}.{key}")

        for key in ("pop", "state", "groups", "touched", "listed_nbrs"):
            walk(getattr(self, key), key)
        return dict(seen.values())

    # -- the day -----------------------------------------------------------------------------

    def run(self, on_day: Callable[[int], None] | None = None) -> None:
        # What exists before the run (modules, the population) is left out of the garbage
        # collector's passes during it: their full passes took 1% of a run's CPU.
        gc.freeze()
        try:
            for t in range(self.sc.days):
                self.step(t)
                if on_day is not None:
                    on_day(t)
            self.finish()
        finally:
            gc.unfreeze()

    def finish(self) -> None:
        """Stop the helper threads and write the end-of-run tables."""
        self.ahead.shutdown()
        self.halves.shutdown()
        if not self.recorder.booked_days:  # tiers and lists are first set on day 0
            raise XinyongError("finish() before any step(t): no day was simulated")
        self.recorder.finish(self)

    def step(self, t: int) -> None:
        start_of_day = self.lists_at_start_of_day()
        # Persons to re-evaluate at steps 8-9: whose score changed (by records: only where it
        # left the bounds of their tier), and whom a rule may move without a change of tier
        # (a listing or tier cap begun or ended, a minimum stay over). Day 0: everyone.
        recheck: list[np.ndarray] = []
        changed = self.expire(t)  # 1
        changed += self.decide_appeals(t)  # 2
        self.court_performance(t, start_of_day["settle"])  # 3
        positive = self.positive_behaviour(t)  # 4 and 6, drawn ahead
        actor, beh, residual = self.behaviour(t, start_of_day["distressed"])  # 4
        met, met_residual = self.association(start_of_day["assoc"])  # 5
        actor = np.concatenate([actor, met])
        beh = np.concatenate([beh, np.full(met.size, self.tb.assoc_behaviour, dtype=np.int16)])
        residual = np.concatenate([residual, met_residual])
        records, tallies = self.observe(actor, beh, residual, positive)  # 6 (steps 4-5's events)
        applied, expiry_day, effect, tier_may_move = self.score(t, records)  # 7 (and 10)
        changed.append(tier_may_move)
        recheck += [records.person[effect], *self.pending.checks.pop(t, [])]
        self.tiers_and_lists(t, *self.to_reevaluate(changed, recheck, everyone=t == 0))  # 8-9
        appealed = self.file_appeals(t, records, applied, expiry_day, effect)  # 11
        self.recorder.day(self, t, tallies, met.size, records, applied, expiry_day, appealed)

    # -- steps ---------------------------------------------------------------------------------

    def to_reevaluate(
        self, changed: list[np.ndarray], recheck: list[np.ndarray], everyone: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each person once, in id order, with why (lists.SCORE_CHANGED, lists.RECHECK)."""
        if everyone:  # every adult rechecked: their ids in order, without sorting them
            why = np.full(self.pop.adults, lists.RECHECK, dtype=np.uint8)
            for persons in changed:
                why[persons] |= lists.SCORE_CHANGED
            return np.arange(self.pop.adults, dtype=np.int32), why
        reasons = [np.full(len(p), lists.SCORE_CHANGED, dtype=np.uint8) for p in changed]
        reasons += [np.full(len(p), lists.RECHECK, dtype=np.uint8) for p in recheck]
        return lists.sorted_unique(
            np.concatenate(changed + recheck), np.concatenate(reasons), self.touched, self.halves
        )

    def lists_at_start_of_day(self) -> dict[str, np.ndarray]:
        """The recorded lists as they stood after the previous day's step 9: who is
        distressed, who is on the association list, who is on a list left by settlement. Kept
        up to date from the adults whose lists changed."""
        if self.moved:
            moved = np.concatenate(self.moved)
            moved, _ = lists.sorted_unique(moved, np.ones(len(moved), np.uint8), self.touched)
            for name, members in self.members.items():
                self.members[name] = consequences.update_members(
                    members, moved, self.state.bits[:, 0], self.pop.city, self.member_masks[name]
                )
            self.moved = []
        return self.members

    def expire(self, t: int) -> list[np.ndarray]:
        if t > 0 and t % YEAR == 0:
            self.state.cap_used[:] = 0  # a new yearly-cap window begins
        out = []
        for person, delta in self.pending.expiries.pop(t, []):
            self.score_sum += self.give_back(person, delta)
            out.append(person)
        return out

    def decide_appeals(self, t: int) -> list[np.ndarray]:
        due = self.pending.appeals.pop(t, [])
        if not due:
            return []
        ap = {k: np.concatenate([d[k] for d in due]) for k in due[0]}
        upheld = self.rng_appeals.random(len(ap["person"])) < self.sc.appeals.upheld
        self.recorder.appeals_decided(ap["record_id"], upheld)
        live = upheld & ((ap["expiry_day"] < 0) | (ap["expiry_day"] > t))
        person = ap["person"][live]
        delta = np.zeros((person.size, 2), dtype=np.int32)
        delta[:, 0] = ap["applied"][live]
        self.score_sum += self.give_back(person, delta)
        # The record is gone: its expiry must no longer give the points back a second time.
        for day, sel in by_day(ap["expiry_day"][live], None, t + 1, self.sc.days):
            self.pending.expiries[day].append((person[sel], -delta[sel]))
        with_effects = upheld & ap["effects"]
        if with_effects.any():
            self.remove_effects(t, ap["record_id"][with_effects], ap["person"][with_effects])
        return [person]

    def give_back(self, person: np.ndarray, delta: np.ndarray) -> np.ndarray:
        tb = self.tb
        return scoring.reverse_points(
            self.state.score, person, delta, self.pop.city, tb.city_pack, tb.score_lo, tb.score_hi
        )

    def remove_effects(self, t: int, record_ids: np.ndarray, persons: np.ndarray) -> None:
        """An upheld appeal ends the listings and tier caps its record alone kept alive."""
        st = self.state
        for rid, p in zip(record_ids.tolist(), persons.tolist(), strict=True):
            for slot, entries in self.pending.effects[p].items():
                if not any(e[0] == rid for e in entries):
                    continue
                entries[:] = [e for e in entries if e[0] != rid]
                if slot < 0:
                    st.tiercap_end[p, 0, :] = -1
                    for _, _, end, level in entries:
                        st.tiercap_end[p, 0, level] = max(st.tiercap_end[p, 0, level], end)
                    continue
                li = int(np.flatnonzero(self.tb.direct_slot == slot)[0])
                spell = st.since[p, 0, li] if st.bits[p, 0] >> li & 1 else t + 1
                live = [e for e in entries if e[1] >= spell]
                st.direct_end[p, 0, slot] = max((e[2] for e in live), default=-1)
        self.record_entered_lists(t, np.unique(persons).astype(np.int32))

    def court_performance(self, t: int, members: np.ndarray) -> None:
        settled = randomness.drawing(
            self.rng_court,
            consequences.settle,
            self.sc.consequences.pi,
            members,
            self.tb.settle_mask,
            self.state.bits,
            self.tb.direct_slot,
            self.state.direct_end,
        )
        self.recorder.settlements += len(settled)
        if len(settled):
            self.record_entered_lists(t, settled)

    def behaviour(
        self, t: int, distressed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Negative behaviour (and the day's scripted events), with each event's residual
        uniform (world.sample_behaviour)."""
        tb = self.tb
        expected = self.candidates[world.NEGATIVE] + len(distressed) * float(
            tb.base[tb.distress_context == 1].sum()
        )
        events = self.sample_behaviour(self.rng_world, expected, world.NEGATIVE, distressed)
        if t not in self.script:
            return events
        actor, beh = self.script[t]
        # Scripted events were not drawn: observation draws their uniforms.
        scripted = (actor, beh, self.rng_observe.random(len(actor)))
        return tuple(np.concatenate(cols) for cols in zip(events, scripted, strict=True))

    def positive_behaviour(self, t: int) -> Placed:
        """Day t's positive events and their records, as drawn ahead, and the drawing of the
        next DRAWN_AHEAD days started. Two days queued keep the worker busy whenever a core
        is free, where one left it waiting for the day loop (and the day loop for it)."""
        if t in self.positive_next:
            drawn = self.positive_next.pop(t).result()
        else:  # not drawn ahead: the first day, or days stepped out of order
            for pending in self.positive_next.values():
                pending.result()  # the streams are used by one thread at a time
            self.positive_next.clear()
            drawn = self.draw_positive()
        for day in range(t + 1, min(t + 1 + DRAWN_AHEAD, self.sc.days)):
            if day not in self.positive_next:
                self.positive_next[day] = self.ahead.submit(self.draw_positive)
        return drawn

    def draw_positive(self) -> Placed:
        actor, beh, residual = self.sample_behaviour(
            self.rng_world_positive,
            self.candidates[world.POSITIVE],
            world.POSITIVE,
            np.empty(0, dtype=np.int32),
        )
        # With rows free before them for the day's other records, and after for false reports.
        before = headroom(self.candidates[world.NEGATIVE])
        after = headroom(self.sc.observation.false_report_rate * self.pop.adults)
        return self.detect(self.rng_observe_positive, actor, beh, residual, before, after)

    def sample_behaviour(
        self, rng: np.random.Generator, expected: float, which: int, distressed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rb, cb, tb = self.pop.risk_buckets, self.pop.civic_buckets, self.tb
        return with_capacity(
            rng,
            headroom(expected),
            world.sample_behaviour,
            which,
            tb.base,
            tb.negative,
            tb.distress_context,
            self.sc.consequences.distress_factor,
            self.pop.risk_rank,
            self.state.deter_level,
            self.state.deter_table,
            rb.rows,
            rb.start,
            rb.upper,
            cb.rows,
            cb.start,
            cb.upper,
            distressed,
        )

    def association(self, listed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return randomness.drawing(
            self.rng_assoc,
            world.sample_association,
            self.sc.consequences.rho,
            listed,
            self.pop.nbr_block,
            self.pop.nbr_degree,
            self.pop.nbr,
            self.listed_nbrs,
        )

    def observe(
        self, actor: np.ndarray, beh: np.ndarray, residual: np.ndarray, positive: Placed
    ) -> tuple[Records, np.ndarray]:
        """Records of the negative and association events, then the positive events' records
        (observed ahead), then false reports; and the day's tallies of true events and
        records per behaviour and group (observe.TALLIES)."""
        tb, g, pop = self.tb, self.groups, self.pop
        seen = self.detect(self.rng_observe, actor, beh, residual)
        c = tb.false_report_channel
        rate = self.sc.observation.false_report_rate
        false = with_capacity(
            self.rng_observe,
            headroom(rate * pop.adults),
            observe.false_reports,
            rate,
            tb.false_report_behaviours,
            c,
            tb.weight[c],
            pop.city,
            pop.group,
            g.minority_before,
            g.start,
            g.size,
        )
        tallies = seen.counts + positive.counts
        column = 2 * false[1].astype(np.int64) + pop.group[false[0]]
        for row in (observe.RECORDS, observe.FALSE_REPORTS):
            np.add.at(tallies[row], column, 1)
        return positive.around(seen.view(), false), tallies

    def detect(
        self,
        rng: np.random.Generator,
        actor: np.ndarray,
        beh: np.ndarray,
        residual: np.ndarray,
        before: int = 0,
        after: int = 0,
    ) -> Placed:
        tb, g, pop = self.tb, self.groups, self.pop
        observed = randomness.drawing(
            rng,
            observe.observe,
            actor,
            beh,
            residual,
            tb.channel,
            tb.detect,
            tb.misattribute,
            tb.weight,
            pop.city,
            pop.group,
            g.minority_before,
            g.start,
            g.size,
            g.minority_bits,
            before,
            after,
        )
        return Placed.of(observed, before)

    def score(self, t: int, rec: Records) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step 7. Returns per record the points applied and expiry day, and whether it has
        direct effects; and the persons whose tier the day's records may move."""
        tb, st = self.tb, self.state
        # Scored grouped by person (each person's records keep their order): the same result
        # as creation order, with memory read almost sequentially.
        order = scoring.person_order(rec.person, self.pop.adults)
        applied = np.empty((len(rec), 2), dtype=np.int32)

        def score_part(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
            return scoring.score_records(
                t,
                order,
                lo,
                hi,
                applied,
                rec.person,
                rec.behaviour,
                rec.truth,
                self.pop.city,
                tb.city_pack,
                tb.points,
                tb.expiry,
                tb.cap,
                tb.cap_slot,
                tb.score_lo,
                tb.score_hi,
                tb.negative,
                tb.tier_cap,
                tb.direct_days,
                tb.direct_slot,
                st.score,
                st.cap_used,
                st.direct_end,
                st.tiercap_end,
                st.deter_level,
                len(st.deter_table),
                st.tier,
                tb.thresholds,
                self.n_tiers,
            )

        if self.halves.split(len(rec)):  # two bins of persons, each with its own state
            mid = scoring.middle_bin_start(order, rec.person)
            parts = self.halves.run(lambda: score_part(0, mid), lambda: score_part(mid, len(rec)))
            with_effect, check_day, tier_may_move = join(*parts)
        else:
            with_effect, check_day, tier_may_move = score_part(0, len(rec))
        # Points given back at expiry; expiries after the last day need no bookkeeping.
        expiry_day, totals, due = scoring.expiries(
            t,
            rec.person,
            rec.behaviour,
            applied,
            self.pop.city,
            tb.city_pack,
            tb.expiry,
            self.sc.days,
        )
        self.score_sum += totals
        for day, sel in by_day(expiry_day[due], None, t + 1, self.sc.days):
            self.pending.expiries[day].append((rec.person[due[sel]], applied[due[sel]]))
        in_order = np.argsort(with_effect, kind="stable")  # a handful a day
        with_effect, check_day = with_effect[in_order], check_day[in_order]
        for day, sel in by_day(check_day, None, t + 1, self.sc.days):
            self.pending.checks[day].append(rec.person[with_effect[sel]])
        self.register_effects(t, rec, expiry_day, with_effect)
        effect = np.zeros(len(rec), dtype=bool)
        effect[with_effect] = True
        return applied, expiry_day, effect, tier_may_move

    def register_effects(
        self, t: int, rec: Records, expiry_day: np.ndarray, with_effect: np.ndarray
    ) -> None:
        """Remember which records keep which listings alive, for appeals (reading 16)."""
        persons = rec.person[with_effect]
        for r, p, b, k, expiry in zip(
            with_effect.tolist(),
            persons.tolist(),
            rec.behaviour[with_effect].tolist(),
            self.pop.city[persons].tolist(),
            expiry_day[with_effect].tolist(),
            strict=True,
        ):
            rid = self.next_record_id + r
            listings, tier = self.effect_rules[k][b]
            for slot, days in listings:
                end = FOREVER if days < 0 else min(t + days - 1, FOREVER - 1)
                self.pending.effects[p][slot].append([rid, t, end])
            if tier != NO_TIER:
                self.pending.effects[p][-1].append([rid, t, expiry - 1, tier])

    def record_entered_lists(self, t: int, persons: np.ndarray) -> None:
        """Settlement and upheld appeals end record-entered listings at once (steps 2-3)."""
        reasons = np.full(len(persons), lists.RECHECK, dtype=np.uint8)
        self.tiers_and_lists(t, persons, reasons, full=False)

    def tiers_and_lists(
        self, t: int, persons: np.ndarray, reasons: np.ndarray, full: bool = True
    ) -> None:
        st = self.state
        counts = (st.tier_count, st.list_count, st.wrong_count)
        if self.halves.split(len(persons)):
            # Distinct persons: each half changes its own persons' state and counts into its
            # own tallies; the second half's counts are added after.
            mid = len(persons) // 2
            zeros = tuple(np.zeros_like(c) for c in counts)
            first, second = self.halves.run(
                lambda: self.evaluate(t, persons[:mid], reasons[:mid], full, counts),
                lambda: self.evaluate(t, persons[mid:], reasons[mid:], full, zeros),
            )
            for total, part in zip(counts, zeros, strict=True):
                total += part
            spells, ck_person, ck_day, moved = join(first, second)
        else:
            spells, ck_person, ck_day, moved = self.evaluate(t, persons, reasons, full, counts)
        self.recorder.spells_ended(spells)
        self.moved.append(moved)
        for day, sel in by_day(ck_day, None, t + 1, self.sc.days):
            self.pending.checks[day].append(ck_person[sel])

    def evaluate(
        self,
        t: int,
        persons: np.ndarray,
        reasons: np.ndarray,
        full: bool,
        counts: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> tuple:
        tb, st, pop = self.tb, self.state, self.pop
        return lists.evaluate(
            t,
            persons,
            reasons,
            full,
            pop.city,
            pop.group,
            tb.city_pack,
            self.n_tiers,
            tb.thresholds,
            tb.entry_kind,
            tb.entry_tier,
            tb.exit_kind,
            tb.exit_tier,
            tb.min_stay,
            tb.direct_slot,
            st.score,
            st.tier,
            st.bits,
            st.cond_bits,
            st.since,
            st.direct_end,
            st.tiercap_end,
            *counts,
            lists.spell_capacity(st.bits, persons),
            len(persons) * 2 * self.min_stay_lists,  # both worlds
        )

    def file_appeals(
        self, t: int, rec: Records, applied: np.ndarray, expiry_day: np.ndarray, effect: np.ndarray
    ) -> np.ndarray:
        tb = self.tb
        idx = consequences.file_appeals(
            self.rng_appeals,
            self.sc.appeals.alpha,
            tb.negative,
            rec.behaviour,
            rec.truth,
            rec.positive,
        )
        decision = t + self.sc.appeals.appeal_days
        record_id = self.next_record_id + idx
        if decision < self.sc.days and idx.size:
            self.pending.appeals[decision].append(
                {
                    "record_id": record_id,
                    "person": rec.person[idx],
                    "applied": applied[idx, 0],
                    "expiry_day": expiry_day[idx],
                    "effects": effect[idx],
                }
            )
        self.next_record_id += len(rec)
        return idx
