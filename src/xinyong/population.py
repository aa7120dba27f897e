"""Layer 1, population: adults and children, cities, groups, traits, households, social graph.

Adults of a city are contiguous (city k holds adults city_start[k] .. city_start[k+1]-1), so
partners are simply (2j, 2j+1) counted from the city's start. Traits are kept only in trait
bucket order, the order in which behaviour sampling reads them. Everything is generated
vectorized from seeded streams; the graph is built in compiled code as CSR arrays.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from llvmlite import ir
from numba import get_num_threads, njit, prange, set_num_threads, types
from numba.extending import intrinsic

from xinyong.errors import XinyongError
from xinyong.scenario import Population as PopulationSpec
from xinyong.scenario import Scenario

N_BUCKETS = 48
NBR_BLOCK = 64
ROW_BLOCKS = 4096  # blocks of rows the graph build scatters into first
CSR_THREADS_FROM = 1_000_000  # adults from which the graph is built on all threads
# Spawn-key tags of a city's streams in a multi-city scenario: SeedSequence(seed,
# spawn_key=(tag, k)) depends on the seed and the city's index alone, so a city draws the same
# numbers whichever process or machine holds it (shard.py).
CITY_STREAMS = 0x63697479  # "city": the city's population and its layers' streams
CROSS_STREAMS = 0x65646765  # "edge": the city's proposals of cross-city edges
# SeedSequence(seed, spawn_key=(CHILD_STREAMS,)): the cities' numbers of children (the seed
# alone, so every process draws the same counts).
CHILD_STREAMS = 0x6B696473  # "kids"
MAX_CITIES = 1 << 16  # city codes are uint16 past 256 cities


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
    city: np.ndarray  # uint8 (uint16 past 256 cities) [N] adult's city
    group: np.ndarray  # uint8 [N] 0 majority, 1 minority
    risk_buckets: TraitBuckets
    civic_buckets: TraitBuckets
    risk_rank: np.ndarray  # int32 [N] position in risk bucket order (for distressed adults)
    # The graph, CSR without a full offsets array: adult i's neighbours start at
    # nbr_block[i // NBR_BLOCK] plus the degrees of the adults before i in its block.
    nbr_degree: np.ndarray  # uint8 (uint16 past 255) [N + H]
    nbr_block: np.ndarray  # int64 [ceil((N + H) / NBR_BLOCK) + 1]
    nbr: np.ndarray  # int32 [E2] neighbours, sorted per adult (each edge appears twice)
    child_city: np.ndarray  # like city [M]
    child_group: np.ndarray  # uint8 [M]
    parent1: np.ndarray  # int32 [M]
    parent2: np.ndarray  # int32 [M], -1 when the child has one parent
    # One city of a multi-city scenario (generate_city): rows N .. N + H - 1 of the graph are
    # ghosts, the adults of other cities with a neighbour here (their global ids, ascending);
    # `boundary` are the adults here with a ghost neighbour (ids ascending).
    ghosts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    boundary: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))

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


@dataclass
class CityCross:
    """One city's part of the cross proposals of a multi-city scenario (cross_edges).

    `slots` are the city's own proposal slots (adult * edges_per_adult + k, local adult ids)
    that are cross proposals, ascending, and `inside` each one's target when it is an adult
    of this city (local id), or -1 when it is an adult of another city; (`local`, `foreign`)
    are the city's ghost edges, its adult and the global id of the other city's adult, pairs
    distinct and sorted, whichever city proposed them."""

    slots: np.ndarray  # int64 [m]
    inside: np.ndarray  # int32 [m]
    local: np.ndarray  # int64 [g]
    foreign: np.ndarray  # int64 [g]

    @classmethod
    def none(cls) -> CityCross:
        empty = np.empty(0, np.int64)
        return cls(empty, np.empty(0, np.int32), empty, empty)


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


def city_code(n_cities: int) -> type:
    """The integer type of city codes: one byte up to 256 cities (more wrapped around before
    this was checked), two up to MAX_CITIES; more are refused."""
    if n_cities > MAX_CITIES:
        raise XinyongError(f"at most {MAX_CITIES:,} cities are supported, got {n_cities:,}")
    return np.uint8 if n_cities <= 256 else np.uint16


def city_seed(seed: int, k: int, n_cities: int) -> np.random.SeedSequence:
    """The root of city k's streams. A one-city scenario keeps the scenario's seed itself
    (the streams of every earlier version, so its results are unchanged)."""
    if n_cities == 1:
        return np.random.SeedSequence(seed)
    return np.random.SeedSequence(seed, spawn_key=(CITY_STREAMS, k))


def generate(scenario: Scenario, seed_seq: np.random.SeedSequence) -> Population:
    """The whole population from one set of streams (one-city scenarios; a multi-city run
    generates each city on its own, generate_city)."""
    sizes = city_sizes(scenario.population.adults, [c.share for c in scenario.cities])
    return _generate(scenario.population, sizes, seed_seq, scenario.population.cross_city_share)


def generate_city(
    spec: PopulationSpec,
    size: int,
    seed_seq: np.random.SeedSequence,
    cross: CityCross,
    children: int,
) -> Population:
    """One city of `size` adults and `children` children (child_counts) from its own streams
    (city_seed), coded as city 0. Its adults' proposals are drawn within the city for every
    slot, as a one-city population's; then the city's cross slots (cross_edges) replace
    theirs: a target in this city is an edge here, one in another city none here. The city's
    cross-city edges `cross.local`, `cross.foreign` come after, as ghost rows."""
    pop = _generate(
        spec, np.array([size], dtype=np.int64), seed_seq, 0.0, children, (cross.slots, cross.inside)
    )
    local, foreign = cross.local, cross.foreign
    if len(local) == 0:
        return pop
    ghosts, ghost = np.unique(foreign, return_inverse=True)
    # By adult, then ghost: a stable sort of one key, nearly free on cross_edges' order.
    order = np.argsort(local * len(ghosts) + ghost, kind="stable")
    local, ghost = local[order].astype(np.int64), ghost[order].astype(np.int64)
    degree, nbr = add_ghosts(pop.nbr_degree.astype(np.int64), pop.nbr, local, ghost, len(ghosts))
    degree = degree.astype(np.uint8 if degree.max(initial=0) < 256 else np.uint16)
    pop.nbr_degree, pop.nbr, pop.nbr_block = degree, nbr, block_offsets(degree)
    pop.ghosts, pop.boundary = ghosts.astype(np.int64), distinct(local).astype(np.int32)
    return pop


def distinct(values: np.ndarray) -> np.ndarray:
    """np.unique(values) by a sort: NumPy's hash of integers took 10 times as long (35 ms for
    200,000 values)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


