"""A day of the companies (docs/model.md, "Companies", "Order within the day"): their steps
run beside the adults' steps of the same number, on streams of their own.

2 appeals due, 3 late filing and settlement, 4 behaviour (and the annual one on its day),
6 observation and competitors' false reports, 7 records kept for the rating and entering
lists, 8 the rating on a tax year's last day, 9 company lists and then the person lists that
follow them, 10 deterrence (applied with step 7: first read the next day), 11 appeals filed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from numba import njit

from xinyong import randomness
from xinyong.companies import lists as company_lists
from xinyong.companies.lists import (
    EXIT_NONE,
    NONE,
    CompanyListState,
    compile_company_lists,
)
from xinyong.companies.params import SIZES
from xinyong.companies.population import CompanyPopulation
from xinyong.companies.rating import NOT_RATED, YEAR, compile_rating, is_rating_day, rate
from xinyong.consequences import effects_by_byte, effects_on, file_appeals
from xinyong.entities import EntityKind
from xinyong.observe import CORRECT, Observation, Records, VictimPool, compile_observation
from xinyong.population import TraitBuckets
from xinyong.scenario import Scenario
from xinyong.scheme.compile import FOREVER
from xinyong.scheme.layer import Scheme
from xinyong.scheme.lists import RECHECK
from xinyong.scheme.state import deter_table
from xinyong.world import NEGATIVE, Deterrence, Traits, World, compile_world

# Groups are the size classes (victim weights, wrongly-listed counts by size). A company's
# consequences act on the company itself; they reach people through person lists.
COMPANY = EntityKind("company", SIZES, ())

NO_RECORDS = (
    np.empty(0, np.int32), np.empty(0, np.int16), np.empty(0, np.int64),
)  # fmt: skip


@njit(cache=True, nogil=True)
def count_records(
    company: np.ndarray,
    behaviour: np.ndarray,
    correct: np.ndarray,
    rule_of: np.ndarray,  # per behaviour its rating rule, -1 none (empty: no rating)
    year_counts: np.ndarray,  # [companies, 2, rules]
    level: np.ndarray,  # deterrence levels
    top: int,  # the last level of the deterrence table
) -> None:
    """The day's records counted per rating rule in each world (the shadow world: correct
    ones) and each a step of deterrence, up to the table's last: one pass, where three
    np.add.at took 0.5 ms a day."""
    for r in range(company.shape[0]):
        c = company[r]
        if level[c] < top:
            level[c] += 1
        if rule_of.shape[0]:
            rule = rule_of[behaviour[r]]
            if rule >= 0:
                year_counts[c, 0, rule] += 1
                if correct[r]:
                    year_counts[c, 1, rule] += 1


@njit(cache=True, nogil=True)
def rows_on(bits: np.ndarray, mask: int, worlds: int) -> np.ndarray:
    """The rows (ascending) on any list of `mask` in any of the first `worlds` columns of
    `bits`: one pass, where NumPy's widened mask and flatnonzero took 0.12 ms a day for
    50 k companies."""
    n = 0
    for r in range(bits.shape[0]):
        n += _on(bits, r, mask, worlds)
    out = np.empty(n, dtype=np.int64)  # counted first: few rows are on such lists
    n = 0
    for r in range(bits.shape[0]):
        if _on(bits, r, mask, worlds):
            out[n] = r
            n += 1
    return out


@njit(cache=True, nogil=True)
def exits(
    words: np.ndarray,
    bits: np.ndarray,
    lists: np.ndarray,
    rate: np.ndarray,
    entered_by: np.ndarray,
    part_start: np.ndarray,
) -> np.ndarray:
    """Late filing and settlement: for each list of `lists` in turn, one uniform per company
    on it in either world (ascending), the company leaving it when the uniform is below the
    list's `rate` and a record entered the listing, which then ends in both worlds. Returns
    the companies gone, list by list. Draws from `words` (`randomness`), as Generator.random
    would for each list's companies at once."""
    listed = 0
    for li in lists:
        for r in range(bits.shape[0]):
            listed += _on(bits, r, 1 << li, 2)
    gone = np.empty(listed, dtype=np.int64)
    n = 0
    s = randomness.load(words)
    for li in lists:
        for r in range(bits.shape[0]):
            if not _on(bits, r, 1 << li, 2):
                continue
            u, s = randomness.uniform(s)
            if u < rate[li] and (entered_by[r, 0, li] >= 0 or entered_by[r, 1, li] >= 0):
                for w in range(2):
                    entered_by[r, w, li] = NONE
                    part_start[r, w, li] = NONE
                gone[n] = r
                n += 1
    randomness.store(words, s)
    return gone[:n].copy()


