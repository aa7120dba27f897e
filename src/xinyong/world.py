"""Layer 2, world: each adult's true behaviour events for the day (docs/model.md, "World").

Negative behaviour b of member i happens with probability min(1, base_b * risk_i * deter_i *
effect_i,b); positive behaviour with min(1, base_b * civic_i). effect_i,b is the product of
the multipliers of the behaviour effects that i's sanctions carry onto b's context (R1: a loan
ban doubles finance behaviours, the distress spiral). Sampling is by thinning: members are
grouped into trait buckets (population.TraitBuckets); within a bucket, candidates come by
geometric skips at the bucket's upper bound and are kept with probability p_i / bound. The
cost grows with events, not with members x behaviours. Members under an effect draw the
behaviours effects act on directly instead, so the bound stays tight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit

from xinyong import randomness
from xinyong.buffers import headroom, with_capacity
from xinyong.population import (
    NBR_BLOCK,
    TraitBuckets,
    neighbours_start,
    offsets_in_block,
    trait_at,
)
from xinyong.prefetch import prefetch_read
from xinyong.scenario import Scenario

NEGATIVE, POSITIVE = 1, 0  # values of `negative`: which behaviours a sampling call draws


class Catalogue(NamedTuple):
    """The kernels' view of an entity kind's behaviours and the effects sanctions have on them."""

    base: np.ndarray  # float64 [B] daily probability before traits
    negative: np.ndarray  # uint8 [B]
    effect_on: np.ndarray  # uint8 [E, B]: effect e acts on behaviour b
    multiplier: np.ndarray  # float64 [E]


class Traits(NamedTuple):
    """An entity kind's fixed traits in trait bucket order (population.TraitBuckets)."""

    risk_rows: np.ndarray
    risk_start: np.ndarray
    risk_upper: np.ndarray
    civic_rows: np.ndarray
    civic_start: np.ndarray
    civic_upper: np.ndarray
    risk_rank: np.ndarray  # each member's row in risk bucket order

    @classmethod
    def of(cls, risk: TraitBuckets, civic: TraitBuckets, risk_rank: np.ndarray) -> Traits:
        return cls(risk.rows, risk.start, risk.upper, civic.rows, civic.start, civic.upper,
                   risk_rank)  # fmt: skip


class Deterrence(NamedTuple):
    """Each member's deterrence is table[level[i]] (scheme.state.SchemeState)."""

    level: np.ndarray
    table: np.ndarray


@dataclass
class WorldTables:
    """The world's parameters, compiled: the behaviour catalogue in scenario order."""

    behaviours: list[str]
    contexts: list[str]  # each behaviour's context
    base: np.ndarray  # float64 [B]
    negative: np.ndarray  # uint8 [B]

    def catalogue(self, effect_contexts: list[str], multipliers: list[float]) -> Catalogue:
        """The kernels' view, with the behaviour effects (one per context and multiplier)."""
        on = np.array([[c == ctx for c in self.contexts] for ctx in effect_contexts], np.uint8)
        return Catalogue(
            self.base,
            self.negative,
            on.reshape(len(effect_contexts), len(self.behaviours)),
            np.array(multipliers, dtype=np.float64),
        )


def compile_world(sc: Scenario) -> WorldTables:
    beh = list(sc.behaviours.values())
    return WorldTables(
        behaviours=list(sc.behaviours),
        contexts=[b.context for b in beh],
        base=np.array([b.base for b in beh], dtype=np.float64),
        negative=np.array([b.sign == "negative" for b in beh], dtype=np.uint8),
    )


def expected_candidates(catalogue: Catalogue, traits: Traits, which: int) -> float:
    """Mean number of thinning candidates per day for the negative or the positive
    behaviours: a bound on the mean number of their events."""
    total = 0.0
    base, negative = catalogue.base, catalogue.negative
    for b in np.flatnonzero(negative == which):
        start, upper = (
            (traits.risk_start, traits.risk_upper)
            if negative[b]
            else (traits.civic_start, traits.civic_upper)
        )
        total += float((np.minimum(1.0, base[b] * upper) * np.diff(start)).sum())
    return total


