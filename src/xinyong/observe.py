"""Layer 3, observation: true events become records (docs/model.md, "Observation").

A channel detects an event with probability `detect`; a detected event is recorded against its
actor with probability 1 - `misattribute`, otherwise against a victim drawn from the other
adults of the actor's city in proportion to the victim's group weight. Informants add false
reports. Each record keeps its truth: correct, misattributed (with the true actor) or
false_report. Observation also tallies the events it sees and the records it makes, per
behaviour and group, for the day's books.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numba import njit

from xinyong import randomness
from xinyong.buffers import headroom, with_capacity
from xinyong.prefetch import AHEAD, prefetch_read
from xinyong.scenario import Scenario

# A record's truth: what observation knows and the scheme never sees.
TRUTH_NAMES = ("correct", "misattributed", "false_report")
CORRECT, MISATTRIBUTED, FALSE_REPORT = 0, 1, 2
BLOCK = 64  # adults per block of the group index
# Rows of the day's tallies per (behaviour, group): column 2 b + g, g = 1 for minority.
TRUE_EVENTS, RECORDS, MISATTRIBUTED_RECORDS, FALSE_REPORTS = range(4)
TALLIES = 4


class VictimPool(NamedTuple):
    """The members of an entity kind a record can be put on, by city and group, and a way to
    find the r-th member of a group (in id order) without a list of members.

    Members of city k and group g have ranks start[k, g] .. start[k, g] + size[k, g] - 1 among
    all members of group g; `before[b, g - 1]` counts the members of group g >= 1 below id
    BLOCK * b (group 0's follow). An eighth of a byte per member and group beyond the first,
    instead of a 4-byte member list.
    """

    city: np.ndarray  # [N] each member's city
    group: np.ndarray  # uint8 [N] 0 .. G - 1 (adults: majority, minority)
    before: np.ndarray  # int64 [ceil(N / BLOCK) + 1, G - 1]
    start: np.ndarray  # int64 [K, G]
    size: np.ndarray  # int64 [K, G]
    # With two groups, bit i % 64 of word i // 64 is member i's group: read at random,
    # 1.25 MB for 10 M adults stays in cache where the byte per adult does not (`group_of`).
    # Empty with more groups: the kernels read `group`.
    minority_bits: np.ndarray  # uint64 [ceil(N / BLOCK)]

    @classmethod
    def of(cls, city: np.ndarray, group: np.ndarray, n_cities: int, groups: int = 2) -> VictimPool:
        n = len(group)
        padded = np.zeros(-(-n // BLOCK) * BLOCK, dtype=np.uint8)
        padded[:n] = group
        blocks = padded.reshape(-1, BLOCK)
        counts = np.stack([(blocks == g).sum(axis=1) for g in range(1, groups)], axis=1)
        before = np.concatenate([np.zeros((1, groups - 1), np.int64), np.cumsum(counts, 0)])
        minority_bits = (
            np.packbits(blocks, axis=1, bitorder="little").view("<u8").ravel()
            if groups == 2
            else np.empty(0)
        )
        key = city.astype(np.int64) * groups + group
        size = np.bincount(key, minlength=groups * n_cities).reshape(n_cities, groups)
        size = size.astype(np.int64)
        start = np.cumsum(size, axis=0) - size
        return cls(
            city, group, before.astype(np.int64), start, size, minority_bits.astype(np.uint64)
        )

    @property
    def groups(self) -> int:
        return self.start.shape[1]


class Channels(NamedTuple):
    """The kernels' view of an entity kind's channels."""

    of_behaviour: np.ndarray  # int64 [B] the channel observing each behaviour
    detect: np.ndarray  # float64 [C]
    misattribute: np.ndarray  # float64 [C]
    weight: np.ndarray  # float64 [C, G] victim weight per group


@dataclass
class ObservationTables:
    """Observation's parameters, compiled: channels and informants' false reports."""

    names: list[str]  # channels, in scenario order
    channels: Channels
    false_report_rate: float
    false_report_behaviours: np.ndarray  # int64 behaviour indices
    false_report_channel: int


def compile_observation(
    sc: Scenario, behaviours: list[str], groups: tuple[str, ...]
) -> ObservationTables:
    names = list(sc.channels)
    ch = [sc.channels[c] for c in names]
    obs = sc.observation
    bidx = {b: i for i, b in enumerate(behaviours)}
    return ObservationTables(
        names=names,
        channels=Channels(
            of_behaviour=np.array(
                [names.index(sc.behaviours[b].channel) for b in behaviours], dtype=np.int64
            ),
            detect=np.array([c.detect for c in ch], dtype=np.float64),
            misattribute=np.array([c.misattribute for c in ch], dtype=np.float64),
            weight=np.array([[c.weights.get(g, 1.0) for g in groups] for c in ch]),
        ),
        false_report_rate=obs.false_report_rate,
        false_report_behaviours=np.array(
            [bidx[b] for b in obs.false_report_behaviours], dtype=np.int64
        ),
        false_report_channel=names.index(obs.false_report_channel),
    )


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
    """Records in columns with free rows around them (`observe`'s `before` and `after`), so
    that the few records of a day that come before and after them are copied in, instead of
    the many copied out (the day's positive records: 17 MB a day at 10 M adults)."""

    columns: tuple[np.ndarray, ...]
    first: int
    n: int
    counts: np.ndarray  # the observed events' tallies (`observe`)

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


@njit(cache=True, nogil=True, inline="always")
def group_of(minority_bits: np.ndarray, i: int) -> int:
    # Unsigned: numba then skips the wrap-around of a negative index (tallies 4.0 -> 3.2 ms
    # per 2.6 M events and records).
    u = np.uint64(i)
    return (minority_bits[u >> np.uint64(6)] >> (u & np.uint64(63))) & np.uint64(1)


@njit(cache=True, nogil=True, inline="always")
def _below(before, g, b, n) -> int:
    """Members of group g below id BLOCK * b (VictimPool.before)."""
    if g > 0:
        return before[b, g - 1]
    others = 0
    for h in range(before.shape[1]):
        others += before[b, h]
    return min(b * BLOCK, n) - others


@njit(cache=True, nogil=True)
def nth_of_group(group, before, g, r) -> int:
    """The member of group g with r members of that group below it."""
    n = group.shape[0]
    lo, hi = 0, before.shape[0] - 1
    while lo < hi:  # the last block whose start has at most r members of group g below it
        mid = (lo + hi + 1) // 2
        if _below(before, g, mid, n) <= r:
            lo = mid
        else:
            hi = mid - 1
    seen = _below(before, g, lo, n)
    for i in range(lo * BLOCK, n):
        if group[i] == g:
            if seen == r:
                return i
            seen += 1
    return -1


@njit(cache=True, nogil=True)
def draw_victim(s, actor, weight, pool):
    """A victim among the members of `actor`'s city other than `actor`, by group weight (-1
    if none), and the random state after it."""
    k, actor_group = pool.city[actor], pool.group[actor]
    size, start = pool.size, pool.start
    G = size.shape[1]
    total = 0.0
    for g in range(G):
        total += weight[g] * (size[k, g] - (1 if actor_group == g else 0))
    if total <= 0.0:
        return -1, s
    u, s = randomness.uniform(s)
    # The group whose share of the weight holds u (the last one if rounding leaves none).
    g = G - 1
    acc = 0.0
    for h in range(G - 1):
        acc += weight[h] * (size[k, h] - (1 if actor_group == h else 0))
        if u * total < acc:
            g = h
            break
    while True:
        r, s = randomness.integers(s, size[k, g])
        v = nth_of_group(pool.group, pool.before, g, start[k, g] + r)
        if v != actor:
            return v, s


@njit(cache=True, nogil=True)
def observe(
    words: np.ndarray,
    actor: np.ndarray,
    beh: np.ndarray,
    residual: np.ndarray,
    channels: Channels,
    pool: VictimPool,
    before: int = 0,
    after: int = 0,
):
    """Records of detected events: (n, person, behaviour, channel, truth, true actor,
    counts), the columns with `before` unused rows ahead of the n records and room for
    `after` more; counts[TALLIES, G B] are the true events, records and misattributed records
    per (behaviour, group), column G b + g (row FALSE_REPORTS is left for false reports).

    Each event comes with a uniform of its own, its `residual` (world.sample_behaviour): the
    event is detected when it is below `detect`, and misattributed when it is below
    `detect * misattribute` (so with probability misattribute once detected). Only victims
    are drawn, from the stream in `words` (`randomness`)."""
    channel = channels.of_behaviour
    detect = channels.detect
    misattribute = channels.misattribute
    weight = channels.weight
    group, minority_bits = pool.group, pool.minority_bits
    G = np.uint64(pool.size.shape[1])
    two = G == 2  # two groups: counted in registers, groups read from the bit per member
    s = randomness.load(words)
    length = before + actor.shape[0] + after
    person = np.empty(length, dtype=np.int32)
    rbeh = np.empty(length, dtype=np.int16)
    rchan = np.empty(length, dtype=np.int16)
    truth = np.empty(length, dtype=np.uint8)
    ractor = np.empty(length, dtype=np.int32)
    counts = np.zeros((TALLIES, G * channel.shape[0]), dtype=np.int64)
    # Unsigned indices and count: numba then skips the wrap-around of negative indices
    # (9% of this kernel's time).
    n = np.uint64(before)
    m = actor.shape[0]
    # Events come in runs of one behaviour: each run's counts are kept in registers and
    # added once (counting into memory made each count wait on the store of the one before).
    run_beh = np.uint64(0)
    events = events_minority = records = records_minority = 0
    for e in range(m):
        a = actor[e]
        b = np.uint64(beh[e])
        if two:
            if e + AHEAD < m:
                prefetch_read(minority_bits, actor[e + AHEAD] >> 6)
            if b != run_beh:
                _add_run(counts, run_beh, events, events_minority, records, records_minority)
                run_beh = b
                events = events_minority = records = records_minority = 0
            g = np.int64(group_of(minority_bits, a))
            events += 1
            events_minority += g
        else:
            g = np.int64(group[a])
            counts[TRUE_EVENTS, G * b + np.uint64(g)] += 1
        c = np.uint64(channel[b])
        u = residual[e]
        if u >= detect[c]:
            continue
        p = a
        tr = CORRECT
        if u < detect[c] * misattribute[c]:
            v, s = draw_victim(s, a, weight[c], pool)
            if v >= 0:
                p = v
                tr = MISATTRIBUTED
                g = np.int64(group[v])
                counts[MISATTRIBUTED_RECORDS, G * b + np.uint64(g)] += 1
        if two:
            records += 1
            records_minority += g
        else:
            counts[RECORDS, G * b + np.uint64(g)] += 1
        person[n] = p
        rbeh[n] = b
        rchan[n] = c
        truth[n] = tr
        ractor[n] = a
        n += np.uint64(1)
    if two:
        _add_run(counts, run_beh, events, events_minority, records, records_minority)
    randomness.store(words, s)
    return n - np.uint64(before), person, rbeh, rchan, truth, ractor, counts


@njit(cache=True, nogil=True, inline="always")
def _add_run(counts, b, events, events_minority, records, records_minority) -> None:
    at = np.uint64(2) * b
    counts[TRUE_EVENTS, at] += events - events_minority
    counts[TRUE_EVENTS, at + np.uint64(1)] += events_minority
    counts[RECORDS, at] += records - records_minority
    counts[RECORDS, at + np.uint64(1)] += records_minority


@njit(cache=True, nogil=True)
def false_reports(
    words: np.ndarray,
    capacity: int,
    rate: float,
    behaviours: np.ndarray,
    chan: int,
    weight: np.ndarray,
    pool: VictimPool,
):
    """Informant reports: each member, w.p. `rate`, files a record against a victim.
    Returns (n, records...), n = -1 when `capacity` is too small. Draws from the stream in
    `words` (`randomness`), left there only when n >= 0."""
    s = randomness.load(words)
    n_adults = pool.city.shape[0]
    person = np.empty(capacity, dtype=np.int32)
    rbeh = np.empty(capacity, dtype=np.int16)
    n = 0
    if rate <= 0.0 or behaviours.shape[0] == 0:
        return 0, person[:0], rbeh[:0], np.empty(0, np.int16), np.empty(0, np.uint8), person[:0]
    i = -1
    while True:
        if rate >= 1.0:
            i += 1
        else:
            skip, s = randomness.geometric(s, rate)
            i += skip
        if i >= n_adults:
            break
        which, s = randomness.integers(s, behaviours.shape[0])
        b = behaviours[which]
        v, s = draw_victim(s, i, weight, pool)
        if v < 0:
            continue
        if n == capacity:
            return -1, person, rbeh, np.empty(0, np.int16), np.empty(0, np.uint8), person
        person[n] = v
        rbeh[n] = b
        n += 1
    randomness.store(words, s)
    rchan = np.full(n, chan, dtype=np.int16)
    truth = np.full(n, FALSE_REPORT, dtype=np.uint8)
    ractor = np.full(n, -1, dtype=np.int32)
    return n, person[:n].copy(), rbeh[:n].copy(), rchan, truth, ractor


class Observation:
    """Step 6 for one entity kind: true events become records; informants add false ones."""

    def __init__(self, tables: ObservationTables, pool: VictimPool) -> None:
        self.tables, self.pool = tables, pool

    def detect(
        self,
        rng: np.random.Generator,
        actor: np.ndarray,
        beh: np.ndarray,
        residual: np.ndarray,
        before: int = 0,
        after: int = 0,
    ) -> Placed:
        """Records of these events, with free rows before and after them (`observe`)."""
        observed = randomness.drawing(
            rng, observe, actor, beh, residual, self.tables.channels, self.pool, before, after
        )
        return Placed.of(observed, before)

    def day(
        self,
        rng: np.random.Generator,
        events: tuple[np.ndarray, np.ndarray, np.ndarray],
        positive: Placed,
    ) -> tuple[Records, np.ndarray]:
        """Records of `events`, then the positive events' records (observed ahead), then false
        reports; and the day's tallies of true events and records per behaviour and group
        (TALLIES)."""
        tb, pool = self.tables, self.pool
        seen = self.detect(rng, *events)
        c, rate = tb.false_report_channel, tb.false_report_rate
        false = with_capacity(
            rng,
            headroom(rate * len(pool.city)),
            false_reports,
            rate,
            tb.false_report_behaviours,
            c,
            tb.channels.weight[c],
            pool,
        )
        tallies = seen.counts + positive.counts
        if len(false[0]):  # most days of a small city have none
            column = pool.groups * false[1].astype(np.int64) + pool.group[false[0]]
            for row in (RECORDS, FALSE_REPORTS):
                np.add.at(tallies[row], column, 1)
        return positive.around(seen.view(), false), tallies
