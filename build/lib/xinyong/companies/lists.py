"""Company lists (docs/model.md, "Company lists"), step 9 for companies, in two worlds.

A company list is the union of up to three parts:
- a record-entered part: timed (t .. t + days - 1, extended by a new record) or untimed (left
  by a daily draw, an escalation to another list, or an upheld appeal of the entering record;
  a record while the part is on changes nothing);
- a part entered by escalation from another list, held for `stay_days`;
- a part on while any of its grounds holds (a grade, another list), kept `min_stay_days`.
Only the companies whose parts may have changed are evaluated: cost grows with events, except
on a rating day, when every company's grade is new.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit

from xinyong.companies.rating import GRADE_CODES
from xinyong.scenario import Scenario

MAX_COMPANY_LISTS = 8  # list bits are one byte
NONE = -1
EXIT_NONE, EXIT_LATE_FILING, EXIT_SETTLEMENT = 0, 1, 2


class CompanyListRules(NamedTuple):
    """The kernel's view of the company lists, in evaluation order (grounds first)."""

    order: np.ndarray  # int64 [L] list indices, each after the lists its grounds name
    untimed: np.ndarray  # bool [L] has an untimed record-entered part
    escalate_to: np.ndarray  # int64 [L] -1 none
    escalate_after: np.ndarray  # int64 [L]
    stay_days: np.ndarray  # int64 [L] 0: not entered by escalation
    ground_grades: np.ndarray  # int64 [L] bit g: rated with grade code g
    ground_lists: np.ndarray  # int64 [L] bit l: on list l
    min_stay: np.ndarray  # int64 [L]


class CompanyListState(NamedTuple):
    """Each company's lists in both worlds (0 recorded, 1 shadow); days -1 = none."""

    bits: np.ndarray  # uint8 [N, 2]
    since: np.ndarray  # int32 [N, 2, L] the current spell's first day
    entered_by: np.ndarray  # int64 [N, 2, L] the record that entered the untimed part
    part_start: np.ndarray  # int32 [N, 2, L] the untimed part's first day
    timed_end: np.ndarray  # int32 [N, 2, L] last day of the timed record part
    stay_until: np.ndarray  # int32 [N, 2, L] last day of the escalated part
    cond_since: np.ndarray  # int32 [N, 2, L] first day of the grounds part
    grade: np.ndarray  # uint8 [N, 2] the rating in force

    @classmethod
    def new(cls, n: int, lists: int, not_rated: int) -> CompanyListState:
        def days() -> np.ndarray:
            return np.full((n, 2, lists), NONE, dtype=np.int32)

        return cls(
            np.zeros((n, 2), dtype=np.uint8), days(),
            np.full((n, 2, lists), NONE, dtype=np.int64), days(), days(), days(), days(),
            np.full((n, 2), not_rated, dtype=np.uint8),
        )  # fmt: skip


@dataclass
class CompanyListTables:
    names: list[str]
    kinds: list[str]  # sanction or privilege
    rules: CompanyListRules
    entry_days: np.ndarray  # int64 [B, L]: 0 none, -1 untimed, else days
    exit_kind: np.ndarray  # int64 [L] EXIT_*
    consequences: dict[str, list[dict]]  # per list, for the audit
    # Behaviour effects of the sanctions (world.Catalogue): one per (context, multiplier),
    # effect_mask[e] the lists whose sanctions carry it.
    effect_contexts: list[str]
    multipliers: list[float]
    effect_mask: np.ndarray  # int64 [E]

    def bit(self, name: str) -> int:
        return 1 << self.names.index(name) if name in self.names else 0


def compile_company_lists(sc: Scenario, behaviours: list[str]) -> CompanyListTables:
    co = sc.companies
    assert co is not None
    defs = {n: lst for p in co.packs for n, lst in sc.company_packs[p].lists.items()}
    names = list(defs)
    if len(names) > MAX_COMPANY_LISTS:
        raise ValueError(f"at most {MAX_COMPANY_LISTS} company lists, got {len(names)}")
    lidx = {n: i for i, n in enumerate(names)}
    L, B = len(names), len(behaviours)
    entry_days = np.zeros((B, L), dtype=np.int64)
    exit_kind = np.zeros(L, dtype=np.int64)
    untimed = np.zeros(L, dtype=bool)
    escalate_to = np.full(L, NONE, dtype=np.int64)
    escalate_after = np.zeros(L, dtype=np.int64)
    stay_days = np.zeros(L, dtype=np.int64)
    ground_grades = np.zeros(L, dtype=np.int64)
    ground_lists = np.zeros(L, dtype=np.int64)
    min_stay = np.zeros(L, dtype=np.int64)
    effects: list[tuple[str, float]] = []
    effect_masks: dict[tuple[str, float], int] = {}
    for name, lst in defs.items():
        li = lidx[name]
        if lst.entry is not None:
            entry_days[behaviours.index(lst.entry.record), li] = lst.entry.days or -1
            untimed[li] = lst.entry.days is None
        exit_kind[li] = {None: EXIT_NONE, "late_filing": EXIT_LATE_FILING,
                         "settlement": EXIT_SETTLEMENT}[lst.exit]  # fmt: skip
        if lst.escalate is not None:
            escalate_to[li] = lidx[lst.escalate.to]
            escalate_after[li] = lst.escalate.after_days
        stay_days[li] = lst.stay_days or 0
        for ground in lst.while_any:
            if ground.rated is not None:
                ground_grades[li] |= 1 << GRADE_CODES[ground.rated]
            else:
                ground_lists[li] |= 1 << lidx[ground.list]
        min_stay[li] = lst.min_stay_days
        for c in lst.consequences:
            for eff in c.effects if co.consequences.behaviour_effects else ():
                key = (eff.context, eff.multiplier)
                if key not in effect_masks:
                    effects.append(key)
                    effect_masks[key] = 0
                effect_masks[key] |= 1 << li
    rules = CompanyListRules(
        _evaluation_order(ground_lists, escalate_to), untimed, escalate_to, escalate_after,
        stay_days, ground_grades, ground_lists, min_stay,
    )  # fmt: skip
    return CompanyListTables(
        names=names,
        kinds=[lst.kind for lst in defs.values()],
        rules=rules,
        entry_days=entry_days,
        exit_kind=exit_kind,
        consequences={
            n: [c.model_dump(exclude={"effects"}) | {"kind": lst.kind} for c in lst.consequences]
            for n, lst in defs.items()
        },
        effect_contexts=[c for c, _ in effects],
        multipliers=[m for _, m in effects],
        effect_mask=np.array([effect_masks[k] for k in effects], dtype=np.int64),
    )


