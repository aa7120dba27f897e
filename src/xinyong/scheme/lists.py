"""Scheme, tiers and lists (docs/model.md, steps 8 and 9): the tier follows the score (and any live
tier cap); lists are entered and left by their rules. Only persons whose score or listing may
have changed are evaluated, so the cost grows with events."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from xinyong.prefetch import AHEAD, prefetch
from xinyong.scheme.compile import (
    COND_AT_LEAST,
    COND_AT_MOST,
    COND_NONE,
    EXIT_AT_LEAST,
    EXIT_AT_MOST,
    EXIT_NEVER,
    EXIT_NOT_ENTRY,
    NO_TIER,
    ListRules,
)
from xinyong.scheme.state import StateView
from xinyong.sorting import radix_order
from xinyong.threads import Halves, join

# Why a person is re-evaluated at steps 8-9 (flags, or-ed). A person whose score changed but
# whose tier did not keeps its lists: the rules read the tier, the day (only where a minimum
# stay or a timed listing ends, which schedules a re-check) and record-entered listings.
SCORE_CHANGED, RECHECK = 1, 2


class Due(NamedTuple):
    """Whom steps 8-9 (or, not `full`, the record-entered listings alone) re-evaluate."""

    persons: np.ndarray  # distinct, in id order
    reasons: np.ndarray  # uint8: SCORE_CHANGED, RECHECK, or-ed
    full: bool


class Counts(NamedTuple):
    """Running tallies that evaluation keeps up to date."""

    tier: np.ndarray  # int64 [2, P, maxT]
    lists: np.ndarray  # int64 [2, L]
    wrong: np.ndarray  # int64 [L, G] wrongly listed members by group


@njit(cache=True, nogil=True)
def tier_of(score: int, thresholds: np.ndarray) -> int:
    k = 0
    while k < thresholds.shape[0] - 1 and score < thresholds[k]:
        k += 1
    return k


@njit(cache=True, nogil=True)
def tier_bounds(thresholds: np.ndarray, n_tiers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The scores [floor, ceiling) for which tier_of gives each pack's tier k, tier caps
    aside. Index maxT stands for NO_TIER (not yet evaluated): an empty range."""
    P, T = thresholds.shape[0], thresholds.shape[1]
    floor = np.full((P, T + 1), -(1 << 62), dtype=np.int64)
    ceiling = np.full((P, T + 1), 1 << 62, dtype=np.int64)
    floor[:, T] = ceiling[:, T] = 0
    for pk in range(P):
        for k in range(n_tiers[pk]):
            if k < n_tiers[pk] - 1:
                floor[pk, k] = thresholds[pk, k]
            if k > 0:
                ceiling[pk, k] = thresholds[pk, k - 1]
    return floor, ceiling


@njit(cache=True, nogil=True)
def _holds(kind: int, tier_limit: int, tier: int) -> bool:
    # Tiers are indexed best first: "at most D" is index >= index(D).
    if kind == COND_AT_MOST:
        return tier >= tier_limit
    if kind == COND_AT_LEAST:
        return tier <= tier_limit
    return False


@njit(cache=True, nogil=True)
def spell_capacity(bits: np.ndarray, persons: np.ndarray) -> int:
    """Listings held by these persons in both worlds: at most this many spells can end."""
    n = 0
    for x in range(persons.shape[0]):
        for w in range(2):
            v = bits[persons[x], w]
            while v:
                v &= v - 1
                n += 1
    return n