BATCH = 256
# Share of the members under a behaviour effect from which their draws are thinned.
AFFECTED_THINNING_FROM = 0.01
DETER_AHEAD = 64  # candidates ahead whose deterrence is prefetched (16, 32: slower; 128: same)


@njit(cache=True, nogil=True, inline="always")
def geometric_skip(s, p: float, log_q: float):
    """rng.geometric(p), the same draws, given log_q = log1p(-p) (computed once, not per draw)."""
    if p >= 1.0:
        return np.int64(1), s
    return randomness.geometric_with_log(s, p, log_q)


@njit(cache=True, nogil=True)
def bucket_logs(catalogue: Catalogue, traits: Traits) -> np.ndarray:
    """log1p(-bound) of each behaviour's trait buckets, bound the largest probability in the
    bucket (at most 1): fixed for a run, so computed once rather than by every day's
    sampling, where a city of a few thousand adults paid more for them than for its draws
    (35 behaviours x 48 buckets a day). float64 [B, G]."""
    base, negative = catalogue.base, catalogue.negative
    groups = max(traits.risk_upper.shape[0], traits.civic_upper.shape[0])
    out = np.zeros((base.shape[0], groups), dtype=np.float64)
    for b in range(base.shape[0]):
        upper = traits.risk_upper if negative[b] == 1 else traits.civic_upper
        for g in range(upper.shape[0]):
            bound = min(1.0, base[b] * upper[g])
            if bound > 0.0:
                out[b, g] = np.log1p(-bound)
    return out


