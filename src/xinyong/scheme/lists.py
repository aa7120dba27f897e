"""Scheme, tiers and lists (MODEL.md steps 8 and 9): the tier follows the score (and any live
tier cap); lists are entered and left by their rules. Only persons whose score or listing may
have changed are evaluated, so the cost grows with events."""

from __future__ import annotations

import numpy as np
from numba import njit

from xinyong.buffers import grow
from xinyong.scheme.compile import (
    COND_AT_LEAST,
    COND_AT_MOST,
    COND_NONE,
    EXIT_AT_LEAST,
    EXIT_AT_MOST,
    EXIT_NEVER,
    EXIT_NOT_ENTRY,
    NO_TIER,
)


@njit(cache=True)
def tier_of(score: int, thresholds: np.ndarray) -> int:
    k = 0
    while k < thresholds.shape[0] - 1 and score < thresholds[k]:
        k += 1
    return k


@njit(cache=True)
def _holds(kind: int, tier_limit: int, tier: int) -> bool:
    # Tiers are indexed best first: "at most D" is index >= index(D).
    if kind == COND_AT_MOST:
        return tier >= tier_limit
    if kind == COND_AT_LEAST:
        return tier <= tier_limit
    return False


@njit(cache=True)
def evaluate(
    t: int,
    persons: np.ndarray,
    full: bool,
    stamp: np.ndarray,
    city: np.ndarray,
    group: np.ndarray,
    city_pack: np.ndarray,
    n_tiers: np.ndarray,
    thresholds: np.ndarray,
    entry_kind: np.ndarray,
    entry_tier: np.ndarray,
    exit_kind: np.ndarray,
    exit_tier: np.ndarray,
    min_stay: np.ndarray,
    direct_slot: np.ndarray,
    score: np.ndarray,
    tier: np.ndarray,
    bits: np.ndarray,
    cond_bits: np.ndarray,
    since: np.ndarray,
    direct_end: np.ndarray,
    tiercap: np.ndarray,
    tiercap_end: np.ndarray,
    tier_count: np.ndarray,
    list_count: np.ndarray,
    wrong_count: np.ndarray,
):
    """Re-evaluate the given persons in both worlds (each once; duplicates are skipped).

    With `full`, the tier is recomputed and tier conditions applied (step 8-9); without,
    only record-entered listings are (settlement and appeals, steps 2-3). Returns the spells
    that ended (person, list, world, start, end) and min-stay checks due (person, day).
    """
    n_lists = direct_slot.shape[0]
    has_cap = tiercap.shape[1] > 0
    sp_person = np.empty(64, dtype=np.int32)
    sp_list = np.empty(64, dtype=np.int8)
    sp_world = np.empty(64, dtype=np.int8)
    sp_start = np.empty(64, dtype=np.int32)
    sp_end = np.empty(64, dtype=np.int32)
    ns = 0
    ck_person = np.empty(64, dtype=np.int32)
    ck_day = np.empty(64, dtype=np.int32)
    nc = 0
    # A distinct stamp per call lets several calls on one day each see every person once.
    mark = stamp[-1] + 1
    stamp[-1] = mark
    for x in range(persons.shape[0]):
        p = persons[x]
        if stamp[p] == mark:
            continue
        stamp[p] = mark
        k = city[p]
        pk = city_pack[k]
        old0 = bits[0, p]
        old1 = bits[1, p]
        for w in range(2):
            if full:
                tr = tier_of(score[w, p], thresholds[pk, : n_tiers[pk]])
                if has_cap and tiercap_end[w, p] >= t and tiercap[w, p] > tr:
                    tr = tiercap[w, p]
                if tr != tier[w, p]:
                    if tier[w, p] != NO_TIER:
                        tier_count[w, pk, tier[w, p]] -= 1
                    tier_count[w, pk, tr] += 1
                    tier[w, p] = tr
            tr = tier[w, p]
            old = bits[w, p]
            cond = cond_bits[w, p]
            new = 0
            for li in range(n_lists):
                bit = 1 << li
                if full and entry_kind[k, li] != COND_NONE:
                    if cond & bit == 0:
                        if _holds(entry_kind[k, li], entry_tier[k, li], tr):
                            cond |= bit
                            if min_stay[k, li] > 0:
                                ck_person = grow(ck_person, nc + 1)
                                ck_day = grow(ck_day, nc + 1)
                                ck_person[nc] = p
                                ck_day[nc] = t + min_stay[k, li]
                                nc += 1
                    else:
                        start = since[w, li, p] if old & bit else t
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
                if d >= 0 and direct_end[w, d, p] >= t:
                    member = bit
                new |= member
                if member and not old & bit:
                    since[w, li, p] = t
                    list_count[w, li] += 1
                elif not member and old & bit:
                    list_count[w, li] -= 1
                    sp_person = grow(sp_person, ns + 1)
                    sp_list = grow(sp_list, ns + 1)
                    sp_world = grow(sp_world, ns + 1)
                    sp_start = grow(sp_start, ns + 1)
                    sp_end = grow(sp_end, ns + 1)
                    sp_person[ns] = p
                    sp_list[ns] = li
                    sp_world[ns] = w
                    sp_start[ns] = since[w, li, p]
                    sp_end[ns] = t
                    ns += 1
                    since[w, li, p] = -1
            cond_bits[w, p] = cond
            bits[w, p] = new
        old_wrong = old0 & ~old1
        new_wrong = bits[0, p] & ~bits[1, p]
        if old_wrong != new_wrong:
            g = group[p]
            for li in range(n_lists):
                bit = 1 << li
                if old_wrong & bit and not new_wrong & bit:
                    wrong_count[li, g] -= 1
                elif new_wrong & bit and not old_wrong & bit:
                    wrong_count[li, g] += 1
    spells = (sp_person[:ns], sp_list[:ns], sp_world[:ns], sp_start[:ns], sp_end[:ns])
    return spells, ck_person[:nc], ck_day[:nc]
