"""The compact state structures give exactly what the plain ones they replace would."""

from __future__ import annotations

import numpy as np
import pytest

import xinyong
from xinyong.engine import Simulation
from xinyong.observe import GroupIndex, nth_of_group
from xinyong.population import TraitBuckets, neighbours_start
from xinyong.scheme.state import MAX_DETER_LEVEL, deter_table


@pytest.mark.parametrize("n", [1, 63, 64, 65, 1000])
def test_group_index_finds_the_same_adult_as_a_member_list(n: int) -> None:
    rng = np.random.default_rng(n)
    city = np.sort(rng.integers(0, 3, n)).astype(np.uint8)
    group = (rng.random(n) < 0.3).astype(np.uint8)
    gi = GroupIndex.of(city, group, 3)
    for k in range(3):
        for g in (0, 1):
            members = np.flatnonzero((city == k) & (group == g))
            assert gi.size[k, g] == len(members)
            found = [
                nth_of_group(group, gi.minority_before, g, gi.start[k, g] + j)
                for j in range(len(members))
            ]
            assert found == members.tolist()


def test_neighbour_offsets_from_blocks_match_full_offsets() -> None:
    pop = Simulation(xinyong.load_scenario("r1", adults=1000, days=1)).pop
    start = pop.nbr_start
    assert start[-1] == len(pop.nbr)
    for i in range(pop.adults):
        assert neighbours_start(i, pop.nbr_block, pop.nbr_degree) == start[i]


def test_deterrence_table_is_the_repeated_product() -> None:
    table = deter_table(0.05, 0.5)
    d = 1.0
    for k in range(40):
        assert table[min(k, len(table) - 1)] == d  # exact: the same float operations
        d = max(0.5, d * 0.95)
    assert len(table) == 15  # 0.95^13 > 0.5 > 0.95^14: the floor is reached at 14 records
    assert deter_table(0.0, 0.5).tolist() == [1.0]
    assert len(deter_table(1e-9, 0.0)) == MAX_DETER_LEVEL + 1  # stops falling past 65,535


def test_trait_buckets_round_trip() -> None:
    trait = np.random.default_rng(0).lognormal(0, 1, 5000)
    tb = TraitBuckets.of(trait)
    assert np.array_equal(tb.by_person(), trait)
    assert np.array_equal(tb.value[tb.rank()], trait)
    for g in range(len(tb.start) - 1):
        ids = tb.order[tb.start[g] : tb.start[g + 1]]
        assert (np.diff(ids) > 0).all()
        assert (trait[ids] <= tb.upper[g]).all()


def test_state_is_at_most_120_bytes_per_adult() -> None:
    """The memory target of the performance issue, counted array by array (graph, children
    and scratch included). A count, not a timing: it cannot flake."""
    sim = Simulation(xinyong.load_scenario("r1", adults=20_000, days=1))
    per_adult = sum(sim.state_nbytes().values()) / sim.pop.adults
    assert per_adult <= 120