@njit(cache=True, nogil=True)
def evaluate(
    t: int,
    due: Due,
    city: np.ndarray,
    group: np.ndarray,
    rules: ListRules,
    state: StateView,
    counts: Counts,
    capacity: tuple[int, int],
):
    """Re-evaluate the given persons (distinct) in both worlds.

    With `full`, the tier is recomputed and tier conditions applied (step 8-9); without,
    only record-entered listings are (settlement and appeals, steps 2-3). Returns the spells
    that ended (person, list, world, start, end), min-stay checks due (person, day) and the
    persons whose recorded lists changed. `capacity` bounds the first two: the listings held
    by the persons, and persons x worlds x min-stay lists.
    """
    persons = due.persons
    reasons = due.reasons
    full = due.full
    city_pack = rules.city_pack
    n_tiers = rules.n_tiers
    thresholds = rules.thresholds
    entry_kind = rules.entry_kind
    entry_tier = rules.entry_tier
    exit_kind = rules.exit_kind
    exit_tier = rules.exit_tier
    min_stay = rules.min_stay
    direct_slot = rules.direct_slot
    score, tier, bits, cond_bits, since, direct_end, _, tiercap_end = state[:8]
    tier_count = counts.tier
    list_count = counts.lists
    wrong_count = counts.wrong
    spell_capacity, check_capacity = capacity
    n_lists = direct_slot.shape[0]
    has_cap = tiercap_end.shape[0] > 0
    sp_person = np.empty(spell_capacity, dtype=np.int32)
    sp_list = np.empty(spell_capacity, dtype=np.int8)
    sp_world = np.empty(spell_capacity, dtype=np.int8)
    sp_start = np.empty(spell_capacity, dtype=np.int32)
    sp_end = np.empty(spell_capacity, dtype=np.int32)
    ns = 0
    ck_person = np.empty(check_capacity, dtype=np.int32)
    ck_day = np.empty(check_capacity, dtype=np.int32)
    nc = 0
    moved = np.empty(persons.shape[0], dtype=np.int32)
    nm = 0
    n = persons.shape[0]
    for x in range(n):
        if x + AHEAD < n:  # persons are a few hundred ids apart: each one's state misses cache
            ahead = persons[x + AHEAD]
            prefetch(score, 2 * ahead)
            prefetch(tier, 2 * ahead)
            prefetch(bits, 2 * ahead)
            prefetch(cond_bits, 2 * ahead)
            prefetch(since, since.shape[1] * since.shape[2] * ahead)
            if direct_end.shape[2] > 0:
                prefetch(direct_end, direct_end.shape[1] * direct_end.shape[2] * ahead)
            if has_cap:
                prefetch(tiercap_end, tiercap_end.shape[1] * tiercap_end.shape[2] * ahead)
        p = persons[x]
        k = city[p] if city_pack.shape[0] > 1 else 0  # one city: no read
        pk = city_pack[k]
        old0 = bits[p, 0]
        old1 = bits[p, 1]
        for w in range(2):
            if full:
                tr = tier_of(score[p, w], thresholds[pk, : n_tiers[pk]])
                if has_cap:
                    for level in range(n_tiers[pk] - 1, tr, -1):
                        if tiercap_end[p, w, level] >= t:
                            tr = level
                            break
                if tr != tier[p, w]:
                    if tier[p, w] != NO_TIER:
                        tier_count[w, pk, tier[p, w]] -= 1
                    tier_count[w, pk, tr] += 1
                    tier[p, w] = tr
                elif reasons[x] == SCORE_CHANGED:
                    continue  # same tier and nothing else due: no rule's outcome can change
            tr = tier[p, w]
            old = bits[p, w]
            cond = cond_bits[p, w]
            new = 0
            for li in range(n_lists):
                bit = 1 << li
                if full and entry_kind[k, li] != COND_NONE:
                    if cond & bit == 0:
                        if _holds(entry_kind[k, li], entry_tier[k, li], tr):
                            cond |= bit
                            if min_stay[k, li] > 0:
                                ck_person[nc] = p
                                ck_day[nc] = t + min_stay[k, li]
                                nc += 1
                    else:
                        start = since[p, w, li] if old & bit else t
                        ek = exit_kind[k, li]
                        if ek != EXIT_NEVER and t >= start + min_stay[k, li]:
                            leave = False
                            if ek == EXIT_NOT_ENTRY:
                                leave = not _holds(entry_kind[k, li], entry_tier[k, li], tr)
                            elif ek == EXIT_AT_MOST:
                                leave = _holds(COND_AT_MOST, exit_tier[k, li], tr)
                            elif ek == EXIT_AT_LEAST:
                                leave = _holds(COND_AT_LEAST, exit_tier[k, li], tr)
                            if leave:
                                cond &= ~bit
                member = cond & bit
                d = direct_slot[li]
                if d >= 0 and direct_end[p, w, d] >= t:
                    member = bit
                new |= member
                if member and not old & bit:
                    since[p, w, li] = t
                    list_count[w, li] += 1
                elif not member and old & bit:
                    list_count[w, li] -= 1
                    sp_person[ns] = p
                    sp_list[ns] = li
                    sp_world[ns] = w
                    sp_start[ns] = since[p, w, li]
                    sp_end[ns] = t
                    ns += 1
                    since[p, w, li] = -1
            cond_bits[p, w] = cond
            bits[p, w] = new
        old_wrong = old0 & ~old1
        if bits[p, 0] != old0:
            moved[nm] = p
            nm += 1
        new_wrong = bits[p, 0] & ~bits[p, 1]
        if old_wrong != new_wrong:
            g = group[p]
            for li in range(n_lists):
                bit = 1 << li
                if old_wrong & bit and not new_wrong & bit:
                    wrong_count[li, g] -= 1
                elif new_wrong & bit and not old_wrong & bit:
                    wrong_count[li, g] += 1
    # Copies, not views: the tables keep these, and a view would pin the whole buffer.
    spells = (
        sp_person[:ns].copy(),
        sp_list[:ns].copy(),
        sp_world[:ns].copy(),
        sp_start[:ns].copy(),
        sp_end[:ns].copy(),
    )
    return spells, ck_person[:nc].copy(), ck_day[:nc].copy(), moved[:nm].copy()


