"""Scheme, points: records add their rule's points (under yearly caps and score bounds) to the
recorded score and, when correct, to the shadow score; expiry and upheld appeals give them back
(docs/model.md, steps 1, 2 and 7)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from xinyong.observe import CORRECT
from xinyong.prefetch import AHEAD, prefetch
from xinyong.scheme.compile import FOREVER, NO_TIER, UNTIMED, Rules
from xinyong.scheme.lists import tier_bounds
from xinyong.scheme.state import StateView
from xinyong.sorting import radix_order

SLOT, POINTS, CAP, CAPPED, EFFECTS = range(5)  # the fields of a rule row in score_records
RULE = 5
BIN_BITS = 5  # records of 2**BIN_BITS persons are scored together: their state shares lines


class Batch(NamedTuple):
    """Records order[lo:hi] of a day, to score in that order; `applied` receives their points
    per world."""

    order: np.ndarray
    lo: int
    hi: int
    person: np.ndarray
    behaviour: np.ndarray
    truth: np.ndarray
    applied: np.ndarray  # int32 [n, 2]


def person_order(person: np.ndarray, adults: int) -> np.ndarray:
    """Record indices grouped by person bin (persons p >> BIN_BITS ascending), creation
    order kept within a bin, so each person's records keep their order and state is then read
    almost sequentially."""
    return radix_order(person, adults, BIN_BITS)[0]


def middle_bin_start(order: np.ndarray, person: np.ndarray) -> int:
    """A position near the middle of `order` where a new person bin begins: records on
    either side of it belong to different persons."""
    x = len(order) // 2
    while 0 < x < len(order) and person[order[x]] >> BIN_BITS == person[order[x - 1]] >> BIN_BITS:
        x += 1
    return x


@njit(cache=True, nogil=True, inline="always")
def _add_points(pw, rule, bounds, floor, ceiling, score, cap_used, tier) -> tuple[int, bool]:
    """A record's points for person-world pw = 2 p + w, under its yearly cap and the score
    bounds: the change of score, and whether the new score left the bounds of p's tier. All
    arrays flat, indexed from `rule` and `bounds` (see score_records)."""
    cap_index, points, cap, capped = rule
    score_lo, score_hi, tier_row, no_tier = bounds
    used = np.int32(cap_used[cap_index])
    room = cap - used
    a = min(max(points, -room), room)
    cap_used[cap_index] = used + capped * abs(a)
    old = score[pw]
    new = min(max(old + a, score_lo), score_hi)
    score[pw] = new
    tr = tier_row + np.uint64(min(tier[pw], no_tier))
    return new - old, (new < floor[tr]) | (new >= ceiling[tr])


@njit(cache=True, nogil=True)
def score_records(t: int, batch: Batch, city: np.ndarray, rules: Rules, state: StateView):
    """Apply the day's records order[lo:hi] in that order (records of one person keep their
    creation order). Fills `applied` with the points they added to the recorded and shadow
    scores. Returns the records with direct effects (in scoring order) with the day their
    timed effects end (-1 none), and the persons whose tier the new scores may move (a
    score outside the bounds of the person's tier in either world; listed once or more):
    steps 8-9 need not look at the others for their score."""
    order = batch.order
    lo = batch.lo
    hi = batch.hi
    person = batch.person
    beh = batch.behaviour
    truth = batch.truth
    applied = batch.applied
    city_pack = rules.city_pack
    points = rules.points
    expiry = rules.expiry
    cap = rules.cap
    cap_slot = rules.cap_slot
    score_lo = rules.score_lo
    score_hi = rules.score_hi
    negative = rules.negative
    tier_cap = rules.tier_cap
    direct_days = rules.direct_days
    direct_slot = rules.direct_slot
    thresholds = rules.thresholds
    n_tiers = rules.n_tiers
    score = state.score
    tier = state.tier
    direct_end = state.direct_end
    cap_used = state.cap_used
    tiercap_end = state.tiercap_end
    deter_level = state.deter_level
    deter_levels = state.deter_levels
    n = hi - lo
    K, B = direct_days.shape[0], direct_days.shape[1]
    tier_floor, tier_ceiling = tier_bounds(thresholds, n_tiers)
    T = thresholds.shape[1]  # tier NO_TIER reads the empty range at index T
    # The loop's arrays as flat views indexed by unsigned integers: with the shapes of many
    # 2-D and 3-D arrays live in the loop, the compiler kept them on the stack and read them
    # again for every record (flat: 4% faster).
    floor, ceiling = tier_floor.reshape(-1), tier_ceiling.reshape(-1)
    score_flat, tier_flat = score.reshape(-1), tier.reshape(-1)
    cap_flat = cap_used.reshape(-1)
    S = np.uint64(cap_used.shape[2])
    width = np.uint64(T + 1)
    # Each (city, behaviour)'s rule as a row of RULE ints, read from one small table with no
    # branch on the rule: no cap is a cap that cannot be reached, charged to slot 0 with
    # weight 0.
    rules = np.zeros(K * B * RULE, dtype=np.int32)
    for k in range(K):
        pk = city_pack[k]
        for b in range(B):
            r = (k * B + b) * RULE
            rules[r + SLOT] = max(cap_slot[b], 0)
            rules[r + POINTS] = points[pk, b]
            rules[r + CAP] = cap[pk, b] if cap[pk, b] > 0 else 1 << 30
            rules[r + CAPPED] = cap[pk, b] > 0
            effects = tier_cap[pk, b] != NO_TIER and expiry[pk, b] > 0
            for li in range(direct_slot.shape[0]):
                effects |= direct_days[k, b, li] != 0
            rules[r + EFFECTS] = effects
    n_beh = np.uint64(B)
    # Gather the records in scoring order first: independent loads, so the scoring loop
    # reads them sequentially and only waits on the persons' state. Results are written in
    # scoring order too and put back in creation order at the end, in one pass.
    by_person = np.empty(n, dtype=np.int32)
    by_beh = np.empty(n, dtype=np.int16)
    by_truth = np.empty(n, dtype=np.uint8)
    for x in range(n):
        if x + AHEAD < n:
            ahead = order[lo + x + AHEAD]
            prefetch(person, ahead)
            prefetch(beh, ahead)
            prefetch(truth, ahead)
        r = order[lo + x]
        by_person[x] = person[r]
        by_beh[x] = beh[r]
        by_truth[x] = truth[r]
    scored = np.empty(2 * n, dtype=np.int32)
    may_move = np.empty(n, dtype=np.int32)
    n_move = 0
    with_effect = np.empty(n, dtype=np.int64)  # only a few pages are ever written
    check_day = np.empty(n, dtype=np.int32)
    n_effect = 0
    one_city = city_pack.shape[0] == 1
    top = deter_levels - 1
    slots = cap_used.shape[1] * cap_used.shape[2]
    for x in range(n):
        if x + AHEAD < n:
            ahead = by_person[x + AHEAD]
            prefetch(score, 2 * ahead)
            prefetch(cap_used, slots * ahead)
            prefetch(tier, 2 * ahead)
        # Unsigned indices: numba then skips the wrap-around of negative indices at every
        # access (11% of the kernel's time).
        p = np.uint64(by_person[x])
        b = np.uint64(by_beh[x])
        k = np.uint64(0) if one_city else np.uint64(city[p])  # one city: no read
        pk = np.uint64(city_pack[k])
        worlds = 2 if by_truth[x] == CORRECT else 1
        # The rule and bounds as locals: to the compiler the stores below may alias any array,
        # so it would read them again after each store (9% of the kernel's time).
        pw = np.uint64(2) * p
        r = (k * n_beh + b) * np.uint64(RULE)
        slot = np.uint64(rules[r + np.uint64(SLOT)])
        rule = (
            pw * S + slot,
            rules[r + np.uint64(POINTS)],
            rules[r + np.uint64(CAP)],
            rules[r + np.uint64(CAPPED)],
        )
        bounds = (score_lo[pk], score_hi[pk], pk * width, T)
        xx = np.uint64(2) * np.uint64(x)
        scored[xx], outside = _add_points(
            pw, rule, bounds, floor, ceiling, score_flat, cap_flat, tier_flat
        )
        scored[xx + np.uint64(1)] = 0
        if worlds == 2:
            shadow = (rule[0] + S, rule[1], rule[2], rule[3])
            scored[xx + np.uint64(1)], shadow_outside = _add_points(
                pw + np.uint64(1), shadow, bounds, floor, ceiling, score_flat, cap_flat, tier_flat
            )
            outside |= shadow_outside
        may_move[n_move] = p
        n_move += outside
        level = deter_level[p]
        deter_level[p] = level + (negative[b] & (level < top))
        if not rules[r + np.uint64(EFFECTS)]:
            continue
        check = -1
        for w in range(worlds):
            for li in range(direct_slot.shape[0]):
                days = direct_days[k, b, li]
                if days == 0:
                    continue
                d = direct_slot[li]
                end = FOREVER if days == UNTIMED else min(t + days - 1, FOREVER - 1)
                direct_end[p, w, d] = max(direct_end[p, w, d], end)
                if days != UNTIMED:
                    check = max(check, end + 1)
            tc = tier_cap[pk, b]
            if tc != NO_TIER and expiry[pk, b] > 0:
                end = t + expiry[pk, b] - 1
                tiercap_end[p, w, tc] = max(tiercap_end[p, w, tc], end)
                check = max(check, end + 1)
        with_effect[n_effect] = order[lo + x]
        check_day[n_effect] = check
        n_effect += 1
    # Both worlds' points of a record as one 8-byte store (a random write either way).
    applied_pairs = applied.reshape(-1).view(np.int64)
    scored_pairs = scored.view(np.int64)
    for x in range(n):
        applied_pairs[order[lo + x]] = scored_pairs[x]
    return with_effect[:n_effect].copy(), check_day[:n_effect].copy(), may_move[:n_move].copy()


@njit(cache=True, nogil=True)
def expiries(
    t: int, batch: Batch, city: np.ndarray, city_pack: np.ndarray, expiry: np.ndarray, last_day: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In one pass over the day's records: the day each record's points are given back (-1:
    never), the points applied per world, and the records that give points back before
    `last_day` (in order)."""
    person, beh, applied = batch.person, batch.behaviour, batch.applied
    n = person.shape[0]
    expiry_day = np.empty(n, dtype=np.int32)
    totals = np.zeros(2, dtype=np.int64)
    due = np.empty(n, dtype=np.int64)
    n_due = 0
    one_city = city_pack.shape[0] == 1
    for r in range(n):
        pk = city_pack[0 if one_city else city[person[r]]]
        days = expiry[pk, beh[r]]
        day = t + days if days > 0 else -1
        expiry_day[r] = day
        totals[0] += applied[r, 0]
        totals[1] += applied[r, 1]
        if t < day < last_day and (applied[r, 0] != 0 or applied[r, 1] != 0):  # often none
            due[n_due] = r
            n_due += 1
    return expiry_day, totals, due[:n_due].copy()


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


@njit(cache=True, nogil=True)
def defer_points(
    score: np.ndarray,
    pending: np.ndarray,
    order: np.ndarray,
    person: np.ndarray,
    applied: np.ndarray,
    city: np.ndarray,
    deferred_city: np.ndarray,
) -> np.ndarray:
    """The points `applied` by records of persons in a `deferred_city` moved from their
    score to their pending points; returns the points moved in each world. One pass, where
    selecting the records first with NumPy took 2.7 ms a day for Suqian at 300 k adults; in
    the scoring `order` (person_order), where creation order read the persons' rows at
    random (the sums are the same in any order)."""
    moved = np.zeros(2, dtype=np.int64)
    for x in range(order.shape[0]):
        r = order[x]
        p = person[r]
        if deferred_city[city[p]]:
            for w in range(2):
                score[p, w] -= applied[r, w]
                pending[p, w] += applied[r, w]
                moved[w] += applied[r, w]
    return moved


@njit(cache=True, nogil=True)
def move_points(source: np.ndarray, target: np.ndarray, person: np.ndarray, points: np.ndarray):
    """source[person[r]] -= points[r] and target[person[r]] += points[r] for every row r (a
    person may repeat; np.subtract.at and np.add.at took 8 ms for 40 k rows, this 0.8).
    `source` may be None."""
    for r in range(person.shape[0]):
        p = person[r]
        for w in range(points.shape[1]):
            if source is not None:
                source[p, w] -= points[r, w]
            target[p, w] += points[r, w]
