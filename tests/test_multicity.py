"""Multi-city populations, drawn city by city (shard.py), follow the model's contract
(docs/model.md): round(child_ratio x adults) children in all, first parents uniform over all
adults; each proposal of an edge goes, with probability cross_city_share, to a uniform adult
of any city (its own included), otherwise to one of the proposer's city; self-picks and
duplicates dropped.

Tolerances are Z standard deviations of the quantity's own distribution (Z = 5: a two-sided
normal tail of 6e-7 per check), so a correct draw fails with negligible probability and the
deviations these tests guard against (cross edges on top of the in-city ones; children
rounded per city) fail by tens of standard deviations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xinyong import population
from xinyong.scenario import Scenario, load_scenario
from xinyong.shard import Layout

Z = 5.0
SHARES = (0.4, 0.3, 0.2, 0.1)


def four_cities(
    adults: int = 20_000, share: float = 0.3, seed: int = 11, child_ratio: float = 0.25
) -> Scenario:
    cities = [{"name": f"c{i}", "share": s, "pack": "rongcheng"} for i, s in enumerate(SHARES)]
    overrides = {
        "cities": cities,
        "population.cross_city_share": share,
        "population.child_ratio": child_ratio,
    }
    return load_scenario("three-cities", adults=adults, seed=seed, overrides=overrides)


def within(observed: float, expected: float, sd: float) -> bool:
    return abs(observed - expected) <= Z * sd


def binomial_ok(count: int, n: int, p: float) -> bool:
    return within(count, n * p, math.sqrt(n * p * (1 - p)))


@pytest.fixture(scope="module")
def sharded() -> tuple[Scenario, Layout, list[population.Population]]:
    """Each city drawn on its own, as its engine does (shard.Shard, engine.Simulation)."""
    sc = four_cities()
    layout = Layout.of(sc)
    k_all = list(range(len(sc.cities)))
    cross = population.cross_edges(sc.seed, sc.population, layout.sizes, k_all)
    pops = []
    for k in k_all:
        seeds = population.city_seed(sc.seed, k, len(sc.cities)).spawn(8)
        children = int(layout.first_child[k + 1] - layout.first_child[k])
        pops.append(
            population.generate_city(
                sc.population, int(layout.sizes[k]), seeds[0], cross[k], children
            )
        )
    return sc, layout, pops


def expected_edges(sizes: np.ndarray, per_adult: int, share: float) -> tuple[float, float]:
    """Expected distinct undirected edges within cities and between cities: a proposal of
    an adult of city c picks a given other adult j with probability (1 - share) / n_c +
    share / N if j is of city c, share / N otherwise; {i, j} is an edge unless none of the
    2 per_adult proposals of i and j picks the other."""
    n = sizes.astype(np.float64)
    total = n.sum()
    q_in = np.where(n > 0, (1 - share) / np.maximum(n, 1) + share / total, 0)
    inside = float(np.sum(n * (n - 1) / 2 * (1 - (1 - q_in) ** (2 * per_adult))))
    pairs = (total**2 - np.sum(n**2)) / 2
    between = float(pairs * (1 - (1 - share / total) ** (2 * per_adult)))
    return inside, between


def test_cross_slots_are_independent_slots_with_the_share() -> None:
    rng = np.random.default_rng(5)
    n, share = 1_000_000, 0.3
    slots = population.cross_slots(rng, n, share)
    assert slots.dtype == np.int64
    assert np.all(np.diff(slots) > 0) and slots[0] >= 0 and slots[-1] < n
    assert binomial_ok(len(slots), n, share)
    # Each of ten stretches of slots, and each proposal index of 4 (slot mod 4), holds
    # Binomial(size, share) of them.
    for part in np.bincount(slots * 10 // n, minlength=10):
        assert binomial_ok(int(part), n // 10, share)
    for part in np.bincount(slots % 4, minlength=4):
        assert binomial_ok(int(part), n // 4, share)
    # Pairs of neighbouring slots both taken: (n - 1) share^2 expected, as for independent
    # slots; the indicators are 1-dependent, Var = (n-1) v + 2 (n-2) c with v = s^2 (1 - s^2)
    # and c = s^3 - s^4 (overlapping pairs).
    both = int(np.sum(np.diff(slots) == 1))
    s = share
    var = (n - 1) * s**2 * (1 - s**2) + 2 * (n - 2) * (s**3 - s**4)
    assert within(both, (n - 1) * s**2, math.sqrt(var))
    assert len(population.cross_slots(rng, n, 0.0)) == 0
    assert np.array_equal(population.cross_slots(rng, 1000, 1.0), np.arange(1000))
    assert len(population.cross_slots(rng, 0, 0.5)) == 0
    small = np.concatenate([population.cross_slots(rng, 3, 0.5) for _ in range(4000)])
    for part in np.bincount(small, minlength=3):  # each of 3 slots taken in 4000 tries
        assert binomial_ok(int(part), 4000, 0.5)


def test_cross_proposals_share_and_targets_over_all_cities() -> None:
    sc = four_cities()
    spec, sizes = sc.population, Layout.of(sc).sizes
    total, per_adult, share = int(sizes.sum()), spec.edges_per_adult, spec.cross_city_share
    starts = np.concatenate([[0], np.cumsum(sizes)])
    landed = np.zeros(len(sizes), dtype=np.int64)
    proposals = 0
    for a, n_a in enumerate(sizes.tolist()):
        slots, dst = population.cross_proposals(sc.seed, spec, sizes, a)
        assert np.all(np.diff(slots) > 0) and slots[-1] < n_a * per_adult
        assert binomial_ok(len(slots), n_a * per_adult, share)  # each slot cross with `share`
        assert dst.min() >= 0 and dst.max() < total
        city = np.searchsorted(starts, dst, side="right") - 1
        assert binomial_ok(int(np.sum(city == a)), len(slots), n_a / total)  # own city too
        landed += np.bincount(city, minlength=len(sizes))
        proposals += len(slots)
        # The proposers are the city's adults, each with its per_adult slots.
        assert binomial_ok(int(np.sum(slots // per_adult < n_a // 2)), len(slots), 0.5)
    for c, n_c in enumerate(sizes.tolist()):  # targets in proportion to the cities' adults
        assert binomial_ok(int(landed[c]), proposals, n_c / total)


def test_distinct_is_numpy_s_unique() -> None:
    values = np.random.default_rng(4).integers(0, 50, 300)
    assert np.array_equal(population.distinct(values), np.unique(values))
    assert population.distinct(values[:0]).size == 0
    assert population.distinct(np.array([7])).tolist() == [7]


def test_each_city_lists_its_cross_slots_and_both_ends_of_its_cross_edges() -> None:
    sc = four_cities(adults=4000)
    spec, sizes = sc.population, Layout.of(sc).sizes
    starts = np.concatenate([[0], np.cumsum(sizes)])
    cross = population.cross_edges(sc.seed, spec, sizes, list(range(len(sizes))))
    expected: dict[int, set[tuple[int, int]]] = {k: set() for k in range(len(sizes))}
    for a in range(len(sizes)):
        slots, dst = population.cross_proposals(sc.seed, spec, sizes, a)
        city = np.searchsorted(starts, dst, side="right") - 1
        assert np.array_equal(cross[a].slots, slots)
        assert np.array_equal(cross[a].inside, np.where(city == a, dst - starts[a], -1))
        for slot, j, c in zip(slots.tolist(), dst.tolist(), city.tolist(), strict=True):
            i = slot // spec.edges_per_adult
            if c != a:
                expected[a].add((i, j))
                expected[c].add((j - int(starts[c]), int(starts[a]) + i))
    for k, c in cross.items():
        pairs = list(zip(c.local.tolist(), c.foreign.tolist(), strict=True))
        assert pairs == sorted(expected[k])  # distinct, sorted, both ends


def test_degrees_follow_the_contract(sharded) -> None:
    """Edges within and between cities, drawn city by city, are as many as the contract
    expects, and so are those of the one-process population of the same scenario. The
    indicators of distinct pairs are independent or negatively correlated (one proposal picks
    one adult), so the count's variance is at most its mean."""
    sc, layout, pops = sharded
    spec = sc.population
    inside = between2 = 0
    for pop in pops:
        n = pop.adults
        start = pop.nbr_start
        row = np.repeat(np.arange(len(pop.nbr_degree)), pop.degree())
        assert np.all(pop.nbr != row)  # no self-loops
        same = row[1:] == row[:-1]
        assert np.all(np.diff(pop.nbr)[same] > 0)  # sorted rows, no duplicates
        own = pop.nbr[: start[n]] < n
        inside += int(np.sum(own)) // 2
        between2 += int(np.sum(~own))
    assert between2 % 2 == 0  # each edge between cities listed in both
    between = between2 // 2
    e_in, e_between = expected_edges(layout.sizes, spec.edges_per_adult, spec.cross_city_share)
    assert within(inside, e_in, math.sqrt(e_in))
    assert within(between, e_between, math.sqrt(e_between))
    whole = population.generate(sc, np.random.SeedSequence(sc.seed))
    row = np.repeat(np.arange(whole.adults), whole.degree())
    cross_rows = whole.city[row] != whole.city[whole.nbr]
    assert within(int(np.sum(~cross_rows)) // 2, e_in, math.sqrt(e_in))
    assert within(int(np.sum(cross_rows)) // 2, e_between, math.sqrt(e_between))


def test_children_in_all_are_the_contract_s(sharded) -> None:
    sc, layout, pops = sharded
    m = round(sc.population.child_ratio * sc.adults)
    assert sum(p.children for p in pops) == m == int(layout.first_child[-1])
    for pop in pops:
        assert pop.parent1.min() >= 0 and pop.parent1.max() < pop.adults  # its own adults
    for adults, ratio in [(4001, 0.5), (4003, 0.5), (3000, 0.25), (999, 1.3), (10, 0.0)]:
        sc = four_cities(adults=adults, child_ratio=ratio)
        layout = Layout.of(sc)
        assert int(layout.first_child[-1]) == round(ratio * adults)  # half to even
        counts = np.diff(layout.first_child)
        assert np.array_equal(counts, population.child_counts(sc.seed, ratio, layout.sizes))


def test_children_per_city_are_multinomial() -> None:
    """Over R seeds, each city's count has the mean m p and the variance m p (1 - p) of a
    multinomial's margin (p = n_k / adults); the sample variance's sd is about
    var sqrt(2 / (R - 1)). Cities without adults have no children."""
    sizes = np.array([4000, 0, 3000, 2000, 1000, 0], dtype=np.int64)
    ratio, reps = 0.25, 2000
    m = round(ratio * int(sizes.sum()))
    draws = np.stack([population.child_counts(seed, ratio, sizes) for seed in range(reps)])
    assert np.all(draws.sum(axis=1) == m)
    assert np.all(draws[:, sizes == 0] == 0)
    assert np.array_equal(population.child_counts(3, ratio, sizes), draws[3])  # the seed's
    p = sizes / sizes.sum()
    for k in np.flatnonzero(sizes):
        var = m * p[k] * (1 - p[k])
        assert within(draws[:, k].mean(), m * p[k], math.sqrt(var / reps))
        assert within(draws[:, k].var(ddof=1), var, var * math.sqrt(2 / (reps - 1)))
    # Pairs of cities are negatively correlated: cov = -m p_i p_j.
    cov = np.cov(draws[:, 0], draws[:, 2])[0, 1]
    sd = math.sqrt((m * p[0] * (1 - p[0]) * m * p[2] * (1 - p[2]) + (m * p[0] * p[2]) ** 2) / reps)
    assert within(cov, -m * p[0] * p[2], sd)
