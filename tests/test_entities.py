"""The layers run any entity kind through its views: a toy kind ("firm") declared here, with
its own population, behaviours, channel and pack, goes through the same world, observation,
scheme and consequences objects and kernels as adults, with hand-computed results."""

from __future__ import annotations

import numpy as np
import pytest

from xinyong import observe, randomness
from xinyong.consequences import Consequences, reached
from xinyong.entities import EntityKind, compile_entity
from xinyong.observe import CORRECT, MISATTRIBUTED, Channels, Observation, VictimPool, nth_of_group
from xinyong.population import TraitBuckets
from xinyong.scenario import Scenario
from xinyong.scheme.layer import Scheme
from xinyong.threads import Halves
from xinyong.world import NEGATIVE, POSITIVE, Deterrence, Traits, World

FIRM = EntityKind("firm", ("small", "medium", "large"), ("owner",))
FIRMS = 40
ILLUSTRATIVE = {"source": "illustrative", "note": "a test fixture"}


def firm_scenario(late_filing_base: float) -> Scenario:
    """Firms in one city: late filing (-5, kept 365 days) and, for those on `watch`, twice
    as much late payment; a watch list from grade C down, reaching the firm's owner."""
    pack = {
        "id": "firm-rating",
        "kind": "municipal",
        "title": "A toy firm rating",
        "start_score": {"value": 100, **ILLUSTRATIVE},
        "tiers": [
            {"name": "A", "min_score": 90, **ILLUSTRATIVE},
            {"name": "B", "min_score": 70, **ILLUSTRATIVE},
            {"name": "C", "min_score": 40, **ILLUSTRATIVE},
            {"name": "D", **ILLUSTRATIVE},
        ],
        "rules": {"late_filing": {"points": -5, "expiry_days": 365, **ILLUSTRATIVE}},
        "lists": {
            "watch": {
                "kind": "sanction",
                "entry": {"tier_at_most": "C"},
                "exit": {"tier_at_least": "B"},
                **ILLUSTRATIVE,
                "consequences": [
                    {
                        "name": "credit_squeeze",
                        "context": "payments",
                        "effects": [{"context": "payments", "multiplier": 2.0, **ILLUSTRATIVE}],
                    },
                    {"name": "owner_named", "context": "reputation", "target": "owner"},
                ],
            }
        },
    }
    return Scenario.model_validate(
        {
            "name": "firms",
            "days": 30,
            "population": {"adults": FIRMS, "child_ratio": 0, "edges_per_adult": 0},
            "cities": [{"name": "toytown", "share": 1.0, "pack": "firm-rating"}],
            "channels": {"registry": {"detect": 1.0}},
            "behaviours": {
                "late_filing": {
                    "sign": "negative",
                    "context": "filing",
                    "gravity": 1,
                    "channel": "registry",
                    "base": late_filing_base,
                },
                "late_payment": {
                    "sign": "negative",
                    "context": "payments",
                    "gravity": 2,
                    "channel": "registry",
                    "base": 0.5,
                },
                "export_award": {
                    "sign": "positive",
                    "context": "trade",
                    "channel": "registry",
                    "base": 0.0,
                },
            },
            "consequences": {
                "association_behaviour": "late_filing",
                "rho": 0.0,
                "eta": 0.0,
            },
            "observation": {"false_report_rate": 0.0, "false_report_channel": "registry"},
            "packs": {"firm-rating": pack},
        }
    )


class Firms:
    """The layers for the toy kind, stepped like engine.Simulation steps adults."""

    def __init__(self, sc: Scenario) -> None:
        self.tables = tables = compile_entity(sc, FIRM)
        city = np.zeros(FIRMS, dtype=np.uint8)
        group = (np.arange(FIRMS) % 3).astype(np.uint8)  # small, medium, large in turn
        risk = civic = TraitBuckets.of(np.ones(FIRMS))  # traits of 1: probabilities = base
        self.halves = Halves()
        self.scheme = Scheme(
            tables.scheme, tables.world.negative, city, group, (0.0, 1.0), sc.days, self.halves, 3
        )
        st = self.scheme.state
        no_graph = (np.zeros(1, np.int64), np.zeros(FIRMS, np.uint8), np.zeros(0, np.int32))
        self.world = World(
            tables.catalogue,
            Traits.of(risk, civic, risk.rank()),
            Deterrence(st.deter_level, st.deter_table),
            no_graph,
            0.0,
            self.scheme.touched,
        )
        self.observation = Observation(tables.observation, VictimPool.of(city, group, 1, 3))
        rngs = [np.random.default_rng(s) for s in range(5)]
        self.rngs = rngs
        self.consequences = Consequences(sc, tables.consequences, self.scheme, *rngs[:2])
        self.events: list[tuple[np.ndarray, np.ndarray]] = []

    def step(self, t: int) -> None:
        start = self.consequences.start_of_day(self.scheme.take_moved())
        changed = self.scheme.expire(t)
        events = self.world.behaviour(self.rngs[2], NEGATIVE, start.affected, start.effects_of)
        self.events.append((events[0], events[1]))
        positive = self.observation.detect(
            self.rngs[3], *self.world.behaviour(self.rngs[3], POSITIVE)
        )
        records, _ = self.observation.day(self.rngs[4], events, positive)
        assert (records.truth == CORRECT).all() and (records.person == records.actor).all()
        scored = self.scheme.score(t, records)
        self.scheme.tiers_and_lists(t, [*changed, scored.tier_may_move], [])
        self.scheme.take_ended()

    def close(self) -> None:
        self.halves.shutdown()


