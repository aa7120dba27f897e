"""Scheme, points: records add their rule's points (under yearly caps and score bounds) to the
recorded score and, when correct, to the shadow score; expiry and upheld appeals give them back
(MODEL.md steps 1, 2 and 7)."""

from __future__ import annotations

import numpy as np
from numba import njit

from xinyong.scheme.compile import CORRECT, FOREVER, NO_TIER, UNTIMED
from xinyong.sorting import radix_order

BIN_BITS = 5  # records of 2**BIN_BITS persons are scored together: their state shares lines


def person_order(person: np.ndarray, adults: int) -> np.ndarray:
    """Record indices grouped by person bin (persons p >> BIN_BITS ascending), creation
    order kept within a bin, so each person's records keep their order and state is then read
    almost sequentially."""
    return radix_order(person, adults, BIN_BITS)[0]


@njit(cache=True, nogil=True)
def score_records(
    t: int,
    order: np.ndarray,
    person: np.ndarray,
    beh: np.ndarray,
    truth: np.ndarray,
    city: np.ndarray,
    city_pack: np.ndarray,
    points: np.ndarray,
    expiry: np.ndarray,
    cap: np.ndarray,
    cap_slot: np.ndarray,
    score_lo: np.ndarray,
    score_hi: np.ndarray,
    negative: np.ndarray,
    tier_cap: np.ndarray,
    direct_days: np.ndarray,
    direct_slot: np.ndarray,
    score: np.ndarray,
    cap_used: np.ndarray,
    direct_end: np.ndarray,
    tiercap_end: np.ndarray,
    deter_level: np.ndarray,
    deter_levels: int,
):
    """Apply one day's records in the given order (records of one person keep their creation
    order). Returns per record: points applied to the recorded and shadow scores, expiry day
    (-1 never), the day its timed effects end (-1 none), and whether it has direct effects."""
    n = person.shape[0]
    applied = np.zeros((n, 2), dtype=np.int32)
    expiry_day = np.full(n, -1, dtype=np.int32)
    check_day = np.full(n, -1, dtype=np.int32)
    effect = np.zeros(n, dtype=np.bool_)
    # Gather the records in scoring order first: independent loads, so the scoring loop
    # reads them sequentially and only waits on the persons' state.
    by_person = np.empty(n, dtype=np.int32)
    by_beh = np.empty(n, dtype=np.int16)
    by_truth = np.empty(n, dtype=np.uint8)
    for x in range(n):
        by_person[x] = person[order[x]]
        by_beh[x] = beh[order[x]]
        by_truth[x] = truth[order[x]]
    for x in range(n):
        r = order[x]
        p = by_person[x]
        b = by_beh[x]
        k = city[p] if city_pack.shape[0] > 1 else 0  # one city: no read
        pk = city_pack[k]
        pts = points[pk, b]
        if expiry[pk, b] > 0:
            expiry_day[r] = t + expiry[pk, b]
        for w in range(2):
            if w == 1 and by_truth[x] != CORRECT:
                break
            a = pts
            if cap[pk, b] > 0 and a != 0:
                s = cap_slot[b]
                room = cap[pk, b] - cap_used[p, w, s]
                a = min(a, room) if a > 0 else max(a, -room)
                cap_used[p, w, s] += abs(a)
            new = min(max(score[p, w] + a, score_lo[pk]), score_hi[pk])
            a = new - score[p, w]
            score[p, w] = new
            applied[r, w] = a
            for li in range(direct_slot.shape[0]):
                days = direct_days[k, b, li]
                if days == 0:
                    continue
                d = direct_slot[li]
                effect[r] = True
                end = FOREVER if days == UNTIMED else min(t + days - 1, FOREVER - 1)
                if end > direct_end[p, w, d]:
                    direct_end[p, w, d] = end
                if days != UNTIMED:
                    check_day[r] = max(check_day[r], end + 1)
            tc = tier_cap[pk, b]
            if tc != NO_TIER and expiry[pk, b] > 0:
                end = t + expiry[pk, b] - 1
                effect[r] = True
                tiercap_end[p, w, tc] = max(tiercap_end[p, w, tc], end)
                check_day[r] = max(check_day[r], end + 1)
        if negative[b] == 1 and deter_level[p] < deter_levels - 1:
            deter_level[p] += 1
    return applied, expiry_day, check_day, effect


@njit(cache=True, nogil=True)
def reverse_points(
    score: np.ndarray,
    person: np.ndarray,
    delta: np.ndarray,
    city: np.ndarray,
    city_pack: np.ndarray,
    score_lo: np.ndarray,
    score_hi: np.ndarray,
) -> np.ndarray:
    """Give back points: score[person, w] -= delta[r, w] (expiry, or an upheld appeal), within
    the pack's score bounds. Returns the total change per world."""
    change = np.zeros(2, dtype=np.int64)
    for r in range(person.shape[0]):
        p = person[r]
        pk = city_pack[city[p]]
        for w in range(2):
            new = min(max(score[p, w] - delta[r, w], score_lo[pk]), score_hi[pk])
            change[w] += new - score[p, w]
            score[p, w] = new
    return change
