"""Layer 1, population: adults and children, cities, groups, traits, households, social graph.

Adults of a city are contiguous (city k holds adults city_start[k] .. city_start[k+1]-1), so
partners are simply (2j, 2j+1) counted from the city's start. Everything is generated
vectorized from seeded streams; the graph is built in compiled code as CSR arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from xinyong.scenario import Scenario


@dataclass
class Population:
    """Structure of arrays, one row per person; index = person id."""

    city_start: np.ndarray  # int64 [K+1]: adults of city k are city_start[k]..city_start[k+1]-1
    city: np.ndarray  # uint8 [N] adult's city
    group: np.ndarray  # uint8 [N] 0 majority, 1 minority
    risk: np.ndarray  # float64 [N]
    civic: np.ndarray  # float64 [N]
    nbr_start: np.ndarray  # int32 (int64 past 2^31 entries) [N+1] CSR offsets of the graph
    nbr: np.ndarray  # int32 [E2] neighbours (each undirected edge appears twice)
    child_city: np.ndarray  # uint8 [M]
    child_group: np.ndarray  # uint8 [M]
    parent1: np.ndarray  # int32 [M]
    parent2: np.ndarray  # int32 [M], -1 when the child has one parent

    @property
    def adults(self) -> int:
        return len(self.city)

    @property
    def children(self) -> int:
        return len(self.child_city)

    def partner(self, i: np.ndarray) -> np.ndarray:
        """Partner of each adult, -1 for the unpaired last adult of an odd-sized city."""
        return partner_of(np.asarray(i, dtype=np.int64), self.city_start, self.city)

    def degree(self) -> np.ndarray:
        return np.diff(self.nbr_start)


def partner_of(i: np.ndarray, city_start: np.ndarray, city: np.ndarray) -> np.ndarray:
    start = city_start[city[i]]
    end = city_start[city[i].astype(np.int64) + 1]
    mate = start + ((i - start) ^ 1)
    return np.where(mate < end, mate, -1)


def city_sizes(adults: int, shares: list[float]) -> np.ndarray:
    """Largest-remainder apportionment of adults to cities (sizes add up exactly)."""
    raw = np.asarray(shares, dtype=np.float64) * adults
    sizes = np.floor(raw).astype(np.int64)
    remainder = adults - int(sizes.sum())
    if remainder:
        order = np.argsort(-(raw - sizes), kind="stable")
        sizes[order[:remainder]] += 1
    return sizes


def truncated_lognormal(
    rng: np.random.Generator, n: int, sigma: float, lo: float, hi: float
) -> np.ndarray:
    """Lognormal with mean 1 (log-mean -sigma^2/2), redrawn until inside [lo, hi]."""
    mu = -(sigma**2) / 2
    out = rng.lognormal(mu, sigma, n)
    bad = np.flatnonzero((out < lo) | (out > hi))
    while bad.size:
        out[bad] = rng.lognormal(mu, sigma, bad.size)
        bad = bad[(out[bad] < lo) | (out[bad] > hi)]
    return out


def generate(scenario: Scenario, seed_seq: np.random.SeedSequence) -> Population:
    pop = scenario.population
    n = pop.adults
    s_group, s_traits, s_child, s_graph = (np.random.default_rng(s) for s in seed_seq.spawn(4))
    sizes = city_sizes(n, [c.share for c in scenario.cities])
    city_start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    city = np.repeat(np.arange(len(sizes), dtype=np.uint8), sizes)
    group = (s_group.random(n) < pop.minority_share).astype(np.uint8)
    risk = truncated_lognormal(s_traits, n, pop.risk_sigma, pop.trait_min, pop.trait_max)
    civic = truncated_lognormal(s_traits, n, pop.civic_sigma, pop.trait_min, pop.trait_max)

    m = round(pop.child_ratio * n)  # Python's round: half to even, as the spec reads
    parent1 = s_child.integers(0, n, m).astype(np.int32)  # uniform over adults: city by size
    child_city = city[parent1]
    child_group = (s_child.random(m) < pop.minority_share).astype(np.uint8)
    mate = partner_of(parent1.astype(np.int64), city_start, city)
    two = s_child.random(m) < pop.two_parent_share
    parent2 = np.where(two & (mate >= 0), mate, -1).astype(np.int32)

    targets = _propose_edges(s_graph, city, city_start, pop.edges_per_adult, pop.cross_city_share)
    nbr_start, nbr = build_csr(n, pop.edges_per_adult, targets)
    if nbr_start[-1] < np.iinfo(np.int32).max:
        nbr_start = nbr_start.astype(np.int32)
    return Population(
        city_start,
        city,
        group,
        risk,
        civic,
        nbr_start,
        nbr,
        child_city,
        child_group,
        parent1,
        parent2,
    )


def _propose_edges(
    rng: np.random.Generator, city: np.ndarray, city_start: np.ndarray, per_adult: int, cross: float
) -> np.ndarray:
    """Targets [n, per_adult]: uniform over the proposer's city, or over all with prob `cross`."""
    n = len(city)
    if per_adult == 0:
        return np.empty((n, 0), dtype=np.int32)
    u = rng.random((n, per_adult))
    lo = city_start[city][:, None]
    size = (city_start[city.astype(np.int64) + 1] - city_start[city])[:, None]
    local = lo + np.floor(u * size).astype(np.int64)
    if cross > 0:
        anywhere = rng.integers(0, n, (n, per_adult))
        local = np.where(rng.random((n, per_adult)) < cross, anywhere, local)
    return local.astype(np.int32)


@njit(cache=True)
def build_csr(n: int, per_adult: int, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Undirected union of proposals, without self-loops or duplicates, neighbours sorted."""
    deg = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        for k in range(per_adult):
            j = targets[i, k]
            if j != i:
                deg[i + 1] += 1
                deg[j + 1] += 1
    start = np.cumsum(deg)
    fill = start[:-1].copy()
    raw = np.empty(start[-1], dtype=np.int32)
    for i in range(n):
        for k in range(per_adult):
            j = targets[i, k]
            if j != i:
                raw[fill[i]] = j
                fill[i] += 1
                raw[fill[j]] = i
                fill[j] += 1
    # Sort each row in place (insertion sort: rows are short) and drop duplicates,
    # compacting as we go; no allocation per row.
    out_start = np.zeros(n + 1, dtype=np.int64)
    w = 0  # offsets are narrowed to int32 by the caller when they fit
    for i in range(n):
        lo, hi = start[i], start[i + 1]
        for a in range(lo + 1, hi):
            v = raw[a]
            b = a - 1
            while b >= lo and raw[b] > v:
                raw[b + 1] = raw[b]
                b -= 1
            raw[b + 1] = v
        last = -1
        for a in range(lo, hi):
            v = raw[a]
            if v != last:
                raw[w] = v
                w += 1
                last = v
        out_start[i + 1] = w
    return out_start, raw[:w].copy()
