"""The compact state structures give exactly what the plain ones they replace would."""

from __future__ import annotations

import mmap

import numpy as np
import pytest
from numba import njit

import xinyong
from xinyong import consequences, observe, randomness, threads, world
from xinyong.consequences import update_members
from xinyong.engine import Simulation
from xinyong.errors import XinyongError
from xinyong.observe import (
    MISATTRIBUTED,
    Channels,
    Placed,
    Records,
    VictimPool,
    group_of,
    nth_of_group,
)
from xinyong.population import (
    NBR_BLOCK,
    TraitBuckets,
    block_offsets,
    build_csr,
    neighbours_start,
    offsets_in_block,
    trait_at,
)
from xinyong.schedule import by_day
from xinyong.scheme.lists import RECHECK, SCORE_CHANGED, sorted_unique
from xinyong.scheme.scoring import BIN_BITS, person_order
from xinyong.scheme.state import MAX_DETER_LEVEL, deter_table
from xinyong.sorting import radix_order
from xinyong.world import sample_behaviour


@pytest.mark.parametrize("n", [1, 63, 64, 65, 1000])
def test_group_index_finds_the_same_adult_as_a_member_list(n: int) -> None:
    rng = np.random.default_rng(n)
    city = np.sort(rng.integers(0, 3, n)).astype(np.uint8)
    group = (rng.random(n) < 0.3).astype(np.uint8)
    gi = VictimPool.of(city, group, 3)
    for k in range(3):
        for g in (0, 1):
            members = np.flatnonzero((city == k) & (group == g))
            assert gi.size[k, g] == len(members)
            found = [
                nth_of_group(group, gi.before, g, gi.start[k, g] + j) for j in range(len(members))
            ]
            assert found == members.tolist()
    assert [group_of(gi.minority_bits, i) for i in range(n)] == group.tolist()


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
    assert np.array_equal(tb.value(tb.rank()), trait)
    for g in range(len(tb.start) - 1):
        ids = tb.order[tb.start[g] : tb.start[g + 1]]
        assert (np.diff(ids) > 0).all()
        assert (trait[ids] <= tb.upper[g]).all()


def test_trait_at_reads_the_trait_of_a_row_in_compiled_code() -> None:
    trait = np.random.default_rng(1).lognormal(0, 1, 1001)
    tb = TraitBuckets.of(trait)
    read = njit(lambda rows: np.array([trait_at(rows, j) for j in range(rows.shape[0])]))
    assert np.array_equal(read(tb.rows), tb.value())
    assert np.array_equal(read(tb.rows)[tb.rank()], trait)


def test_state_is_at_most_120_bytes_per_adult() -> None:
    """The memory target of the performance issue, counted array by array (graph, children
    and scratch included). A count, not a timing: it cannot flake."""
    sim = Simulation(xinyong.load_scenario("r1", adults=20_000, days=1))
    per_adult = sum(sim.state_nbytes().values()) / sim.pop.adults
    assert per_adult <= 120


def test_finishing_before_any_day_is_refused_with_a_clear_error() -> None:
    sim = Simulation(xinyong.load_scenario("r1", adults=1000, days=3))
    with pytest.raises(XinyongError, match="no day was simulated"):
        sim.finish()


@pytest.mark.parametrize("seed", range(3))
def test_trait_buckets_are_those_a_search_of_the_edges_gives(seed: int) -> None:
    """The compiled counting sort puts every person in the bucket np.searchsorted finds,
    including values on an edge, and keeps ids ascending within a bucket."""
    rng = np.random.default_rng(seed)
    edges = np.geomspace(0.1, 10, 49)
    trait = np.concatenate([rng.lognormal(-0.5, 1, 3000).clip(0.1, 10), edges, [0.1, 10]])
    rng.shuffle(trait)
    tb = TraitBuckets.of(trait)
    edges = np.geomspace(trait.min(), trait.max(), 49)
    bucket = np.clip(np.searchsorted(edges, trait, side="right") - 1, 0, 47)
    assert np.array_equal(tb.order, np.argsort(bucket, kind="stable"))
    assert np.array_equal(np.diff(tb.start), np.bincount(bucket, minlength=48))
    assert all(tb.upper[g] == trait[bucket == g].max(initial=0) for g in range(48))