def sorted_unique(
    persons: np.ndarray, reasons: np.ndarray, flags: np.ndarray, halves: Halves | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The persons in id order, each once, with their reasons or-ed. `flags` is a zeroed
    byte per adult, left zeroed. When many adults are given (an eighth or more), marking
    them and scanning every adult's byte is cheaper (2.4 to 3.3 ns an adult against 6 to
    19 ns an id, measured at 333 k to 10 M adults), and the scan can be split in halves of
    adults; otherwise a radix sort keeps the cost to the ids given."""
    adults = flags.shape[0]
    if persons.shape[0] * 8 < adults:
        return _sorted_unique_ids(persons, reasons, adults)
    _mark(persons, reasons, flags)
    room = persons.shape[0]
    if halves is not None and halves.split(adults):
        mid = adults // 2
        return join(
            *halves.run(
                lambda: _collect(flags, 0, mid, room), lambda: _collect(flags, mid, adults, room)
            )
        )
    return _collect(flags, 0, adults, room)


@njit(cache=True, nogil=True)
def _mark(persons: np.ndarray, reasons: np.ndarray, flags: np.ndarray) -> None:
    for x in range(persons.shape[0]):
        flags[persons[x]] |= reasons[x]


@njit(cache=True, nogil=True)
def _collect(flags: np.ndarray, lo: int, hi: int, room: int) -> tuple[np.ndarray, np.ndarray]:
    """The flagged adults in [lo, hi) and their flags (at most `room`), flags zeroed."""
    key = np.empty(min(room, hi - lo) + 1, dtype=np.int32)
    why = np.empty(key.shape[0], dtype=np.uint8)
    m = 0
    for i in range(lo, hi):  # branch-free: every id is written, kept only if flagged
        key[m] = i
        why[m] = flags[i]
        m += flags[i] != 0
        flags[i] = 0
    return key[:m].copy(), why[:m].copy()


@njit(cache=True, nogil=True)
def _sorted_unique_ids(
    persons: np.ndarray, reasons: np.ndarray, adults: int
) -> tuple[np.ndarray, np.ndarray]:
    order, key = radix_order(persons, adults, 0, True)
    why = np.empty(order.shape[0], dtype=np.uint8)
    m = 0
    for i in range(order.shape[0]):
        if m > 0 and key[m - 1] == key[i]:
            why[m - 1] |= reasons[order[i]]
        else:
            key[m] = key[i]
            why[m] = reasons[order[i]]
            m += 1
    return key[:m].copy(), why[:m].copy()
