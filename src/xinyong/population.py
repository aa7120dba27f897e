"""Layer 1, population: adults and children, cities, groups, traits, households, social graph.

Adults of a city are contiguous (city k holds adults city_start[k] .. city_start[k+1]-1), so
partners are simply (2j, 2j+1) counted from the city's start. Traits are kept only in trait
bucket order, the order in which behaviour sampling reads them. Everything is generated
vectorized from seeded streams; the graph is built in compiled code as CSR arrays.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from llvmlite import ir
from numba import get_num_threads, njit, prange, types
from numba.extending import intrinsic

from xinyong.scenario import Population as PopulationSpec
from xinyong.scenario import Scenario

N_BUCKETS = 48
NBR_BLOCK = 64
ROW_BLOCKS = 4096  # blocks of rows the graph build scatters into first


@dataclass
class TraitBuckets:
    """A trait with persons sorted by bucket: rows start[g]:start[g+1] are bucket g, ids
    ascending. Row j holds a person's id and, in the next two words, their trait (a float64,
    read with `trait_at`): sampling reads both for each candidate, and in one row they come
    in one cache line instead of two (docs/performance.md)."""

    rows: np.ndarray  # int32 [N, 3]
    start: np.ndarray  # int64 [G+1]
    upper: np.ndarray  # float64 [G] the largest trait value in each bucket

    @classmethod
    def of(cls, trait: np.ndarray, n_buckets: int = N_BUCKETS) -> TraitBuckets:
        lo, hi = float(trait.min()), float(trait.max())
        edges = np.array([lo, hi]) if hi <= lo else np.geomspace(lo, hi, n_buckets + 1)
        # Allocated by NumPy, which asks Linux for huge pages on large arrays (a compiled
        # kernel's allocations get none): sampling reads rows at random, and with 4 KiB pages
        # most of those reads also miss the TLB (positive sampling 23 -> 20-21 ms at 10 M).
        rows = np.empty((len(trait), 3), dtype=np.int32)
        trait = np.ascontiguousarray(trait, dtype=np.float64)
        return cls(rows, *_bucket_sort(trait, edges, rows))

    @property
    def order(self) -> np.ndarray:
        """Person ids in bucket order (a view)."""
        return self.rows[:, 0]

    def value(self, rank: np.ndarray | None = None) -> np.ndarray:
        """The trait at these positions in bucket order, or at all (a new array)."""
        if rank is None:
            return np.ascontiguousarray(self.rows[:, 1:]).view(np.float64).ravel()
        return _traits_at(self.rows, np.asarray(rank))

    def by_person(self) -> np.ndarray:
        """The trait indexed by person (a new array)."""
        return _traits_by_person(self.rows)

    def rank(self) -> np.ndarray:
        """Each person's position in bucket order."""
        out = np.empty(len(self.rows), dtype=np.int32)  # NumPy's: huge pages, read at random
        _rank(self.rows, out)
        return out