@njit(cache=True, nogil=True)
def follow_list(
    moved: np.ndarray,
    old_bits: np.ndarray,
    bits: np.ndarray,
    bit: int,
    legal_rep: np.ndarray,
    rep_sorted: np.ndarray,
    rep_order: np.ndarray,
    direct_end: np.ndarray,
    slot: int,
) -> np.ndarray:
    """One person list that follows the company list `bit`: for the representatives of the
    `moved` companies whose bit flipped (from `old_bits`, a row each), in each world, the
    listing (direct_end's `slot`) held while any company they represent is on it. Returns
    those representatives, per world ascending. One pass, where NumPy's dozen calls took
    about 0.2 ms for a city's day."""
    out = np.empty(2 * moved.shape[0], dtype=legal_rep.dtype)
    n = 0
    for w in range(2):
        reps = np.empty(moved.shape[0], dtype=legal_rep.dtype)
        m = 0
        for i in range(moved.shape[0]):
            if (old_bits[i, w] ^ bits[moved[i], w]) & bit:
                reps[m] = legal_rep[moved[i]]
                m += 1
        for rep in np.unique(reps[:m]):
            on = False
            # Each representative's companies: a run of rep_order.
            for k in range(np.searchsorted(rep_sorted, rep), rep_sorted.shape[0]):
                if rep_sorted[k] != rep:
                    break
                if bits[rep_order[k], w] & bit:
                    on = True
                    break
            direct_end[rep, w, slot] = FOREVER if on else -1
            out[n] = rep
            n += 1
    return out[:n].copy()


@njit(cache=True, nogil=True, inline="always")
def _on(bits: np.ndarray, r: int, mask: int, worlds: int) -> bool:
    on = np.int64(bits[r, 0])
    if worlds > 1:
        on |= np.int64(bits[r, 1])
    return (on & mask) != 0


@dataclass
class CompanyDay:
    """What a company day hands to the recorder."""

    t: int
    records: Records
    first_record_id: int
    appealed: np.ndarray  # rows of today's records appealed
    decided: tuple[np.ndarray, np.ndarray] | None  # (record ids, upheld)
    exits: int
    spells: np.ndarray  # [n, 5] company, list, world, start, end
    list_count: np.ndarray  # [2, L]
    wrong_count: np.ndarray  # [L]
    true_events: int