def child_counts(seed: int, child_ratio: float, sizes: np.ndarray) -> np.ndarray:
    """Children per city of a multi-city scenario: round(child_ratio x adults) in all (Python's
    round, half to even), multinomial over the cities in proportion to their adults (each
    child's first parent uniform over all adults), from a stream of the seed alone
    (CHILD_STREAMS): city k gets Binomial(left, n_k / adults left) of the children not yet
    given to cities 0..k-1, the last city with adults the rest."""
    sizes = np.asarray(sizes, dtype=np.int64)
    out = np.zeros(len(sizes), dtype=np.int64)
    left_adults = int(sizes.sum())
    left = round(child_ratio * left_adults)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(CHILD_STREAMS,)))
    for k, n_k in enumerate(sizes.tolist()):
        if left == 0 or left_adults == 0:
            break
        if n_k == 0:
            continue
        out[k] = left if n_k == left_adults else int(rng.binomial(left, n_k / left_adults))
        left -= int(out[k])
        left_adults -= n_k
    return out


def cross_slots(rng: np.random.Generator, n_slots: int, share: float) -> np.ndarray:
    """Slots 0..n_slots-1 each taken independently with probability `share`, ascending: by
    geometric skips (the gap to the next taken slot is Geometric(share)), drawn in chunks of
    a size fixed by n_slots and share alone, so a stream gives the same slots everywhere."""
    if share <= 0 or n_slots <= 0:
        return np.empty(0, np.int64)
    mean = n_slots * share
    chunk = min(n_slots + 1, int(mean + 6 * math.sqrt(mean)) + 64)  # one chunk, nearly always
    parts, at = [], -1
    while at < n_slots - 1:
        gaps = np.minimum(rng.geometric(share, chunk), n_slots + 1)  # no overflow past the end
        taken = at + np.cumsum(gaps)
        parts.append(taken)
        at = int(taken[-1])
    taken = np.concatenate(parts)
    return taken[: np.searchsorted(taken, n_slots)]