def test_one_valued_trait_is_one_bucket() -> None:
    tb = TraitBuckets.of(np.full(7, 2.5))
    assert tb.start.tolist() == [0, 7] and tb.upper.tolist() == [2.5]


def test_scoring_order_keeps_each_persons_records_in_creation_order() -> None:
    rng = np.random.default_rng(1)
    person = rng.integers(0, 1000, 20_000).astype(np.int32)
    order = person_order(person, 1000)
    assert np.array_equal(np.sort(order), np.arange(len(person)))
    bins = person[order] >> BIN_BITS
    assert (np.diff(bins) >= 0).all()
    for p in (0, 17, 999):
        mine = order[person[order] == p]
        assert np.array_equal(mine, np.flatnonzero(person == p))


@pytest.mark.parametrize(
    ("adults", "given"),
    [(1, 3), (2, 3), (1000, 3000), (5000, 3000), (1 << 17, 3000), (1 << 17, 100)],
)
@pytest.mark.parametrize("split", [False, True])
def test_sorted_unique_is_each_person_once_in_id_order_with_reasons_or_ed(
    adults: int, given: int, split: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ways (flags when many adults are given, a radix sort when few), the scan of flags
    whole or in two halves, agree with np.unique, and leave the flags zeroed."""
    monkeypatch.setattr(threads, "MIN_SPLIT", 1 if split else 1 << 40)
    rng = np.random.default_rng(adults + given)
    persons = rng.integers(0, adults, given).astype(np.int32)
    reasons = rng.choice(np.array([SCORE_CHANGED, RECHECK], dtype=np.uint8), given)
    flags = np.zeros(adults, dtype=np.uint8)
    got, why = sorted_unique(persons, reasons, flags, threads.Halves())
    assert np.array_equal(got, np.unique(persons))
    for p, r in zip(got[:50], why[:50], strict=True):
        assert r == np.bitwise_or.reduce(reasons[persons == p])
    assert not flags.any()
    empty = sorted_unique(np.empty(0, np.int32), np.empty(0, np.uint8), flags)
    assert [a.tolist() for a in empty] == [[], []]


def test_members_are_updated_from_the_adults_whose_lists_changed() -> None:
    """The incremental start-of-day members equal a scan of every adult's bits."""
    rng = np.random.default_rng(3)
    n = 2000
    city = rng.integers(0, 2, n).astype(np.uint8)
    mask_by_city = np.array([0b01, 0b10], dtype=np.int64)
    bits = rng.integers(0, 4, n).astype(np.uint8)
    members = np.flatnonzero(bits & mask_by_city[city]).astype(np.int32)
    for changed in (300, 5, 300, 1, 40):  # few: long runs of members between them
        moved = np.unique(rng.integers(0, n, changed)).astype(np.int32)
        bits[moved] = rng.integers(0, 4, len(moved))
        members = update_members(members, moved, bits, city, mask_by_city)
        expected = np.flatnonzero(bits & mask_by_city[city])
        assert np.array_equal(members, expected)
    none = np.empty(0, np.int32)
    assert np.array_equal(update_members(members, none, bits, city, mask_by_city), members)
    everyone = np.arange(n, dtype=np.int32)  # from no members, every adult changed
    assert np.array_equal(update_members(none, everyone, bits, city, mask_by_city), members)


@pytest.mark.parametrize(("dtype", "cities"), [(np.uint8, 1), (np.uint8, 3), (np.uint16, 4)])
def test_effects_on_is_any_list_of_each_effect(dtype: type, cities: int) -> None:
    """A member has effect e when it is on any list whose sanctions carry e in its city; the
    byte tables give that for 8 and for 16 lists."""
    rng = np.random.default_rng(cities)
    width = np.dtype(dtype).itemsize * 8
    bits = rng.integers(0, 1 << width, (3000, 2)).astype(dtype)[:, 0]  # a column, as used
    city = rng.integers(0, cities, 3000).astype(np.uint8)
    effect_mask = rng.integers(0, 1 << width, (cities, 5)).astype(np.int64)
    effect_mask[:, 0] = 0  # an effect no list carries
    effect_mask[0, 1] = 1 << (width - 1)  # only the top list
    members = np.sort(rng.choice(3000, 700, replace=False)).astype(np.int32)
    by_byte = consequences.effects_by_byte(effect_mask, np.dtype(dtype).itemsize)
    got = consequences.effects_on(members, bits, city, by_byte)
    on = bits[members].astype(np.int64)[:, None] & effect_mask[city[members]]
    expected = ((on != 0).astype(np.int64) << np.arange(5)).sum(axis=1)
    assert np.array_equal(got, expected)
    assert (got & 1).sum() == 0


@pytest.mark.parametrize(
    ("bound", "skip", "n"),
    [
        (1, 0, 4000),
        (2, 0, 4000),
        (1 << 11, 0, 4000),
        (5000, 3, 4000),
        (1 << 20, 0, 4000),
        (1 << 27, 5, 4000),
        (32_000, 0, 0),  # few keys: narrower digits than the bound alone would choose
        (32_000, 0, 1),
        (32_000, 0, 300),
        (1 << 27, 0, 17),
    ],
)
def test_radix_order_is_a_stable_sort(bound: int, skip: int, n: int) -> None:
    """One counting pass up to 2**19 buckets, several passes beyond or for few keys."""
    key = np.random.default_rng(bound).integers(0, bound, n).astype(np.int32)
    order, sorted_key = radix_order(key, bound, skip, True)
    assert np.array_equal(order, np.argsort(key >> skip, kind="stable"))
    assert np.array_equal(sorted_key, key[order])
    assert np.array_equal(radix_order(key, bound, skip)[0], order)


@pytest.mark.parametrize(
    ("n", "per_adult", "parts"),
    [(1, 4, 2), (2, 4, 3), (300, 4, 1), (300, 0, 2), (50, 30, 2), (10_000, 4, 1), (10_000, 4, 3)],
)
def test_graph_is_the_sorted_union_of_proposals_both_ways(
    n: int, per_adult: int, parts: int
) -> None:
    """Whatever the number of parts the proposers are split into for the threads."""
    targets = np.random.default_rng(n).integers(0, n, (n, per_adult)).astype(np.int32)
    degree, nbr = build_csr(n, per_adult, targets, parts)
    src = np.repeat(np.arange(n), per_adult)
    dst = targets.ravel()
    keep = src != dst
    pairs = np.unique(np.concatenate([src * n + dst, dst * n + src])[np.tile(keep, 2)])
    assert np.array_equal(degree, np.bincount(pairs // n, minlength=n))
    assert np.array_equal(nbr, pairs % n)


def test_prefetch_is_a_hint_for_c_contiguous_arrays_only() -> None:
    from numba import njit
    from numba.core.errors import TypingError

    from xinyong.prefetch import prefetch

    @njit
    def total(a: np.ndarray) -> int:
        s = 0
        for i in range(a.shape[0]):
            prefetch(a, i + 1000)  # past the end: a hint never faults
            s += a[i]
        return s

    a = np.arange(100, dtype=np.int64)
    assert total(a) == 4950
    with pytest.raises(TypingError):
        total(np.arange(200, dtype=np.int64)[::2])


def test_open_spells_are_those_np_nonzero_finds() -> None:
    from xinyong.recorder import open_spells

    rng = np.random.default_rng(0)
    started = rng.integers(0, 300, (1000, 2, 4))
    since = np.where(rng.random((1000, 2, 4)) < 0.1, started, -1).astype(np.int16)
    p, w, li = np.nonzero(since >= 0)
    person, lists, world, start, end = open_spells(since)
    assert person.tolist() == p.tolist() and lists.tolist() == li.tolist()
    assert world.tolist() == w.tolist() and start.tolist() == since[p, w, li].tolist()
    assert end.tolist() == [-1] * len(p) and len(p) > 100


def test_tier_bounds_hold_exactly_the_scores_tier_of_gives_each_tier() -> None:
    from xinyong.scheme.lists import tier_bounds, tier_of

    thresholds = np.array([[1050, 1000, 960, 850, 0], [900, 700, 500, 0, 0]], dtype=np.int64)
    n_tiers = np.array([5, 3], dtype=np.int64)
    floor, ceiling = tier_bounds(thresholds, n_tiers)
    for pk in range(2):
        for score in range(-100, 1200, 7):
            tier = tier_of(score, thresholds[pk, : n_tiers[pk]])
            inside = [k for k in range(n_tiers[pk]) if floor[pk, k] <= score < ceiling[pk, k]]
            assert inside == [tier]
            assert not floor[pk, -1] <= score < ceiling[pk, -1]  # NO_TIER: never inside


def test_observation_tallies_each_event_and_record_by_behaviour_and_group() -> None:
    """observe.observe's counts, against the events it was given and the records it made:
    true events by the actor's group, records and misattributed records by the recorded
    person's group (column 2 b + g); no false reports."""
    rng = np.random.default_rng(4)
    n_adults, B = 5000, 6
    group = (rng.random(n_adults) < 0.3).astype(np.uint8)
    city = np.zeros(n_adults, np.uint8)
    pool = VictimPool.of(city, group, 1)
    # Runs of one behaviour, as a day's events come, and a shuffled tail.
    beh = np.concatenate([np.repeat(np.arange(B), 300), rng.integers(0, B, 500)]).astype(np.int16)
    actor = rng.integers(0, n_adults, len(beh)).astype(np.int32)
    channel = np.arange(B, dtype=np.int16) % 3
    detect = np.array([1.0, 0.5, 0.8])
    misattribute = np.array([0.0, 0.2, 0.5])
    weight = np.ones((3, 2))
    n, person, rbeh, _, truth, _, counts = observe.observe(
        randomness.words_of(np.random.default_rng(1)),
        actor,
        beh,
        rng.random(len(beh)),
        Channels(channel, detect, misattribute, weight),
        pool,
    )
    person, rbeh, truth = person[:n], rbeh[:n], truth[:n]
    assert 0 < (truth == MISATTRIBUTED).sum() < n < len(beh)
    expected = np.zeros((observe.TALLIES, 2 * B), dtype=np.int64)
    np.add.at(expected[observe.TRUE_EVENTS], 2 * beh + group[actor], 1)
    np.add.at(expected[observe.RECORDS], 2 * rbeh + group[person], 1)
    wrong = truth == MISATTRIBUTED
    np.add.at(expected[observe.MISATTRIBUTED_RECORDS], 2 * rbeh[wrong] + group[person[wrong]], 1)
    assert np.array_equal(counts, expected)


def test_trait_at_takes_32_bit_rows_past_715_million() -> None:
    """Row j starts at word 3 j, which overflows 32 bits from j = 715,827,883: the index is
    widened before it is multiplied. The rows are an untouched anonymous mapping (9.6 GB of
    address space, one page of memory used)."""
    j = 800_000_000
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0)
    try:
        area = mmap.mmap(-1, (j + 1) * 12, flags=flags)
    except OSError:  # a system that refuses the address space
        pytest.skip("no 9.6 GB of address space")
    rows = np.frombuffer(area, dtype=np.int32).reshape(j + 1, 3)
    rows[j, 1:] = np.array([2.5]).view(np.int32)
    read = njit(lambda rows, j: trait_at(rows, j))
    assert read(rows, np.int32(j)) == 2.5
    assert read(rows, np.int64(j)) == 2.5
    del rows
    area.close()


@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 1000])
def test_block_offsets_are_the_running_sums_at_each_block(n: int) -> None:
    degree = np.random.default_rng(n).integers(0, 20, n).astype(np.uint8)
    ends = np.concatenate([[0], np.cumsum(degree, dtype=np.int64)])
    expected = np.concatenate([ends[:n:NBR_BLOCK], ends[-1:]]) if n else ends
    assert np.array_equal(block_offsets(degree), expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_offsets_in_block_add_up_to_each_adults_first_neighbour(dtype) -> None:
    """block_offsets at the block plus offsets_in_block is the running sum of the degrees,
    also for the largest degrees a block can hold."""
    top = np.iinfo(dtype).max
    degree = np.random.default_rng(4).integers(0, top + 1, 1000).astype(dtype)
    degree[:NBR_BLOCK] = top  # a whole block at the largest degree
    in_block = offsets_in_block(degree)
    assert in_block.dtype == (np.uint16 if dtype == np.uint8 else np.uint32)
    starts = np.concatenate([[0], np.cumsum(degree, dtype=np.int64)[:-1]])
    rows = np.arange(len(degree))
    assert np.array_equal(block_offsets(degree)[rows // NBR_BLOCK] + in_block, starts)


@pytest.mark.parametrize("many", [False, True], ids=["rows", "flags"])
def test_sampling_skips_exactly_the_affected_adults_in_the_buckets(many: bool) -> None:
    """With certain events, the pass over the buckets of a behaviour an effect acts on gives
    every adult but those under the effect, once each in bucket order; those then come from
    their own pass. Other behaviours give everyone."""
    rng = np.random.default_rng(5)
    n = 3000
    risk = TraitBuckets.of(rng.lognormal(0.0, 0.5, n))
    civic = TraitBuckets.of(rng.lognormal(0.0, 0.5, n))
    distressed = np.sort(rng.choice(n, 97, replace=False)).astype(np.int32)
    base = np.array([1e9, 1e9])  # every adult a candidate, every candidate kept
    negative = np.array([1, 1], dtype=np.uint8)
    effect_on = np.array([[0, 1]], dtype=np.uint8)  # one effect, on behaviour 1
    catalogue = world.Catalogue(base, negative, effect_on, np.array([2.0]))
    traits = world.Traits.of(risk, civic, risk.rank())
    _, actor, beh, _ = sample_behaviour(
        randomness.words_of(np.random.default_rng(1)),
        4 * n,
        world.NEGATIVE,
        catalogue,
        traits,
        world.bucket_logs(catalogue, traits),
        world.Deterrence(np.zeros(n, dtype=np.uint8), np.ones(1)),
        distressed,
        np.ones(len(distressed), dtype=np.int64),
        *world.affected_rows_or_flags(distressed, risk.rank(), many),
        True,  # thinned at bound 1: each once
    )
    order = risk.order
    assert np.array_equal(actor[beh == 0], order)
    others = order[~np.isin(order, distressed)]
    assert np.array_equal(actor[beh == 1], np.concatenate([others, distressed]))


@pytest.mark.parametrize(("room_before", "room_after"), [(3, 2), (5, 9), (2, 2), (3, 1)])
def test_placed_records_take_the_day_s_others_around_them_as_a_concat_would(
    room_before: int, room_after: int
) -> None:
    """In the free rows where they fit, else by copying all: the same records either way."""

    def part(n: int, seed: int) -> tuple:
        r = np.random.default_rng(seed)
        dtypes = (np.int32, np.int16, np.int16, np.uint8, np.int32)
        return tuple(r.integers(0, 100, n).astype(d) for d in dtypes)

    before, middle, after = part(3, 1), part(4, 2), part(2, 3)
    columns = tuple(
        np.concatenate([np.full(room_before, 99, c.dtype), c, np.full(room_after, 99, c.dtype)])
        for c in middle
    )
    placed = Placed(columns, room_before, 4, np.zeros((observe.TALLIES, 0), dtype=np.int64))
    got = placed.around(before, after)
    expected = Records.concat([before, middle, after])
    for name in ("person", "behaviour", "channel", "truth", "actor"):
        assert np.array_equal(getattr(got, name), getattr(expected, name)), name
    assert got.positive == slice(3, 7)  # the placed records' rows among the day's
    fits = room_before >= 3 and room_after >= 2
    assert np.shares_memory(got.person, columns[0]) == fits


def test_appeals_skip_the_positive_rows_and_find_what_a_full_search_finds() -> None:
    """Wrong negative records outside the positive block are the candidates either way; the
    same draws then pick the same appeals."""
    r = np.random.default_rng(4)
    n = 5000
    negative = np.array([1, 1, 0, 0], dtype=np.uint8)
    beh = r.integers(0, 4, n).astype(np.int16)
    block = slice(1200, 3900)
    beh[block] = r.integers(2, 4, block.stop - block.start)  # positive behaviours only
    truth = r.integers(0, 3, n).astype(np.uint8)
    full = consequences.file_appeals(np.random.default_rng(9), 0.5, negative, beh, truth)
    skipping = consequences.file_appeals(np.random.default_rng(9), 0.5, negative, beh, truth, block)
    assert np.array_equal(full, skipping)
    assert full.size > 0 and (full >= block.stop).any()  # candidates after the block too


@pytest.mark.parametrize("n", [0, 1, 5, 300])
def test_by_day_groups_the_rows_due_in_the_window_in_row_order(n: int) -> None:
    day = np.random.default_rng(n).integers(0, 40, n).astype(np.int32)
    lo, hi = 10, 30
    expected = [(d, np.flatnonzero(day == d)) for d in range(lo, hi) if (day == d).any()]
    got = by_day(day, lo, hi)
    assert [d for d, _ in got] == [d for d, _ in expected]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, expected, strict=True))
    assert all(type(d) is int for d, _ in got)
