"""Layer 3, observation: true events become records (MODEL.md "Observation").

A channel detects an event with probability `detect`; a detected event is recorded against its
actor with probability 1 - `misattribute`, otherwise against a victim drawn from the other
adults of the actor's city in proportion to the victim's group weight. Informants add false
reports. Each record keeps its truth: correct, misattributed (with the true actor) or
false_report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from xinyong.scheme.compile import CORRECT, FALSE_REPORT, MISATTRIBUTED


@dataclass
class GroupIndex:
    """Adults sorted by (city, group): members[start[k, g]:start[k, g] + size[k, g]]."""

    members: np.ndarray  # int32
    start: np.ndarray  # int64 [K, 2]
    size: np.ndarray  # int64 [K, 2]

    @classmethod
    def of(cls, city: np.ndarray, group: np.ndarray, n_cities: int) -> GroupIndex:
        key = city.astype(np.int64) * 2 + group
        members = np.argsort(key, kind="stable").astype(np.int32)
        size = np.bincount(key, minlength=2 * n_cities).reshape(n_cities, 2).astype(np.int64)
        start = (np.cumsum(size.ravel()) - size.ravel()).reshape(n_cities, 2)
        return cls(members, start, size)


@njit(cache=True)
def draw_victim(rng, actor, k, actor_group, weight, members, start, size) -> int:
    """A victim among city k's adults other than `actor`, by group weight; -1 if none."""
    n0 = size[k, 0] - (1 if actor_group == 0 else 0)
    n1 = size[k, 1] - (1 if actor_group == 1 else 0)
    total = weight[0] * n0 + weight[1] * n1
    if total <= 0.0:
        return -1
    g = 0 if rng.random() * total < weight[0] * n0 else 1
    while True:
        v = members[start[k, g] + rng.integers(0, size[k, g])]
        if v != actor:
            return v


@njit(cache=True)
def observe(
    rng,
    actor: np.ndarray,
    beh: np.ndarray,
    channel: np.ndarray,
    detect: np.ndarray,
    misattribute: np.ndarray,
    weight: np.ndarray,
    city: np.ndarray,
    group: np.ndarray,
    members: np.ndarray,
    start: np.ndarray,
    size: np.ndarray,
):
    """Records of detected events: (person, behaviour, channel, truth, true actor)."""
    n_ev = actor.shape[0]
    person = np.empty(n_ev, dtype=np.int32)
    rbeh = np.empty(n_ev, dtype=np.int16)
    rchan = np.empty(n_ev, dtype=np.int16)
    truth = np.empty(n_ev, dtype=np.uint8)
    ractor = np.empty(n_ev, dtype=np.int32)
    n = 0
    for e in range(n_ev):
        a = actor[e]
        b = beh[e]
        c = channel[b]
        if rng.random() >= detect[c]:
            continue
        p = a
        tr = CORRECT
        if misattribute[c] > 0.0 and rng.random() < misattribute[c]:
            v = draw_victim(rng, a, city[a], group[a], weight[c], members, start, size)
            if v >= 0:
                p = v
                tr = MISATTRIBUTED
        person[n] = p
        rbeh[n] = b
        rchan[n] = c
        truth[n] = tr
        ractor[n] = a
        n += 1
    # Copies, not views: the records table keeps these, and a view would pin the buffer.
    return person[:n].copy(), rbeh[:n].copy(), rchan[:n].copy(), truth[:n].copy(), ractor[:n].copy()


@njit(cache=True)
def false_reports(
    rng,
    capacity: int,
    rate: float,
    behaviours: np.ndarray,
    chan: int,
    weight: np.ndarray,
    city: np.ndarray,
    group: np.ndarray,
    members: np.ndarray,
    start: np.ndarray,
    size: np.ndarray,
):
    """Informant reports: each adult, w.p. `rate`, files a record against a victim.
    Returns (n, records...), n = -1 when `capacity` is too small."""
    n_adults = city.shape[0]
    person = np.empty(capacity, dtype=np.int32)
    rbeh = np.empty(capacity, dtype=np.int16)
    n = 0
    if rate <= 0.0 or behaviours.shape[0] == 0:
        return 0, person[:0], rbeh[:0], np.empty(0, np.int16), np.empty(0, np.uint8), person[:0]
    i = -1
    while True:
        i += 1 if rate >= 1.0 else rng.geometric(rate)
        if i >= n_adults:
            break
        b = behaviours[rng.integers(0, behaviours.shape[0])]
        v = draw_victim(rng, i, city[i], group[i], weight, members, start, size)
        if v < 0:
            continue
        if n == capacity:
            return -1, person, rbeh, np.empty(0, np.int16), np.empty(0, np.uint8), person
        person[n] = v
        rbeh[n] = b
        n += 1
    rchan = np.full(n, chan, dtype=np.int16)
    truth = np.full(n, FALSE_REPORT, dtype=np.uint8)
    ractor = np.full(n, -1, dtype=np.int32)
    return n, person[:n].copy(), rbeh[:n].copy(), rchan, truth, ractor