def _evaluation_order(ground_lists: np.ndarray, escalate_to: np.ndarray) -> np.ndarray:
    """Lists after those their grounds read and those that escalate into them."""
    L = len(ground_lists)
    after = [set() for _ in range(L)]
    for li in range(L):
        after[li] |= {j for j in range(L) if ground_lists[li] >> j & 1}
        if escalate_to[li] >= 0:
            after[int(escalate_to[li])].add(li)
    order: list[int] = []
    while len(order) < L:
        ready = [li for li in range(L) if li not in order and after[li] <= set(order)]
        if not ready:
            raise ValueError("company lists hold on each other in a cycle")
        order.append(ready[0])
    return np.array(order, dtype=np.int64)


@njit(cache=True, nogil=True)
def evaluate(t, companies, size, rules, state, list_count, wrong_count):
    """Step 9 for these companies (distinct): each list's parts in evaluation order, in both
    worlds. Returns the spells that ended (company, list, world, start, end), the re-checks
    due (company, day), and the companies whose lists changed with their old bits [n, 2]."""
    order, untimed, escalate_to, escalate_after, stay_days = rules[:5]
    ground_grades, ground_lists, min_stay = rules[5:]
    bits, since, entered_by, part_start, timed_end, stay_until, cond_since, grade = state
    n_lists = order.shape[0]
    n = companies.shape[0]
    cap = n * 2 * n_lists
    sp = np.empty((cap, 5), dtype=np.int64)
    ns = 0
    ck = np.empty((cap, 2), dtype=np.int64)
    nc = 0
    moved = np.empty(n, dtype=np.int64)
    old_bits = np.empty((n, 2), dtype=np.uint8)
    nm = 0
    for x in range(n):
        c = companies[x]
        before0, before1 = bits[c, 0], bits[c, 1]
        for w in range(2):
            old = np.int64(bits[c, w])
            new = np.int64(0)
            for o in range(n_lists):
                li = order[o]
                bit = np.int64(1) << li
                if untimed[li] and entered_by[c, w, li] >= 0:
                    to = escalate_to[li]
                    if to >= 0 and t >= part_start[c, w, li] + escalate_after[li]:
                        entered_by[c, w, li] = NONE
                        part_start[c, w, li] = NONE
                        stay_until[c, w, to] = t + stay_days[to] - 1
                        ck[nc, 0], ck[nc, 1] = c, t + stay_days[to]
                        nc += 1
                member = (untimed[li] and entered_by[c, w, li] >= 0) or timed_end[c, w, li] >= t
                member = member or stay_until[c, w, li] >= t
                if ground_grades[li] or ground_lists[li]:
                    by_grade = ((ground_grades[li] >> grade[c, w]) & 1) != 0
                    holds = by_grade or (new & ground_lists[li]) != 0
                    if cond_since[c, w, li] < 0:
                        if holds:
                            cond_since[c, w, li] = t
                            if min_stay[li] > 0:
                                ck[nc, 0], ck[nc, 1] = c, t + min_stay[li]
                                nc += 1
                    elif not holds and t >= cond_since[c, w, li] + min_stay[li]:
                        cond_since[c, w, li] = NONE
                    member = member or cond_since[c, w, li] >= 0
                if member:
                    new |= bit
                    if not old & bit:
                        since[c, w, li] = t
                        list_count[w, li] += 1
                elif old & bit:
                    list_count[w, li] -= 1
                    sp[ns, 0], sp[ns, 1], sp[ns, 2] = c, li, w
                    sp[ns, 3], sp[ns, 4] = since[c, w, li], t
                    ns += 1
                    since[c, w, li] = NONE
            bits[c, w] = new
        wrong_before = before0 & ~before1
        wrong_after = bits[c, 0] & ~bits[c, 1]
        if wrong_before != wrong_after:
            for li in range(n_lists):
                bit = 1 << li
                if wrong_before & bit and not wrong_after & bit:
                    wrong_count[li, size[c]] -= 1
                elif wrong_after & bit and not wrong_before & bit:
                    wrong_count[li, size[c]] += 1
        if bits[c, 0] != before0 or bits[c, 1] != before1:
            moved[nm] = c
            old_bits[nm, 0], old_bits[nm, 1] = before0, before1
            nm += 1
    return sp[:ns].copy(), ck[:nc].copy(), moved[:nm].copy(), old_bits[:nm].copy()