@pytest.fixture
def firms() -> Firms:
    f = Firms(firm_scenario(late_filing_base=1.0))
    yield f
    f.close()


def test_a_toy_kind_scores_tiers_and_lists_by_its_own_pack(firms: Firms) -> None:
    """Every firm files late every day (base 1, traits 1): -5 a day from 100, so grade A
    through day 1 (90), B through day 5 (70), C from day 6 (65), when `watch` begins."""
    tiers = ["A", "B", "C", "D"]
    for t in range(8):
        firms.step(t)
        st = firms.scheme.state
        assert (st.score[:, 0] == 100 - 5 * (t + 1)).all()
        assert (st.score[:, 1] == st.score[:, 0]).all()  # every record is correct
        expected = "A" if t <= 1 else "B" if t <= 5 else "C"
        assert {tiers[k] for k in st.tier[:, 0]} == {expected}
        on_watch = (st.bits[:, 0] & 1) != 0
        assert on_watch.all() == (t >= 6) and on_watch.any() == (t >= 6)
    assert (firms.scheme.state.since[:, 0, 0] == 6).all()


def test_a_toy_kind_s_effect_acts_on_its_own_behaviours(firms: Firms) -> None:
    """Late payment (base 0.5) is doubled to certainty for firms on `watch` from the day after
    they are listed (start-of-day lists): on days 7 and 8 every firm pays late."""
    for t in range(9):
        firms.step(t)
    payment = firms.tables.world.behaviours.index("late_payment")
    for t, (actor, beh) in enumerate(firms.events):
        late = np.unique(actor[beh == payment])
        if t >= 7:
            assert len(late) == FIRMS, t
        else:  # about half, binomially: 40 firms, p = 1/2
            assert 0 < len(late) < FIRMS, t


def test_a_toy_kind_s_relation_reaches_its_targets() -> None:
    """The watch list's owner-directed sanction is compiled into the `owner` relation's mask,
    and reaches a target through any of its linked members."""
    tables = compile_entity(firm_scenario(1.0), FIRM)
    reach = tables.consequences.relations["owner"]
    assert reach.sanction.tolist() == [1] and reach.privilege.tolist() == [0]
    bits = np.array([1, 0, 0, 1], dtype=np.uint8)  # firms 0 and 3 on watch
    owners_firms = (np.array([0, 1, 2]), np.array([-1, 3, -1]))  # owner 1 owns firms 1 and 3
    city = np.zeros(3, dtype=np.uint8)
    assert reached(reach.sanction, bits, city, owners_firms).tolist() == [True, True, False]


def test_a_victim_pool_of_three_groups_finds_each_member_and_draws_by_weight() -> None:
    """Every member of each group and city is found by rank; misattributed records land on
    each group in proportion to weight x members (the actor excluded): with weights 6, 3, 1
    over equal groups, shares 0.6, 0.3, 0.1, each within 5 binomial standard deviations."""
    rng = np.random.default_rng(3)
    n = 3000
    group = rng.integers(0, 3, n).astype(np.uint8)
    city = (np.arange(n) >= n // 2).astype(np.uint8)
    pool = VictimPool.of(city, group, 2, 3)
    for k in range(2):
        for g in range(3):
            members = np.flatnonzero((city == k) & (group == g))
            assert pool.size[k, g] == len(members)
            found = [
                nth_of_group(group, pool.before, g, pool.start[k, g] + r)
                for r in range(len(members))
            ]
            assert found == members.tolist()
    m = 30_000
    actor = rng.integers(0, n, m).astype(np.int32)
    beh = np.zeros(m, dtype=np.int16)
    channels = Channels(np.zeros(1, np.int64), np.ones(1), np.ones(1), np.array([[6.0, 3.0, 1.0]]))
    words = randomness.words_of(np.random.default_rng(1))
    out, person, _, _, truth, ractor, counts = observe.observe(
        words, actor, beh, rng.random(m), channels, pool
    )
    person, truth, ractor = person[:out], truth[:out], ractor[:out]
    assert out == m and (truth == MISATTRIBUTED).all() and (person != ractor).all()
    assert (city[person] == city[ractor]).all()
    sizes = np.bincount(group, minlength=3)
    share = 6.0 * sizes[0], 3.0 * sizes[1], 1.0 * sizes[2]
    for g in range(3):
        p = share[g] / sum(share)
        hits = int((group[person] == g).sum())
        assert abs(hits - m * p) <= 5 * np.sqrt(m * p * (1 - p)), g
        assert counts[observe.RECORDS, g] == hits  # column G b + g, b = 0
        assert counts[observe.TRUE_EVENTS, g] == int((group[actor] == g).sum())