@intrinsic
def trait_at(typingctx, rows, j):
    """The trait in row j of TraitBuckets.rows: words 1-2 read as one float64 (a load aligned
    to 4 bytes, which x86-64 and AArch64 allow)."""
    if not (isinstance(rows, types.Array) and rows.layout == "C" and rows.ndim == 2):
        return None
    if rows.dtype != types.int32 or not isinstance(j, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(rows)(context, builder, args[0]).data
        row = context.cast(builder, args[1], j, types.intp)  # 3 j overflows 32 bits past 715 M
        index = builder.add(builder.mul(row, row.type(3)), row.type(1))
        address = builder.bitcast(builder.gep(data, [index]), ir.DoubleType().as_pointer())
        return builder.load(address, align=4)

    return types.float64(rows, j), codegen


@dataclass
class Population:
    """Structure of arrays, one row per person; index = person id."""

    city_start: np.ndarray  # int64 [K+1]: adults of city k are city_start[k]..city_start[k+1]-1
    city: np.ndarray  # uint8 [N] adult's city
    group: np.ndarray  # uint8 [N] 0 majority, 1 minority
    risk_buckets: TraitBuckets
    civic_buckets: TraitBuckets
    risk_rank: np.ndarray  # int32 [N] position in risk bucket order (for distressed adults)
    # The graph, CSR without a full offsets array: adult i's neighbours start at
    # nbr_block[i // NBR_BLOCK] plus the degrees of the adults before i in its block.
    nbr_degree: np.ndarray  # uint8 (uint16 past 255) [N]
    nbr_block: np.ndarray  # int64 [ceil(N / NBR_BLOCK) + 1]
    nbr: np.ndarray  # int32 [E2] neighbours, sorted per adult (each edge appears twice)
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

    @property
    def risk(self) -> np.ndarray:
        return self.risk_buckets.by_person()

    @property
    def civic(self) -> np.ndarray:
        return self.civic_buckets.by_person()

    def partner(self, i: np.ndarray) -> np.ndarray:
        """Partner of each adult, -1 for the unpaired last adult of an odd-sized city."""
        return partner_of(np.asarray(i, dtype=np.int64), self.city_start, self.city)

    def degree(self) -> np.ndarray:
        return self.nbr_degree.astype(np.int64)

    @property
    def nbr_start(self) -> np.ndarray:
        """Full CSR offsets [N+1] (a new int64 array)."""
        return np.concatenate([[0], np.cumsum(self.nbr_degree, dtype=np.int64)])


@njit(cache=True, nogil=True)
def _rank(rows: np.ndarray, out: np.ndarray) -> None:
    for j in range(rows.shape[0]):
        out[rows[j, 0]] = j


@njit(cache=True, nogil=True)
def _traits_at(rows: np.ndarray, rank: np.ndarray) -> np.ndarray:
    out = np.empty(rank.shape[0], dtype=np.float64)
    for x in range(rank.shape[0]):
        out[x] = trait_at(rows, rank[x])
    return out


@njit(cache=True, nogil=True)
def _traits_by_person(rows: np.ndarray) -> np.ndarray:
    out = np.empty(rows.shape[0], dtype=np.float64)
    for j in range(rows.shape[0]):
        out[rows[j, 0]] = trait_at(rows, j)
    return out


@njit(cache=True, nogil=True)
def _bucket_sort(trait: np.ndarray, edges: np.ndarray, rows: np.ndarray):
    """Counting sort of persons into buckets [edges[g], edges[g+1]) (the last one closed),
    ids ascending within a bucket: fills `rows` of TraitBuckets, returns (start, upper)."""
    n, g_count = trait.shape[0], edges.shape[0] - 1
    log_lo, log_step = np.log(edges[0]), np.log(edges[-1] / edges[0]) / g_count
    bucket = np.empty(n, dtype=np.int16)  # N_BUCKETS is far below 2**15
    start = np.zeros(g_count + 1, dtype=np.int64)
    upper = np.zeros(g_count)
    for i in range(n):
        x = trait[i]
        # A first guess from the log, then corrected against the edges themselves, so the
        # bucket is exactly the one a search of `edges` gives.
        g = int((np.log(x) - log_lo) / log_step) if log_step > 0 else 0
        g = min(max(g, 0), g_count - 1)
        while g > 0 and x < edges[g]:
            g -= 1
        while g < g_count - 1 and x >= edges[g + 1]:
            g += 1
        bucket[i] = g
        start[g + 1] += 1
        upper[g] = max(upper[g], x)
    for g in range(g_count):
        start[g + 1] += start[g]
    fill = start[:-1].copy()
    words = trait.view(np.int32)  # each float64 as two int32 words
    for i in range(n):
        j = fill[bucket[i]]
        rows[j, 0] = i
        rows[j, 1] = words[2 * i]
        rows[j, 2] = words[2 * i + 1]
        fill[bucket[i]] += 1
    return start, upper


@njit(cache=True, nogil=True)
def partner_of(i: np.ndarray, city_start: np.ndarray, city: np.ndarray) -> np.ndarray:
    out = np.empty(i.shape[0], dtype=np.int64)
    for x in range(i.shape[0]):
        k = city[i[x]]
        mate = city_start[k] + ((i[x] - city_start[k]) ^ 1)
        out[x] = mate if mate < city_start[k + 1] else -1
    return out


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

    def traits() -> tuple[TraitBuckets, TraitBuckets]:
        risk = truncated_lognormal(s_traits, n, pop.risk_sigma, pop.trait_min, pop.trait_max)
        risk_buckets = TraitBuckets.of(risk)
        del risk
        civic = truncated_lognormal(s_traits, n, pop.civic_sigma, pop.trait_min, pop.trait_max)
        return risk_buckets, TraitBuckets.of(civic)

    # Traits have a stream of their own: drawn on a second thread while the graph is built.
    with ThreadPoolExecutor(max_workers=1) as pool:
        drawn = pool.submit(traits)
        parent1, child_city, child_group, parent2 = _children(s_child, pop, city, city_start)
        targets = _propose_edges(
            s_graph, city, city_start, pop.edges_per_adult, pop.cross_city_share
        )
        degree, nbr = build_csr(n, pop.edges_per_adult, targets, get_num_threads())
        del targets
        risk, civic = drawn.result()
    degree = degree.astype(np.uint8 if degree.max(initial=0) < 256 else np.uint16)
    return Population(
        city_start,
        city,
        group,
        risk,
        civic,
        risk.rank(),
        degree,
        block_offsets(degree),
        nbr,
        child_city,
        child_group,
        parent1,
        parent2,
    )


def _children(
    rng: np.random.Generator, pop: PopulationSpec, city: np.ndarray, city_start: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Children: first parent (uniform over adults: city by size), city, group, second
    parent (the first's partner, or -1)."""
    n = len(city)
    m = round(pop.child_ratio * n)  # Python's round: half to even, as the spec reads
    parent1 = rng.integers(0, n, m).astype(np.int32)
    child_city = city[parent1]
    child_group = (rng.random(m) < pop.minority_share).astype(np.uint8)
    mate = partner_of(parent1.astype(np.int64), city_start, city)
    two = rng.random(m) < pop.two_parent_share
    parent2 = np.where(two & (mate >= 0), mate, -1).astype(np.int32)
    return parent1, child_city, child_group, parent2


def _propose_edges(
    rng: np.random.Generator,
    city: np.ndarray,
    city_start: np.ndarray,
    per_adult: int,
    cross: float,
    chunk: int = 1 << 20,
) -> np.ndarray:
    """Targets [n, per_adult]: uniform over the proposer's city, or over all with prob `cross`.

    Uniform doubles come from the stream in chunks, into one buffer (the same numbers as one
    call), and compiled loops place them: no temporaries of the population's size, and no
    fresh memory each chunk (new pages cost more than the arithmetic)."""
    n = len(city)
    targets = np.empty((n, per_adult), dtype=np.int32)
    if per_adult == 0:
        return targets
    u = np.empty((min(chunk, n), per_adult))
    for a in range(0, n, chunk):
        m = min(chunk, n - a)
        rng.random(out=u[:m])
        _in_own_city(targets, a, u[:m], city, city_start)
    if cross > 0:
        anywhere = rng.integers(0, n, (n, per_adult), dtype=np.int32)
        for a in range(0, n, chunk):
            m = min(chunk, n - a)
            rng.random(out=u[:m])
            _anywhere_if(targets, a, u[:m], cross, anywhere)
    return targets


@njit(cache=True, nogil=True)
def _in_own_city(targets, first, u, city, city_start) -> None:
    for r in range(u.shape[0]):
        c = city[first + r]
        lo, size = city_start[c], city_start[c + 1] - city_start[c]
        for k in range(u.shape[1]):
            targets[first + r, k] = lo + np.int64(np.floor(u[r, k] * size))


@njit(cache=True, nogil=True)
def _anywhere_if(targets, first, u, cross, anywhere) -> None:
    for r in range(u.shape[0]):
        for k in range(u.shape[1]):
            if u[r, k] < cross:
                targets[first + r, k] = anywhere[first + r, k]


@njit(cache=True, nogil=True, parallel=True)
def build_csr(
    n: int, per_adult: int, targets: np.ndarray, parts: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Undirected union of proposals, without self-loops or duplicates, neighbours sorted.
    Returns (degree int64 [n], neighbours int32). `parts`: proposers' parts for the threads
    (the result does not depend on it)."""
    # The proposals made to each adult are gathered in two steps so that each stays in
    # cache: first into blocks of rows (a few thousand write streams), then block by block
    # into the rows, in proposer order, so each row's incoming part comes out sorted. Each
    # step runs on the threads at once: proposers in parts, each part writing after the
    # parts before it in every block; then blocks of rows, which no two threads share.
    shift = 0
    while (n - 1) >> shift >= ROW_BLOCKS:
        shift += 1
    blocks = ((n - 1) >> shift) + 1 if n > 0 else 0
    counts = np.zeros((parts, blocks), dtype=np.int64)
    for q in prange(parts):
        for i in range(q * n // parts, (q + 1) * n // parts):
            for k in range(per_adult):
                j = targets[i, k]
                if j != i:
                    counts[q, j >> shift] += 1
    block_start = np.zeros(blocks + 1, dtype=np.int64)
    fill = np.empty((parts, blocks), dtype=np.int64)
    for b in range(blocks):
        at = block_start[b]
        for q in range(parts):
            fill[q, b] = at
            at += counts[q, b]
        block_start[b + 1] = at
    incoming = np.empty((block_start[blocks], 2), dtype=np.int32)  # (to, from)
    for q in prange(parts):
        for i in range(q * n // parts, (q + 1) * n // parts):
            for k in range(per_adult):
                j = targets[i, k]
                if j != i:
                    b = j >> shift
                    incoming[fill[q, b], 0] = j
                    incoming[fill[q, b], 1] = i
                    fill[q, b] += 1
    # Row sizes (own proposals, then incoming ones), row starts, and the rows filled.
    start = np.zeros(n + 1, dtype=np.int64)
    for i in prange(n):
        for k in range(per_adult):
            if targets[i, k] != i:
                start[i + 1] += 1
    for b in prange(blocks):
        for e in range(block_start[b], block_start[b + 1]):
            start[incoming[e, 0] + 1] += 1
    for i in range(n):
        start[i + 1] += start[i]
    pos = start[:-1].copy()
    raw = np.empty(start[n], dtype=np.int32)
    for i in prange(n):
        for k in range(per_adult):
            j = targets[i, k]
            if j != i:
                raw[pos[i]] = j
                pos[i] += 1
    for b in prange(blocks):
        for e in range(block_start[b], block_start[b + 1]):
            j = incoming[e, 0]
            raw[pos[j]] = incoming[e, 1]
            pos[j] += 1
    incoming = np.empty((0, 2), dtype=np.int32)  # freed before the rows are sorted
    # Sort each row in place (insertion sort: rows are short) and drop its duplicates, rows
    # in parallel; then move the rows together, in place.
    degree = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        lo, hi = start[i], start[i + 1]
        for a in range(lo + 1, hi):
            v = raw[a]
            b = a - 1
            while b >= lo and raw[b] > v:
                raw[b + 1] = raw[b]
                b -= 1
            raw[b + 1] = v
        w = lo
        for a in range(lo, hi):
            if a == lo or raw[a] != raw[w - 1]:
                raw[w] = raw[a]
                w += 1
        degree[i] = w - lo
    # Row i moves left from start[i] to the sum of the degrees before it, in increasing i, so
    # no row is overwritten before it moves: no second array of the graph's size (3.2 GB at
    # 100 M adults), and one sequential pass instead of a parallel copy into fresh pages.
    w = 0
    for i in range(n):
        for a in range(start[i], start[i] + degree[i]):
            raw[w] = raw[a]
            w += 1
    return degree, raw[:w]


@njit(cache=True, nogil=True)
def block_offsets(degree: np.ndarray) -> np.ndarray:
    """Offset of the first neighbour of adults 0, NBR_BLOCK, 2 NBR_BLOCK, ..., and the total
    (one pass: no running sum of every adult, 800 MB at 100 M adults)."""
    n = degree.shape[0]
    blocks = -(-n // NBR_BLOCK)
    out = np.empty(blocks + 1, dtype=np.int64)
    total = 0
    for i in range(n):
        if i % NBR_BLOCK == 0:
            out[i // NBR_BLOCK] = total
        total += degree[i]
    out[blocks] = total
    return out


@njit(cache=True, nogil=True)
def neighbours_start(i: int, nbr_block: np.ndarray, nbr_degree: np.ndarray) -> int:
    """Offset of adult i's first neighbour in `nbr`."""
    first = i - i % NBR_BLOCK
    off = nbr_block[i // NBR_BLOCK]
    for j in range(first, i):
        off += nbr_degree[j]
    return off
