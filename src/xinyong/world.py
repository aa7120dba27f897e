"""Layer 2, world: each adult's true behaviour events for the day (MODEL.md "World").

Negative behaviour b of adult i happens with probability min(1, base_b * risk_i * deter_i *
distress_i,b); positive behaviour with min(1, base_b * civic_i). Sampling is by thinning:
adults are grouped into trait buckets stored contiguously; within a bucket, candidates come
by geometric skips at the bucket's upper bound and are kept with probability p_i / bound. The
cost grows with events, not with adults x behaviours. Distressed adults (holding the distress
sanction) draw their distress-context behaviours directly instead, so the bound stays tight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

N_BUCKETS = 48


@dataclass
class TraitBuckets:
    """Persons sorted by trait bucket: order[start[g]:start[g+1]] is bucket g, ids ascending."""

    order: np.ndarray  # int32
    start: np.ndarray  # int64 [G+1]
    upper: np.ndarray  # float64 [G] the largest trait value in each bucket
    value: np.ndarray  # float64, trait[order]: read sequentially while thinning

    @classmethod
    def of(cls, trait: np.ndarray, n_buckets: int = N_BUCKETS) -> TraitBuckets:
        lo, hi = float(trait.min()), float(trait.max())
        edges = np.array([lo, hi]) if hi <= lo else np.geomspace(lo, hi, n_buckets + 1)
        bucket = np.clip(np.searchsorted(edges, trait, side="right") - 1, 0, len(edges) - 2)
        order = np.argsort(bucket, kind="stable").astype(np.int32)
        counts = np.bincount(bucket, minlength=len(edges) - 1)
        start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        upper = np.zeros(len(counts))
        np.maximum.at(upper, bucket, trait)
        return cls(order, start, upper, trait[order])


def expected_candidates(
    base: np.ndarray, risk: TraitBuckets, civic: TraitBuckets, negative: np.ndarray
) -> float:
    """Mean number of thinning candidates per day: a bound on the mean number of events."""
    total = 0.0
    for b in range(len(base)):
        tb = risk if negative[b] else civic
        sizes = np.diff(tb.start)
        total += float((np.minimum(1.0, base[b] * tb.upper) * sizes).sum())
    return total


@njit(cache=True)
def sample_behaviour(
    rng,
    capacity: int,
    base: np.ndarray,
    negative: np.ndarray,
    distress_context: np.ndarray,
    distress_factor: float,
    risk: np.ndarray,
    deter: np.ndarray,
    risk_order: np.ndarray,
    risk_start: np.ndarray,
    risk_upper: np.ndarray,
    risk_value: np.ndarray,
    civic_order: np.ndarray,
    civic_start: np.ndarray,
    civic_upper: np.ndarray,
    civic_value: np.ndarray,
    is_distressed: np.ndarray,
    distressed: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """True events of one day as (n, actor, behaviour), at most one per pair; n = -1 when
    `capacity` is too small."""
    actor = np.empty(capacity, dtype=np.int32)
    beh = np.empty(capacity, dtype=np.int16)
    n = 0
    for b in range(base.shape[0]):
        if base[b] <= 0.0:
            continue
        neg = negative[b] == 1
        skip_distressed = neg and distress_context[b] == 1 and distressed.shape[0] > 0
        order = risk_order if neg else civic_order
        start = risk_start if neg else civic_start
        upper = risk_upper if neg else civic_upper
        value = risk_value if neg else civic_value
        for g in range(start.shape[0] - 1):
            lo = start[g]
            size = start[g + 1] - lo
            if size == 0:
                continue
            bound = min(1.0, base[b] * upper[g])
            if bound <= 0.0:
                continue
            pos = -1
            while True:
                pos += 1 if bound >= 1.0 else rng.geometric(bound)
                if pos >= size:
                    break
                i = order[lo + pos]
                if skip_distressed and is_distressed[i]:
                    continue
                p = base[b] * value[lo + pos]
                if neg:
                    p *= deter[i]
                if rng.random() * bound < min(1.0, p):
                    if n == capacity:
                        return -1, actor, beh
                    actor[n] = i
                    beh[n] = b
                    n += 1
    # Distressed adults: their distress-context behaviours at the raised probability.
    for b in range(base.shape[0]):
        if base[b] <= 0.0 or negative[b] == 0 or distress_context[b] == 0:
            continue
        for j in range(distressed.shape[0]):
            i = distressed[j]
            p = min(1.0, base[b] * risk[i] * deter[i] * distress_factor)
            if rng.random() < p:
                if n == capacity:
                    return -1, actor, beh
                actor[n] = i
                beh[n] = b
                n += 1
    return n, actor[:n], beh[:n]


@njit(cache=True)
def sample_association(
    rng,
    rho: float,
    listed: np.ndarray,
    nbr_start: np.ndarray,
    nbr: np.ndarray,
    count: np.ndarray,
) -> np.ndarray:
    """Adults whose meeting today is with a blacklisted neighbour (MODEL.md step 5).

    Adult j meets one uniform neighbour with probability rho, so it meets a listed one with
    probability rho * k_j / deg_j, k_j its listed neighbours. Only neighbours of listed persons
    can have k_j > 0, so candidates come from the listed persons' adjacency. `count` is a
    zeroed scratch array of adults' size and is left zeroed.
    """
    room = 0
    for x in range(listed.shape[0]):
        room += nbr_start[listed[x] + 1] - nbr_start[listed[x]]
    cand = np.empty(room, dtype=np.int32)
    m = 0
    for x in range(listed.shape[0]):
        b = listed[x]
        for e in range(nbr_start[b], nbr_start[b + 1]):
            j = nbr[e]
            if count[j] == 0:
                cand[m] = j
                m += 1
            count[j] += 1
    out = np.empty(m, dtype=np.int32)
    n = 0
    for x in range(m):
        j = cand[x]
        deg = nbr_start[j + 1] - nbr_start[j]
        if rng.random() < rho * count[j] / deg:
            out[n] = j
            n += 1
        count[j] = 0
    return out[:n]