def cross_proposals(
    seed: int, spec: PopulationSpec, sizes: np.ndarray, a: int
) -> tuple[np.ndarray, np.ndarray]:
    """City a's cross proposals: its slots that are cross proposals (adult * edges_per_adult
    + k, local adult ids, each slot with probability cross_city_share) and each one's target,
    the global id of a uniform adult of any city, its own included; from a stream of the seed
    and a alone (CROSS_STREAMS), so every process draws the same."""
    n_a = int(sizes[a])
    share, per_adult = spec.cross_city_share, spec.edges_per_adult
    if share <= 0 or per_adult == 0 or n_a == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(CROSS_STREAMS, a)))
    slots = cross_slots(rng, n_a * per_adult, share)
    return slots, rng.integers(0, int(np.sum(sizes)), len(slots), dtype=np.int64)


def cross_edges(
    seed: int,
    spec: PopulationSpec,
    sizes: np.ndarray,
    cities: list[int],
) -> dict[int, CityCross]:
    """The cross proposals that concern `cities` (cross_proposals): each city's own cross
    slots, and its ghost edges, both ends of every edge between two cities listed each in
    its own city. Every process draws every city's cross proposals, whichever cities it
    holds, so that none depends on another for its ghosts (a cross_city_share part of the
    graph's proposals)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    per_adult = spec.edges_per_adult
    mine = np.zeros(len(sizes), dtype=bool)
    mine[cities] = True
    own: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    found: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in cities}
    for a in range(len(sizes)):
        slots, dst = cross_proposals(seed, spec, sizes, a)
        if len(slots) == 0:
            continue
        src = slots // per_adult  # the proposer, local
        dst_city = np.searchsorted(starts, dst, side="right") - 1
        away = dst_city != a
        if mine[a]:
            own[a] = (slots, np.where(away, -1, dst - starts[a]).astype(np.int32))
            found[a].append((src[away], dst[away]))
        far = np.flatnonzero(away & mine[dst_city])
        far = far[np.argsort(dst_city[far], kind="stable")]  # by the target's city
        cut = np.flatnonzero(np.diff(dst_city[far])) + 1
        for sel in np.split(far, cut) if len(far) else []:
            k = int(dst_city[sel[0]])
            found[k].append((dst[sel] - starts[k], starts[a] + src[sel]))
    out = {}
    for k in cities:
        cross = CityCross.none()
        if k in own:
            cross.slots, cross.inside = own[k]
        if found[k]:
            local, foreign = (np.concatenate(c) for c in zip(*found[k], strict=True))
            # Each pair once, in (local, foreign) order, as one int64 key (ids are below
            # 2**31, so the key is below 2**62): np.unique over the pairs as columns sorted
            # them as raw bytes, 0.1 s a city of 300,000 adults.
            pairs = distinct(local * starts[-1] + foreign)
            cross.local, cross.foreign = pairs // starts[-1], pairs % starts[-1]
        out[k] = cross
    return out


def _generate(
    pop: PopulationSpec,
    sizes: np.ndarray,
    seed_seq: np.random.SeedSequence,
    cross: float,
    children: int | None = None,
    replaced: tuple[np.ndarray, np.ndarray] | None = None,
) -> Population:
    """Adults of cities `sizes`, their children (`children`, default round(child_ratio x
    adults)) and graph: proposals within the city, or anywhere with probability `cross`; or,
    for one city of a multi-city scenario, its cross slots `replaced` (slots, inside) in place
    of those slots' in-city draws (generate_city)."""
    n = int(sizes.sum())
    s_group, s_traits, s_child, s_graph = (np.random.default_rng(s) for s in seed_seq.spawn(4))
    city_start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    city = np.repeat(np.arange(len(sizes), dtype=city_code(len(sizes))), sizes)
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
        parent1, child_city, child_group, parent2 = _children(
            s_child, pop, city, city_start, children
        )
        targets = _propose_edges(s_graph, city, city_start, pop.edges_per_adult, cross)
        if replaced is not None and len(replaced[0]):
            _replace_slots(targets, *replaced)
        # A small graph (a city of a multi-city run) is built on this thread alone: waking
        # the kernel's threads cost more than the build (30 k adults: 27 to 104 ms on two
        # threads of a busy machine, 4.8 ms on one; national's 31 cities at 1 M adults spent
        # 4.3 s in it). The result does not depend on the threads.
        threads = get_num_threads()
        parts = threads if n >= CSR_THREADS_FROM else 1
        set_num_threads(parts)
        try:
            degree, nbr = build_csr(n, pop.edges_per_adult, targets, parts)
        finally:
            set_num_threads(threads)
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
    rng: np.random.Generator,
    pop: PopulationSpec,
    city: np.ndarray,
    city_start: np.ndarray,
    m: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`m` children (default round(child_ratio x adults)): first parent (uniform over the
    adults: city by size), city, group, second parent (the first's partner, or -1)."""
    n = len(city)
    if m is None:
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


@njit(cache=True, nogil=True)
def _replace_slots(targets, slots, inside) -> None:
    """Cross slots (cross_edges) in place of their in-city draws: the target `inside` when it
    is an adult here, else the proposer itself, which build_csr drops like any self-pick."""
    per_adult = targets.shape[1]
    for x in range(slots.shape[0]):
        i = slots[x] // per_adult
        targets[i, slots[x] - i * per_adult] = inside[x] if inside[x] >= 0 else i


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
def add_ghosts(
    degree: np.ndarray, nbr: np.ndarray, local: np.ndarray, ghost: np.ndarray, n_ghosts: int
) -> tuple[np.ndarray, np.ndarray]:
    """The graph with ghost rows n .. n + n_ghosts - 1 after the n adults' rows: adult i's
    row is its own city's neighbours, then its ghosts n + ghost (pairs sorted by (local,
    ghost), distinct), so rows stay sorted; a ghost's row is its neighbours here."""
    n = degree.shape[0]
    out_degree = np.zeros(n + n_ghosts, dtype=np.int64)
    out_degree[:n] = degree
    for e in range(local.shape[0]):
        out_degree[local[e]] += 1
        out_degree[n + ghost[e]] += 1
    start = np.zeros(n + n_ghosts + 1, dtype=np.int64)
    for i in range(n + n_ghosts):
        start[i + 1] = start[i] + out_degree[i]
    out = np.empty(start[-1], dtype=np.int32)
    read = 0
    fill = start[:-1].copy()
    for i in range(n):
        for _ in range(degree[i]):
            out[fill[i]] = nbr[read]
            fill[i] += 1
            read += 1
    for e in range(local.shape[0]):  # by local adult: each row's ghosts, then each ghost's
        i, x = local[e], n + ghost[e]
        out[fill[i]] = x
        fill[i] += 1
        out[fill[x]] = i
        fill[x] += 1
    return out_degree, out


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


def offsets_in_block(degree: np.ndarray) -> np.ndarray:
    """Offset of each adult's first neighbour from that of its block's first adult
    (block_offsets): at most NBR_BLOCK times the largest degree, so two bytes an adult for
    degrees of one byte."""
    out = np.empty(degree.shape[0], dtype=np.uint16 if degree.dtype == np.uint8 else np.uint32)
    _offsets_in_block(degree, out)
    return out


@njit(cache=True, nogil=True)
def _offsets_in_block(degree: np.ndarray, out: np.ndarray) -> None:
    total = 0
    for i in range(degree.shape[0]):
        if i % NBR_BLOCK == 0:
            total = 0
        out[i] = total
        total += degree[i]


@njit(cache=True, nogil=True)
def neighbours_start(i: int, nbr_block: np.ndarray, nbr_degree: np.ndarray) -> int:
    """Offset of adult i's first neighbour in `nbr`."""
    first = i - i % NBR_BLOCK
    off = nbr_block[i // NBR_BLOCK]
    for j in range(first, i):
        off += nbr_degree[j]
    return off