@njit(cache=True, nogil=True)
def sample_behaviour(
    words: np.ndarray,
    capacity: int,
    which: int,
    catalogue: Catalogue,
    traits: Traits,
    log_q_of: np.ndarray,
    deterrence: Deterrence,
    affected: np.ndarray,
    effects_of: np.ndarray,
    affected_rows: np.ndarray,
    affected_flags: np.ndarray,
    thin_affected: bool,
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """True events of one day of the negative (`which` = NEGATIVE) or the positive behaviours,
    as (n, actor, behaviour, residual), at most one per pair; n = -1 when `capacity` is too
    small. Draws from the stream in `words` (`randomness`), left there only when n >= 0.

    An event happens when its uniform u falls below its probability p; u / p is then uniform
    on [0, 1) and independent of everything drawn before: each event's `residual`, which
    observation uses as the event's own uniform instead of drawing one (see observe.observe).

    `affected` (ids ascending) are the members under a behaviour effect, `effects_of` the
    effects on each (bit e: effect e) as their sanctions stood at the start of the day;
    `affected_rows` their rows in the risk buckets, ascending (sorted by NumPy: 25 times
    faster than numba's sort), or, when there are many, `affected_flags` instead: a bit per
    row (flag_rows), read for the few candidates of the behaviours effects act on, where
    sorting S1's blacklist took 0.8 ms a day at 1 M adults; `thin_affected`: whether their
    draws are thinned (World.behaviour); `log_q_of`: bucket_logs.
    """
    base = catalogue.base
    negative = catalogue.negative
    effect_on = catalogue.effect_on
    multiplier = catalogue.multiplier
    risk_rows = traits.risk_rows
    risk_start = traits.risk_start
    risk_upper = traits.risk_upper
    civic_rows = traits.civic_rows
    civic_start = traits.civic_start
    civic_upper = traits.civic_upper
    risk_rank = traits.risk_rank
    deter_level = deterrence.level
    deter_table = deterrence.table
    # Behaviours some effect acts on: the affected members draw these directly.
    acted_on = np.zeros(base.shape[0], dtype=np.uint8)
    for e in range(effect_on.shape[0]):
        for b in range(base.shape[0]):
            acted_on[b] |= effect_on[e, b]
    s = randomness.load(words)
    actor = np.empty(capacity, dtype=np.int32)
    beh = np.empty(capacity, dtype=np.int16)
    residual = np.empty(capacity, dtype=np.float64)
    flagged_rows = affected_flags.shape[0] > 0
    cand = np.empty(BATCH, dtype=np.uint64)
    u = np.empty(BATCH, dtype=np.float64)
    n = 0
    # A behaviour's candidates come in increasing row order, so one pointer walks the
    # affected members' rows: reading a flag per candidate was a cache miss that each next
    # draw waited on (3 ms a day at 10 M adults).
    for b in range(base.shape[0]):
        if base[b] <= 0.0 or negative[b] != which:
            continue
        neg = negative[b] == 1
        skip_affected = neg and acted_on[b] == 1 and affected.shape[0] > 0
        d = 0  # the first affected row not before the last candidate
        rows = risk_rows if neg else civic_rows
        start = risk_start if neg else civic_start
        upper = risk_upper if neg else civic_upper
        row_words = rows.reshape(-1)  # row j's person id is word 3 j (unsigned: no wrap-around)
        for g in range(start.shape[0] - 1):
            lo = start[g]
            size = start[g + 1] - lo
            if size == 0:
                continue
            bound = min(1.0, base[b] * upper[g])
            if bound <= 0.0:
                continue
            log_q = log_q_of[b, g]
            pos = -1
            while pos < size:
                # Draw a batch of candidates first, then read their traits: the reads no
                # longer wait on the random numbers, so many cache misses overlap (3x faster
                # at 10 M adults). The random stream is consumed in the same order as one
                # candidate at a time.
                m = 0
                while m < BATCH:
                    skip, s = geometric_skip(s, bound, log_q)
                    pos += skip
                    if pos >= size:
                        break
                    if skip_affected and flagged_rows:
                        if is_flagged(affected_flags, lo + pos):
                            continue
                    elif skip_affected:
                        while d < affected_rows.shape[0] and affected_rows[d] < lo + pos:
                            d += 1
                        if d < affected_rows.shape[0] and affected_rows[d] == lo + pos:
                            continue
                    cand[m] = np.uint64(lo + pos)
                    # Both ends of the row, read in the loop below: a 12-byte row runs into
                    # the next cache line one time in eight, and that line, not asked for,
                    # stalled the read (positive sampling 38 -> 26 ms a day at 10 M adults).
                    prefetch_read(rows, 3 * (lo + pos))
                    prefetch_read(rows, 3 * (lo + pos) + 2)
                    u[m], s = randomness.uniform(s)
                    m += 1
                if neg:  # the first candidates' deterrence (the loop asks for the others)
                    for x in range(min(DETER_AHEAD, m)):
                        prefetch_read(deter_level, row_words[np.uint64(3) * cand[x]])
                for x in range(m):
                    if neg and x + DETER_AHEAD < m:  # its row, prefetched above, has arrived
                        ahead = row_words[np.uint64(3) * cand[x + DETER_AHEAD]]
                        prefetch_read(deter_level, ahead)
                    j = cand[x]
                    i = row_words[np.uint64(3) * j]
                    p = base[b] * trait_at(rows, j)
                    if neg:
                        p *= deter_table[deter_level[np.uint64(i)]]
                    p = min(1.0, p)
                    below = u[x] * bound
                    if below < p:
                        if n == capacity:
                            return -1, actor, beh, residual
                        actor[n] = i
                        beh[n] = b
                        residual[n] = below / p
                        n += 1
    # Affected members: the behaviours effects act on, at their changed probability, either
    # one uniform each or thinned like the buckets, at one bound for all: the most risk,
    # deterrence and effect any of them can have.
    risk_top = risk_upper.max() if risk_upper.shape[0] else 0.0
    deter_top = deter_table.max() if deter_table.shape[0] else 0.0
    for b in range(base.shape[0]):
        if base[b] <= 0.0 or which != NEGATIVE or negative[b] == 0 or acted_on[b] == 0:
            continue
        bound = 1.0
        if thin_affected:
            top = base[b] * risk_top * deter_top
            for e in range(effect_on.shape[0]):
                if effect_on[e, b]:
                    top *= max(1.0, multiplier[e])
            bound = min(1.0, top)
            if bound <= 0.0:
                continue
        log_q = np.log1p(-bound) if bound < 1.0 else 0.0
        j = -1
        while True:
            if thin_affected:
                skip, s = geometric_skip(s, bound, log_q)
                j += skip
            else:
                j += 1
            if j >= affected.shape[0]:
                break
            i = affected[j]
            factor = 1.0
            for e in range(effect_on.shape[0]):
                if effects_of[j] >> e & 1 and effect_on[e, b]:
                    factor *= multiplier[e]
            risk = trait_at(risk_rows, risk_rank[i])
            p = min(1.0, base[b] * risk * deter_table[deter_level[i]] * factor)
            draw, s = randomness.uniform(s)
            draw *= bound  # uniform below the bound: kept with probability p / bound
            if draw < p:
                if n == capacity:
                    return -1, actor, beh, residual
                actor[n] = i
                beh[n] = b
                residual[n] = draw / p
                n += 1
    randomness.store(words, s)
    return n, actor[:n], beh[:n], residual[:n]


@njit(cache=True, nogil=True)
def sample_association(
    words: np.ndarray,
    rho: float,
    listed: np.ndarray,
    nbr_block: np.ndarray,
    nbr_degree: np.ndarray,
    nbr: np.ndarray,
    count: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Adults whose meeting today is with a blacklisted neighbour (docs/model.md, step 5).

    Adult j meets one uniform neighbour with probability rho, so it meets a listed one with
    probability rho * k_j / deg_j, k_j its listed neighbours. Only neighbours of listed persons
    can have k_j > 0, so candidates come from the listed persons' adjacency. `count` is a
    zeroed scratch array of the members' size and is left zeroed: rows past it are ghosts
    (adults of other cities, population.generate_city), which may be listed but whose meetings
    their own city draws. Draws from the stream in `words`.
    Returns the adults and each meeting's residual uniform (see sample_behaviour).
    """
    room = 0
    for x in range(listed.shape[0]):
        room += nbr_degree[listed[x]]
    cand = np.empty(room, dtype=np.int32)
    m = 0
    for x in range(listed.shape[0]):
        b = listed[x]
        first = neighbours_start(b, nbr_block, nbr_degree)
        for e in range(first, first + nbr_degree[b]):
            j = nbr[e]
            if j >= count.shape[0]:
                continue
            if count[j] == 0:
                cand[m] = j
                m += 1
            count[j] += 1
    out = np.empty(m, dtype=np.int32)
    residual = np.empty(m, dtype=np.float64)
    n = 0
    s = randomness.load(words)
    for x in range(m):
        j = cand[x]
        u, s = randomness.uniform(s)
        p = rho * count[j] / nbr_degree[j]
        if u < p:
            out[n] = j
            residual[n] = u / p
            n += 1
        count[j] = 0
    randomness.store(words, s)
    return out[:n], residual[:n]


# Neighbours of an adult whose listed bits sample_meetings keeps beside it (listed_slots):
# enough for every adult of the built-in scenarios' graphs (mean degree about 8, at most 23 at
# 1 M adults). An adult with more reads its neighbour's bit in the list's flags instead.
SLOTS = 32
# Cost of drawing one meeting (skip, neighbour, its flag) in units of one listed person's
# neighbour visited by sample_association; measured at 1 M adults (docs/performance.md). Kept
# as measured when the choice was made, although meetings got cheaper since: which sampler
# a day uses decides its draws, so a new value would change runs.
MEETING_COST = 0.6


@njit(cache=True, nogil=True, inline="always")
def is_flagged(flags: np.ndarray, row: int) -> bool:
    return (flags[row >> 3] >> (row & 7)) & 1 == 1


@njit(cache=True, nogil=True)
def sample_meetings(
    words: np.ndarray,
    capacity: int,
    rho: float,
    listed_flags: np.ndarray,
    listed_slots: np.ndarray,
    nbr_block: np.ndarray,
    nbr_degree: np.ndarray,
    nbr: np.ndarray,
    in_block: np.ndarray,
) -> tuple[int, np.ndarray, np.ndarray]:
    """Step 5 drawn as events: the adults 0..members-1 (members = len(listed_slots)) who
    meet today come by geometric skips at rate rho; each with neighbours picks one, k = u *
    deg with u uniform, and the meeting is with a listed person if that neighbour was listed
    at the day's start: bit k of `listed_slots` for adults with at most SLOTS neighbours, its
    bit in `listed_flags` (ghost rows included) for the others; both as `relist` keeps them.
    The same probabilities as sample_association, rho * k_j / deg_j, at a cost that grows
    with rho * members rather than with the listed persons' degrees, and reading only arrays
    in adult order (no neighbour's row). The residual of a meeting is u * deg's fractional
    part: uniform, and independent of the neighbour it picked. `in_block`:
    population.offsets_in_block of the degrees. Returns (n, adults, residuals), n = -1 if
    `capacity` was too small.
    """
    # One row past the capacity: every meeting is written, and kept by moving n.
    out = np.empty(capacity + 1, dtype=np.int32)
    residual = np.empty(capacity + 1, dtype=np.float64)
    members = listed_slots.shape[0]
    if rho <= 0.0 or members == 0:
        return 0, out[:0], residual[:0]
    log_q = np.log1p(-rho) if rho < 1.0 else 0.0
    s = randomness.load(words)
    n = 0
    j = -1
    while True:
        skip, s = geometric_skip(s, rho, log_q)
        j += skip
        if j >= members:
            break
        deg = np.int64(nbr_degree[j])
        if deg == 0:
            continue
        u, s = randomness.uniform(s)
        x = u * deg
        k = min(np.int64(x), deg - 1)
        if deg <= SLOTS:
            met = (np.int64(listed_slots[j]) >> k) & 1
        else:
            row = nbr[nbr_block[j // NBR_BLOCK] + np.int64(in_block[j]) + k]
            met = np.int64(is_flagged(listed_flags, row))
        # Kept without a branch: whether a meeting is with a listed person is a coin toss
        # for the processor (a mispredicted branch cost more than the write).
        out[n] = j
        residual[n] = x - k
        n += met
        if n > capacity:
            return -1, out, residual
    randomness.store(words, s)
    return n, out[:n], residual[:n]


_bits_set = np.array([bin(b).count("1") for b in range(256)], dtype=np.int64)
_bit_index = np.array([max(b.bit_length() - 1, 0) for b in range(256)], dtype=np.int64)


@njit(cache=True, nogil=True)
def relist(
    flags: np.ndarray,
    listed_slots: np.ndarray,
    now: np.ndarray,
    nbr_block: np.ndarray,
    nbr_degree: np.ndarray,
    nbr: np.ndarray,
    in_block: np.ndarray,
) -> None:
    """Bring sample_meetings' view of the list up to date with the rows of `now` (members
    and ghost rows): the bits of `flags` (row r: bit r % 8 of byte r // 8), and for each
    member j with at most SLOTS neighbours, bit k of listed_slots[j] for its k-th neighbour.
    Only the rows whose bit changes, and their neighbours' slots, are written (flipped)."""
    fresh = np.zeros_like(flags)
    for x in range(now.shape[0]):
        r = now[x]
        fresh[r >> 3] |= np.uint8(1 << (r & 7))
    m = 0
    for b in range(flags.shape[0]):
        flags[b] ^= fresh[b]  # the changed rows' bits, for now
        m += _bits_set[flags[b]]
    changed = np.empty(m, dtype=np.int64)
    m = 0
    for b in range(flags.shape[0]):
        d = np.int64(flags[b])
        while d:
            low = d & -d
            changed[m] = b * 8 + _bit_index[low]
            m += 1
            d ^= low
        flags[b] = fresh[b]
    # The changed rows' neighbours, then each member neighbour's own neighbours (to find the
    # changed row's slot among them): rows at random, so each pass prefetches what the next
    # one reads.
    for x in range(m):
        prefetch_read(in_block, changed[x])
        prefetch_read(nbr_degree, changed[x])
    first = np.empty(m, dtype=np.int64)
    pairs = 0
    for x in range(m):
        r = changed[x]
        first[x] = nbr_block[r // NBR_BLOCK] + np.int64(in_block[r])
        prefetch_read(nbr, first[x])
        pairs += nbr_degree[r]
    member = np.empty(pairs, dtype=np.int32)
    row = np.empty(pairs, dtype=np.int32)
    p = 0
    for x in range(m):
        r = changed[x]
        for e in range(first[x], first[x] + nbr_degree[r]):
            j = nbr[e]
            if j < listed_slots.shape[0]:
                member[p], row[p] = j, r
                prefetch_read(in_block, j)
                prefetch_read(nbr_degree, j)
                prefetch_read(listed_slots, j)
                p += 1
    start = np.empty(p, dtype=np.int64)
    for y in range(p):
        j = member[y]
        start[y] = nbr_block[j // NBR_BLOCK] + np.int64(in_block[j])
        prefetch_read(nbr, start[y])
    for y in range(p):
        j = member[y]
        deg = np.int64(nbr_degree[j])
        if deg > SLOTS:
            continue
        for k in range(deg):
            if nbr[start[y] + k] == row[y]:
                listed_slots[j] ^= np.uint32(1) << np.uint32(k)
                break


def affected_rows_or_flags(
    affected: np.ndarray, rank: np.ndarray, many: bool, flags: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """sample_behaviour's view of the affected members' rows in the risk buckets: few, as
    rows ascending (and no flags); many, as a bit per row, set in `flags` (a new array if
    None), and no rows."""
    if not many:
        return (np.sort(rank[affected]) if len(affected) else rank[:0]), np.empty(0, np.uint8)
    if flags is None:
        flags = np.zeros((len(rank) + 7) // 8, np.uint8)
    flag_rows(flags, affected, rank)
    return np.empty(0, np.int32), flags


@njit(cache=True, nogil=True)
def flag_rows(flags: np.ndarray, members: np.ndarray, rank: np.ndarray) -> None:
    """Make the bits of `flags` (row r: bit r % 8 of byte r // 8) set for the rows
    rank[members] and no others."""
    flags[:] = 0
    for x in range(members.shape[0]):
        r = rank[members[x]]
        flags[r >> 3] |= np.uint8(1 << (r & 7))


@njit(cache=True, nogil=True)
def reflag_rows(
    flags: np.ndarray, changed: np.ndarray, members: np.ndarray, rank: np.ndarray
) -> None:
    """Bring the bits of `flags` (flag_rows) up to date for `members` (ids ascending) from
    the members they were set for, where only the ids in `changed` (ascending) may have
    entered or left."""
    at = np.searchsorted(members, changed)
    for x in range(changed.shape[0]):
        p = changed[x]
        r = rank[p]
        bit = np.uint8(1 << (r & 7))
        if at[x] < members.shape[0] and members[at[x]] == p:
            flags[r >> 3] |= bit
        else:
            flags[r >> 3] &= ~bit


class World:
    """Steps 4 and 5 for one entity kind: true behaviour and meetings."""

    def __init__(
        self,
        catalogue: Catalogue,
        traits: Traits,
        deterrence: Deterrence,
        graph: tuple[np.ndarray, np.ndarray, np.ndarray],
        rho: float,
        scratch: np.ndarray,
    ) -> None:
        self.catalogue, self.traits, self.deterrence = catalogue, traits, deterrence
        self.log_q_of = bucket_logs(catalogue, traits)
        self.graph, self.rho = graph, rho  # (nbr_block, nbr_degree, nbr)
        self.scratch = scratch  # zeroed, of the members' size: counts listed neighbours
        nbr_degree = graph[1]
        members = scratch.shape[0]
        self.mean_degree = float(nbr_degree[:members].mean()) if members else 0.0
        # sample_meetings' view of the list, made the first day meetings are drawn: a bit
        # per row (members and ghost rows) and per member's neighbour slot, for the list
        # they were last brought up to date with (relist).
        self.listed_flags = np.empty(0, dtype=np.uint8)
        self.listed_slots = np.empty(0, dtype=np.uint32)
        self.in_block: np.ndarray | None = None  # offsets_in_block, once meetings are drawn
        # flag_rows' bits once many are affected, and the affected members they are set for.
        self.affected_flags: np.ndarray | None = None
        self.flagged: np.ndarray | None = None
        self.candidates = {
            which: expected_candidates(catalogue, traits, which) for which in (NEGATIVE, POSITIVE)
        }
        acted_on = catalogue.effect_on.any(axis=0)
        self.acted_on_base = float(catalogue.base[acted_on].sum())

    def behaviour(
        self,
        rng: np.random.Generator,
        which: int,
        affected: np.ndarray | None = None,
        effects_of: np.ndarray | None = None,
        since: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The day's events of the negative or the positive behaviours, with each event's
        residual uniform (sample_behaviour); `affected` members under behaviour effects, and
        `since` (consequences.StartOfDay.since) the ids among them that may have changed."""
        if affected is None or effects_of is None:
            affected, effects_of = np.empty(0, np.int32), np.empty(0, np.int64)
        expected = self.candidates[which] + len(affected) * self.acted_on_base
        # Many (S1's blacklist) are thinned, and their rows flagged; few (R1's defaulters)
        # draw one uniform each, which costs as little and keeps those runs as they were,
        # and their rows are sorted.
        rank = self.traits.risk_rank
        if len(affected) >= AFFECTED_THINNING_FROM * len(rank):
            rows, flags, thin = np.empty(0, np.int32), self.flags_of(affected, since), True
        else:
            (rows, flags), thin = affected_rows_or_flags(affected, rank, False), False
        return with_capacity(
            rng,
            headroom(expected),
            sample_behaviour,
            which,
            self.catalogue,
            self.traits,
            self.log_q_of,
            self.deterrence,
            affected,
            effects_of,
            rows,
            flags,
            thin,
        )

    def flags_of(
        self, affected: np.ndarray, since: tuple[np.ndarray, np.ndarray] | None
    ) -> np.ndarray:
        """The affected members' rows as bits (flag_rows), kept from the last call: brought up
        to date from the ids that may have changed when `since` starts from the members they
        were set for (S1 at 1 M adults: a few thousand a day, against 300 k set anew)."""
        rank = self.traits.risk_rank
        flags = self.affected_flags
        if flags is None:
            flags = self.affected_flags = np.zeros((len(rank) + 7) // 8, np.uint8)
        elif affected is self.flagged:  # the same members as the last call's
            return flags
        if since is not None and since[0] is self.flagged:
            reflag_rows(flags, since[1], affected, rank)
        else:
            flag_rows(flags, affected, rank)
        self.flagged = affected
        return flags

    def by_meetings(self, listed: int) -> bool:
        """Whether step 5 is drawn from the meetings with this many rows listed: the cost
        of the meetings against that of visiting the listed persons' neighbours."""
        return self.rho * self.scratch.shape[0] * MEETING_COST < listed * self.mean_degree

    def association(
        self, rng: np.random.Generator, listed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Step 5: who meets a listed neighbour today, and each meeting's residual uniform.
        `listed` (ascending: members, then ghost rows) were on the list at the day's start.

        Two samplers give the model's probabilities: from the listed persons' neighbours
        (sample_association) or from the day's meetings (sample_meetings). The cheaper one
        for the day is taken, decided from the list's size alone, so a run stays the same
        for the same seed: few listed (R1) visit their neighbours, many (S1) draw meetings."""
        if not len(listed):  # nobody to meet: no draws either way
            return np.empty(0, np.int32), np.empty(0, np.float64)
        if not self.by_meetings(len(listed)):
            return randomness.drawing(
                rng, sample_association, self.rho, listed, *self.graph, self.scratch
            )
        if self.in_block is None:
            nbr_degree = self.graph[1]
            self.in_block = offsets_in_block(nbr_degree)
            self.listed_flags = np.zeros((nbr_degree.shape[0] + 7) // 8, dtype=np.uint8)
            self.listed_slots = np.zeros(self.scratch.shape[0], dtype=np.uint32)
        relist(self.listed_flags, self.listed_slots, listed, *self.graph, self.in_block)
        return with_capacity(
            rng,
            headroom(self.rho * len(listed)),  # sum of k_j / deg_j is about len(listed)
            sample_meetings,
            self.rho,
            self.listed_flags,
            self.listed_slots,
            *self.graph,
            self.in_block,
        )
