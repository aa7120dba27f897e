"""Observed rates against the model's probabilities.

Each count is a sum of independent Bernoulli draws, so its standard deviation is
sqrt(sum p(1-p)); every check allows 5 standard deviations (a false alarm about once in
1.7 million runs), with fixed seeds so the suite is deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import quiet_scenario
from xinyong import randomness, world
from xinyong.buffers import with_capacity
from xinyong.engine import Simulation
from xinyong.population import TraitBuckets, block_offsets, offsets_in_block
from xinyong.scenario import load_scenario
from xinyong.world import (
    affected_rows_or_flags,
    relist,
    sample_association,
    sample_meetings,
)

Z = 5.0


def within(observed: float, expected: float, var: float) -> bool:
    return abs(observed - expected) <= Z * math.sqrt(var) + 1e-12


@pytest.fixture(scope="module")
def r1_short():
    """R1 without deterrence, so event probabilities stay at base * trait every day."""
    sc = load_scenario("r1", adults=20000, days=30, seed=11, overrides={"consequences.eta": 0.0})
    sim = Simulation(sc)
    sim.run()
    return sim


def test_behaviour_rates_follow_base_times_trait(r1_short) -> None:
    sim = r1_short
    bd = sim.recorder.in_memory["behaviour_daily"].to_pydict()
    events: dict[str, int] = {}
    for b, n in zip(bd["behaviour"], bd["true_events"], strict=True):
        events[b] = events.get(b, 0) + n
    days = sim.sc.days
    for name in (
        "jaywalking",
        "traffic_violation",
        "punctuality",
        "volunteering",
        "late_cancellation",
    ):
        beh = sim.sc.behaviours[name]
        trait = sim.pop.risk if beh.sign == "negative" else sim.pop.civic
        p = np.minimum(1.0, beh.base * trait)
        if beh.context == "finance":
            continue
        assert within(events[name], days * p.sum(), days * (p * (1 - p)).sum()), name


def test_detection_and_misattribution_rates(r1_short) -> None:
    sim = r1_short
    bd = sim.recorder.in_memory["behaviour_daily"].to_pydict()
    camera = [b for b, v in sim.sc.behaviours.items() if v.channel == "camera"]
    true = sum(n for b, n in zip(bd["behaviour"], bd["true_events"], strict=True) if b in camera)
    rec = sim.recorder.in_memory["records"].to_pydict()
    seen = [t for b, t in zip(rec["behaviour"], rec["truth"], strict=True) if b in camera]
    detect = sim.sc.channels["camera"].detect
    assert within(len(seen), true * detect, true * detect * (1 - detect))
    wrong = sum(t == "misattributed" for t in seen)
    m = sim.sc.channels["camera"].misattribute
    assert within(wrong, len(seen) * m, len(seen) * m * (1 - m))


def test_victims_are_drawn_by_group_weight() -> None:
    """With certain misattribution, the victim is a minority member with probability
    w_min n_min / (w_min n_min + w_maj n_maj) (the actor excluded; negligible here)."""
    sc = quiet_scenario(
        adults=4000,
        days=1,
        overrides={"population.minority_share": 0.1, "channels.camera.misattribute": 1.0},
    )
    events = [(i, "jaywalking") for i in range(4000)]
    sim = Simulation(sc.with_(script={0: events}))
    sim.run()
    rec = sim.recorder.in_memory["records"].to_pydict()
    group = sim.pop.group
    n_min = int(group.sum())
    n_maj = len(group) - n_min
    p = 4 * n_min / (4 * n_min + n_maj)
    victims_min = sum(int(group[v]) for v in rec["person"])
    n = len(rec["person"])
    assert n == 4000
    assert all(v != a for v, a in zip(rec["person"], rec["actor"], strict=True))
    assert within(victims_min, n * p, n * p * (1 - p))


def test_false_reports_rate() -> None:
    sc = quiet_scenario(adults=50000, days=20, overrides={"observation.false_report_rate": 1e-3})
    sim = Simulation(sc)
    sim.run()
    rec = sim.recorder.in_memory["records"].to_pydict()
    assert set(rec["truth"]) == {"false_report"}
    assert set(rec["behaviour"]) <= {"loud_music", "unleashed_dog", "spreading_rumours"}
    trials, p = 50000 * 20, 1e-3
    assert within(len(rec["truth"]), trials * p, trials * p * (1 - p))


def test_association_probability_is_rho_times_listed_share_of_neighbours() -> None:
    """Star graphs: leaves meet their listed centre with prob rho; a node with 1 listed
    neighbour out of 4 meets a listed one with prob rho / 4."""
    n_hubs, leaves = 200, 3
    # Hub h has `leaves` leaves; node "other" links to 4 hubs of which the first is listed.
    edges = []
    node = n_hubs
    for h in range(n_hubs):
        for _ in range(leaves):
            edges.append((h, node))
            node += 1
    others = []
    for k in range(2000):
        edges += [(0, node), (1 + k % 50 + 50, node), (101 + k % 50, node), (151 + k % 49, node)]
        others.append(node)
        node += 1
    n = node
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    degree = np.array([len(a) for a in adj], dtype=np.uint16)  # hub 0 has 2003 neighbours
    nbr = np.concatenate([sorted(a) for a in adj]).astype(np.int32)
    listed = np.arange(50, dtype=np.int32)  # hubs 0..49 listed: leaves of those, and `others`
    rho = 0.4
    rng = np.random.default_rng(5)
    hits_leaf = hits_other = 0
    reps = 200
    for _ in range(reps):
        met, _ = randomness.drawing(
            rng,
            sample_association,
            rho,
            listed,
            block_offsets(degree),
            degree,
            nbr,
            np.zeros(n, dtype=np.uint16),
        )
        met_set = set(met.tolist())
        hits_leaf += sum(1 for v in range(n_hubs, n_hubs + 50 * leaves) if v in met_set)
        hits_other += sum(1 for v in others if v in met_set)
        assert not met_set & set(range(n_hubs + 50 * leaves, n_hubs + n_hubs * leaves))
    trials = reps * 50 * leaves
    assert within(hits_leaf, trials * rho, trials * rho * (1 - rho))
    p = rho / 4
    trials = reps * len(others)
    assert within(hits_other, trials * p, trials * p * (1 - p))


@pytest.mark.parametrize("share", [0.5, 0.002])  # thinned at one bound / one draw each
def test_members_under_effects_act_with_base_risk_deterrence_and_effects(share) -> None:
    """Negative behaviour of members under behaviour effects: per behaviour, effects held
    (a doubling, a halving, both) and deterrence level, the events against the sum of
    min(1, base * risk * deter * effects); members under none come from the buckets."""
    rng = np.random.default_rng(21)
    n, days = 4000, 3000
    risk_values = rng.choice([0.5, 1.0, 9.0, 10.0], n)  # many near the top bound
    risk = TraitBuckets.of(risk_values)
    civic = TraitBuckets.of(rng.lognormal(0.0, 0.5, n))
    affected = np.flatnonzero(rng.random(n) < share).astype(np.int32)
    effects_of = rng.integers(1, 4, len(affected)).astype(np.int64)  # bits 0, 1 or both
    base = np.array([0.004, 0.002, 0.003])
    effect_on = np.array([[1, 0, 0], [1, 1, 0]], dtype=np.uint8)
    multiplier = np.array([2.0, 0.5])
    level = rng.integers(0, 3, n).astype(np.uint8)
    table = np.array([1.0, 0.6, 0.3])
    catalogue = world.Catalogue(base, np.ones(3, dtype=np.uint8), effect_on, multiplier)
    traits = world.Traits.of(risk, civic, risk.rank())
    args = (
        world.NEGATIVE,
        catalogue,
        traits,
        world.bucket_logs(catalogue, traits),
        world.Deterrence(level, table),
        affected,
        effects_of,
        *affected_rows_or_flags(affected, risk.rank(), many=share > 0.01),
        share > 0.01,
    )
    bits = np.zeros(n, dtype=np.int64)
    bits[affected] = effects_of
    factor = np.ones((n, 3))
    for e in range(2):
        factor[(bits >> e & 1) == 1] *= np.where(effect_on[e] == 1, multiplier[e], 1.0)
    p = np.minimum(1.0, base * (risk_values * table[level])[:, None] * factor)
    counts = np.zeros((n, 3), dtype=np.int64)
    draws = np.random.default_rng(3)
    residuals = []
    for _ in range(days):
        actor, beh, residual = with_capacity(draws, 64, world.sample_behaviour, *args)
        np.add.at(counts, (actor, beh), 1)
        residuals.append(residual)
    assert counts.max() <= days
    for b in range(3):
        for held in range(4):
            for lv in range(3):
                cell = (bits == held) & (level == lv)
                expected = days * p[cell, b]
                observed = counts[cell, b].sum()
                assert within(observed, expected.sum(), (expected * (1 - p[cell, b])).sum()), (
                    b, held, lv)  # fmt: skip
    r = np.concatenate(residuals)
    assert within(r.sum(), len(r) / 2, len(r) / 12)


def small_graph_with_ghosts(seed: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """300 members and 20 ghost rows (adults of another city) on a random graph with degrees
    0 to about 20, and two members with more than world.SLOTS neighbours: members, degrees,
    neighbours and the listed rows (ascending)."""
    rng = np.random.default_rng(seed)
    members, rows = 300, 320
    pairs = {(int(a), int(b)) for a, b in rng.integers(0, rows, (1500, 2)) if a != b}
    pairs |= {(hub, int(b)) for hub in (1, 2) for b in rng.choice(rows, world.SLOTS + 9)}
    pairs -= {(1, 1), (2, 2)}
    pairs |= {(b, a) for a, b in pairs}
    isolated = set(range(0, members, 37))  # members with no neighbours meet nobody
    adj: list[list[int]] = [[] for _ in range(rows)]
    for a, b in sorted(pairs):
        if a not in isolated and b not in isolated:
            adj[a].append(b)
    degree = np.array([len(a) for a in adj], dtype=np.uint8)
    nbr = np.concatenate([np.array(a, dtype=np.int32) for a in adj])
    listed = np.flatnonzero(rng.random(rows) < 0.3).astype(np.int32)
    return members, degree, nbr, listed


@pytest.mark.parametrize("sampler", ["listed neighbours", "meetings"])
def test_each_adult_meets_a_listed_neighbour_with_rho_times_its_listed_share(sampler) -> None:
    """Per adult, the days it met a listed neighbour against rho * k_j / deg_j (k_j counts
    listed ghost neighbours too), for both samplers of step 5; the residuals are uniform."""
    members, degree, nbr, listed = small_graph_with_ghosts(3)
    block, in_block, rho, days = block_offsets(degree), offsets_in_block(degree), 0.3, 4000
    rng = np.random.default_rng(8)
    flag = np.zeros(len(degree) // 8, dtype=np.uint8)
    slots = np.zeros(members, dtype=np.uint32)
    relist(flag, slots, listed, block, degree, nbr, in_block)
    is_listed = np.unpackbits(flag, bitorder="little")
    assert np.array_equal(np.flatnonzero(is_listed), listed)
    offsets = np.concatenate([[0], np.cumsum(degree, dtype=np.int64)])
    for j in range(members):
        bits = is_listed[nbr[offsets[j] : offsets[j + 1]]] if degree[j] <= world.SLOTS else []
        assert slots[j] == sum(int(b) << k for k, b in enumerate(bits)), j
    assert (degree[:members] > world.SLOTS).sum() == 2
    # From another list (rows leaving, entering and staying) to this one, as from nobody.
    other = np.flatnonzero(np.random.default_rng(9).random(len(degree)) < 0.3).astype(np.int32)
    flag_b, slots_b = np.zeros_like(flag), np.zeros_like(slots)
    relist(flag_b, slots_b, other, block, degree, nbr, in_block)
    relist(flag_b, slots_b, listed, block, degree, nbr, in_block)
    assert np.array_equal(flag_b, flag) and np.array_equal(slots_b, slots)
    hits = np.zeros(members, dtype=np.int64)
    residuals = []
    for _ in range(days):
        if sampler == "meetings":
            graph = (block, degree, nbr, in_block)
            met, res = with_capacity(rng, 64, sample_meetings, rho, flag, slots, *graph)
        else:
            count = np.zeros(members, dtype=np.uint16)
            met, res = randomness.drawing(
                rng, sample_association, rho, listed, block, degree, nbr, count
            )
        assert len(set(met.tolist())) == len(met) and (met < members).all()
        hits[met] += 1
        residuals.append(res)
    k = np.array([is_listed[nbr[offsets[j] : offsets[j + 1]]].sum() for j in range(members)])
    deg = degree[:members].astype(np.float64)
    p = np.divide(rho * k, deg, out=np.zeros(members), where=deg > 0)
    assert (hits[deg == 0] == 0).all() and (deg == 0).sum() == 9
    assert (p > 0).sum() > 250  # most members have a listed neighbour
    for j in range(members):
        assert within(hits[j], days * p[j], days * p[j] * (1 - p[j])), j
    total = p.sum() * days
    assert within(hits.sum(), total, (days * p * (1 - p)).sum())
    r = np.concatenate(residuals)
    assert within(r.mean() * len(r), len(r) / 2, len(r) / 12)
    assert within((r < 0.1).sum(), 0.1 * len(r), 0.09 * len(r))


def test_population_structure() -> None:
    sc = load_scenario("r1", adults=20001, seed=2)
    sim = Simulation(sc)
    pop = sim.pop
    assert pop.children == round(0.25 * 20001) == 5000
    # Traits: truncated to [0.1, 10] and mean close to 1.
    for trait in (pop.risk, pop.civic):
        assert trait.min() >= 0.1 and trait.max() <= 10
        assert abs(trait.mean() - 1.0) < 5 * trait.std() / math.sqrt(len(trait))
    # Partners pair (2j, 2j+1); the odd last adult has none.
    partner = pop.partner(np.arange(20001))
    assert partner[0] == 1 and partner[1] == 0 and partner[20000] == -1
    # Two parents with probability 0.8 (less the children of the unpaired adult).
    two = (pop.parent2 >= 0).mean()
    assert within(two * pop.children, 0.8 * pop.children, pop.children * 0.16)
    assert (pop.parent2[pop.parent2 >= 0] == partner[pop.parent1[pop.parent2 >= 0]]).all()
    # Graph: undirected, no self-loops or duplicates, mean degree just under 8.
    deg = pop.degree()
    src = np.repeat(np.arange(20001), deg)
    assert (src != pop.nbr).all()
    pairs = set(zip(src.tolist(), pop.nbr.tolist(), strict=True))
    assert len(pairs) == len(src)
    assert all((b, a) in pairs for a, b in list(pairs)[:5000])
    assert 7.9 < deg.mean() <= 8.0


def test_event_residuals_are_uniform() -> None:
    """An event's residual u / p (its thinning uniform u below its probability p) is uniform on
    [0, 1): the share below x of n residuals is binomial(n, x)."""
    sc = load_scenario("r1", adults=100_000, days=1, seed=3)
    sim = Simulation(sc)
    for which in (world.POSITIVE, world.NEGATIVE):
        _, _, residual = sim.world.behaviour(sim.rng_world, which)
        n = len(residual)
        assert n > 2000
        assert residual.min() >= 0.0 and residual.max() < 1.0
        for x in (0.001, 0.01, 0.1, 0.5, 0.9):
            assert within(int((residual < x).sum()), n * x, n * x * (1 - x)), (which, x)