class Companies:
    """The companies of one engine (a one-city run, or one city of a multi-city run)."""

    def __init__(
        self,
        sc: Scenario,
        pop: CompanyPopulation,
        adults: Scheme,
        rngs: dict[str, np.random.Generator],
        first_record_id: int = 0,
        first_company: int = 0,
    ) -> None:
        co = sc.companies
        assert co is not None
        self.sc, self.pop, self.adults, self.rngs = sc, pop, adults, rngs
        self.first_company, self.script = first_company, co.script
        n = len(pop)
        world = compile_world(co)
        self.behaviours = world.behaviours
        self.annual = np.array([b.annual for b in co.behaviours.values()], dtype=bool)
        self.annual_base = world.base[self.annual]
        world.base = np.where(self.annual, 0.0, world.base)  # never drawn by the day's sampling
        self.lists = tb = compile_company_lists(sc, self.behaviours)
        self.enters_list = (tb.entry_days != 0).any(axis=1)  # per behaviour
        self.rating = compile_rating(sc, self.behaviours, tb.names)
        self.state = CompanyListState.new(n, len(tb.names), NOT_RATED)
        self.grade_before = np.full((n, 2), NOT_RATED, dtype=np.uint8)  # two ratings ago
        self.carried_only = np.zeros((n, 2), dtype=bool)
        rules = 0 if self.rating is None else len(self.rating.rules)
        self.year_counts = np.zeros((n, 2, rules), dtype=np.int32)
        cons = co.consequences
        self.deter_table = deter_table(cons.eta, cons.deter_floor)
        self.deter_level = np.zeros(n, np.uint8 if len(self.deter_table) <= 256 else np.uint16)
        self.one_city = np.zeros(n, np.uint8)  # effects_on's cities: the same effects everywhere
        self.effects_by_byte = effects_by_byte(tb.effect_mask[None, :], self.state.bits.itemsize)
        self.effect_lists = int(np.bitwise_or.reduce(tb.effect_mask, initial=0))  # any effect's
        risk: TraitBuckets = pop.risk
        self.world = World(
            world.catalogue(tb.effect_contexts, tb.multipliers),
            Traits.of(risk, risk, pop.risk_rank),
            Deterrence(self.deter_level, self.deter_table),
            (np.zeros(1, np.int64), np.zeros(n, np.uint8), np.zeros(0, np.int32)),
            0.0,
            np.zeros(n, np.uint8),
        )
        self.risk = risk.by_person()
        n_cities = int(pop.city.max(initial=0)) + 1
        self.observation = Observation(
            compile_observation(co, self.behaviours, COMPANY.groups),
            VictimPool.of(pop.city, pop.size, n_cities, groups=len(COMPANY.groups)),
        )
        self.no_positive = self.observation.detect(rngs["observe"], *NO_RECORDS)
        self.list_count = np.zeros((2, len(tb.names)), dtype=np.int64)
        self.wrong_count = np.zeros((len(tb.names), len(COMPANY.groups)), dtype=np.int64)
        self.exit_rate = np.array(
            [0.0, cons.file_late, cons.pi], dtype=np.float64
        )[tb.exit_kind]  # fmt: skip
        self.exit_lists = np.flatnonzero(tb.exit_kind != EXIT_NONE)
        self.exit_mask = sum(1 << li for li in self.exit_lists.tolist())
        self.settings = sc.appeals
        self.checks: dict[int, list[np.ndarray]] = defaultdict(list)
        self.due: list[np.ndarray] = []  # companies to evaluate at today's step 9
        self.appeals: dict[int, list[tuple[np.ndarray, ...]]] = defaultdict(list)
        # The timed listings of the recorded world, by the records that keep them (reading
        # 16): (company, list) -> [[record id, last day]].
        self.timed_by: dict[tuple[int, int], list[list[int]]] = defaultdict(list)
        self.next_record_id = first_record_id
        # Person lists that follow a company list: (adult list, its direct slot, company bit).
        st = adults.tables
        self.person_lists = [
            (li, int(st.direct_slot[li]), tb.bit(name)) for li, name in st.represents.items()
        ]
        self.rep_order = np.argsort(pop.legal_rep, kind="stable")
        self.rep_sorted = pop.legal_rep[self.rep_order]
        self.ratings: list[tuple[int, int, object]] = []  # (year, world, Rated)
        # True events other modules add (a lender's unpaid loans), for the next step 4: added
        # and taken within one day, so no checkpoint holds any.
        self.added: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return len(self.pop)

    # -- the day -------------------------------------------------------------------------------

    def day(self, t: int) -> CompanyDay:
        bits = self.state.bits
        listed_before = bits.copy() if is_rating_day(t) and self.rating is not None else None
        affected, effects_of = self.under_effects()  # lists after yesterday's step 9
        decided = self.decide_appeals(t)  # 2
        exits = self.exit_draws(t)  # 3
        events = self.behaviour(t, affected, effects_of)  # 4
        records, _ = self.observation.day(self.rngs["observe"], events, self.no_positive)  # 6
        first = self.next_record_id
        self.next_record_id += len(records)
        self.keep(t, records, first)  # 7 (and deterrence, 10)
        if listed_before is not None:
            self.rate(t, listed_before)  # 8
        spells = self.evaluate_lists(t)  # 9, then the person lists
        appealed = self.file_appeals(t, records, first)  # 11
        return CompanyDay(
            t, records, first, appealed, decided, exits, spells,
            self.list_count.copy(), self.wrong_count.sum(axis=1), len(events[0]),
        )  # fmt: skip

    def under_effects(self) -> tuple[np.ndarray, np.ndarray]:
        """Companies under a behaviour effect (distress) and each one's effects (bits)."""
        mask = self.lists.effect_mask
        if not len(mask):
            return np.empty(0, np.int32), np.empty(0, np.int64)
        bits = self.state.bits
        affected = rows_on(bits, self.effect_lists, 1).astype(np.int32)
        return affected, effects_on(affected, bits[:, 0], self.one_city, self.effects_by_byte)

    # -- step 2 --------------------------------------------------------------------------------

    def decide_appeals(self, t: int) -> tuple[np.ndarray, np.ndarray] | None:
        due = self.appeals.pop(t, [])
        if not due:
            return None
        record_id, company, behaviour, day = (np.concatenate(c) for c in zip(*due, strict=True))
        upheld = self.rngs["appeals"].random(len(record_id)) < self.settings.upheld
        this_year = upheld & (day // YEAR == t // YEAR)  # a rating already made stands
        if self.rating is not None:
            rule = self.rating.rule_of[behaviour]
            sel = this_year & (rule >= 0)
            np.subtract.at(self.year_counts, (company[sel], 0, rule[sel]), 1)
        entry = self.lists.entry_days
        for x in np.flatnonzero(upheld & (entry[behaviour] != 0).any(axis=1)).tolist():
            c, r = int(company[x]), int(record_id[x])
            for li in np.flatnonzero(entry[behaviour[x]]).tolist():
                if entry[behaviour[x], li] < 0:
                    if self.state.entered_by[c, 0, li] == r:
                        self.state.entered_by[c, 0, li] = company_lists.NONE
                        self.state.part_start[c, 0, li] = company_lists.NONE
                else:
                    kept = [k for k in self.timed_by[(c, li)] if k[0] != r]
                    self.timed_by[(c, li)] = kept
                    self.state.timed_end[c, 0, li] = max((k[1] for k in kept), default=-1)
            self.due.append(np.array([c]))
        return record_id, upheld

    # -- step 3 --------------------------------------------------------------------------------

    def exit_draws(self, t: int) -> int:
        """Late filing and settlement: one draw per listed company and list, ending the
        listing in both worlds."""
        if not self.exit_mask:
            return 0
        st = self.state
        gone = randomness.drawing(
            self.rngs["court"], exits, st.bits, self.exit_lists, self.exit_rate, st.entered_by,
            st.part_start,
        )  # fmt: skip
        self.due.append(gone)
        return len(gone)

    # -- step 4 --------------------------------------------------------------------------------

    def behaviour(
        self, t: int, affected: np.ndarray, effects_of: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        actor, beh, residual = self.world.behaviour(
            self.rngs["world"], NEGATIVE, affected, effects_of
        )
        parts = [(actor, beh, residual)]
        first = self.first_company
        mine = [(c - first, b) for c, b in self.script.get(t, ()) if 0 <= c - first < len(self)]
        if mine:  # scripted events were not drawn: observation draws their uniforms
            parts.append(
                (np.array([c for c, _ in mine], np.int32),
                 np.array([self.behaviours.index(b) for _, b in mine], np.int16),
                 self.rngs["observe"].random(len(mine)))
            )  # fmt: skip
        parts += self.added  # other modules' events, with their own uniforms
        self.added = []
        if t % YEAR != self.sc.companies.annual_day or not self.annual.any():
            return tuple(np.concatenate(cols) for cols in zip(*parts, strict=True))
        for b, base in zip(np.flatnonzero(self.annual), self.annual_base, strict=True):
            p = np.minimum(1.0, base * self.risk)
            u = self.rngs["annual"].random(len(p))
            hit = np.flatnonzero(u < p)
            parts.append((hit.astype(np.int32), np.full(len(hit), b, np.int16), u[hit] / p[hit]))
        return tuple(np.concatenate(cols) for cols in zip(*parts, strict=True))

    # -- step 7 --------------------------------------------------------------------------------

    def keep(self, t: int, rec: Records, first: int) -> None:
        """The year's records per rating rule, the listings records enter, and deterrence."""
        if not len(rec):
            return
        correct = rec.truth == CORRECT
        rule_of = self.rating.rule_of if self.rating is not None else np.empty(0, np.int64)
        # Every company record is negative: each lowers deterrence (step 10).
        count_records(
            rec.person, rec.behaviour, correct, rule_of, self.year_counts, self.deter_level,
            len(self.deter_table) - 1,
        )  # fmt: skip
        rows = np.flatnonzero(self.enters_list[rec.behaviour])
        if not len(rows):
            return
        entry = self.lists.entry_days[rec.behaviour[rows]]
        st, rules = self.state, self.lists.rules
        for li in np.flatnonzero((entry != 0).any(axis=0)).tolist():
            mine = rows[entry[:, li] != 0]
            days = int(self.lists.entry_days[rec.behaviour[mine[0]], li])
            for w in (0, 1):
                sel = mine if w == 0 else mine[correct[mine]]
                company = rec.person[sel].astype(np.int64)
                if days < 0:  # untimed: the first record enters; later ones change nothing
                    company, at = np.unique(company, return_index=True)
                    new = st.entered_by[company, w, li] < 0
                    company, row = company[new], sel[at[new]]
                    st.entered_by[company, w, li] = first + row
                    st.part_start[company, w, li] = t
                    if rules.escalate_to[li] >= 0:
                        self.checks[t + int(rules.escalate_after[li])].append(company)
                else:
                    end = t + days - 1
                    np.maximum.at(st.timed_end[:, w, li], company, end)
                    self.checks[end + 1].append(company)
                    if w == 0:
                        for c, row in zip(company.tolist(), sel.tolist(), strict=True):
                            self.timed_by[(c, li)].append([first + row, end])
                self.due.append(company)

    # -- step 8 --------------------------------------------------------------------------------

    def rate(self, t: int, listed_before: np.ndarray) -> None:
        assert self.rating is not None
        year = t // YEAR
        no_income = self.rngs["income"].random(len(self)) < self.sc.companies.no_income_share
        last = self.state.grade
        reps = (self.pop.legal_rep, len(self.adults.city))
        for w in (0, 1):
            rated = rate(
                self.rating, self.year_counts[:, w, :], self.pop.full, listed_before[:, w],
                (last[:, w], self.grade_before[:, w], self.carried_only[:, w]), no_income, reps,
            )  # fmt: skip
            self.grade_before[:, w] = last[:, w]
            last[:, w] = rated.grade
            self.carried_only[:, w] = rated.carried_only
            self.ratings.append((year, w, rated))
        self.year_counts[:] = 0
        self.due.append(np.arange(len(self), dtype=np.int64))

    # -- step 9 --------------------------------------------------------------------------------

    def evaluate_lists(self, t: int) -> np.ndarray:
        due = self.due + self.checks.pop(t, [])
        self.due = []
        if not due:
            return np.empty((0, 5), dtype=np.int64)
        companies = np.unique(np.concatenate(due).astype(np.int64))
        spells, checks, moved, old_bits = company_lists.evaluate(
            t, companies, self.pop.size, self.lists.rules, self.state, self.list_count,
            self.wrong_count,
        )  # fmt: skip
        for day in np.unique(checks[:, 1]).tolist():
            self.checks[day].append(checks[checks[:, 1] == day, 0])
        if len(moved) and self.person_lists:
            self.follow(t, moved, old_bits)
        return spells

    def follow(self, t: int, moved: np.ndarray, old_bits: np.ndarray) -> None:
        """The person lists: an adult is on one while any company they represent is on the
        company list it follows, in each world."""
        bits = self.state.bits
        direct_end = self.adults.state.direct_end
        changed = np.concatenate([
            follow_list(
                moved, old_bits, bits, bit, self.pop.legal_rep, self.rep_sorted,
                self.rep_order, direct_end, slot,
            )
            for _, slot, bit in self.person_lists
        ])  # fmt: skip
        if len(changed):
            persons = np.unique(changed)
            self.adults.reevaluate(t, persons, np.full(len(persons), RECHECK, np.uint8), False)

    # -- step 11 -------------------------------------------------------------------------------

    def file_appeals(self, t: int, rec: Records, first: int) -> np.ndarray:
        """Each wrong record's victim appeals with probability alpha; returns their rows."""
        every_negative = np.ones(len(self.behaviours), dtype=np.uint8)
        filed = file_appeals(
            self.rngs["appeals"], self.settings.alpha, every_negative, rec.behaviour, rec.truth
        )  # the adults' step 11: the same victims, the same draws
        if len(filed) and t + self.settings.appeal_days < self.sc.days:
            self.appeals[t + self.settings.appeal_days].append(
                (
                    first + filed,
                    rec.person[filed].astype(np.int64),
                    rec.behaviour[filed].astype(np.int64),
                    np.full(len(filed), t, dtype=np.int64),
                )
            )
        return filed
