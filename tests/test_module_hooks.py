"""The contract's hooks for modules that act inside the day (issue 26): true events a module
adds to step 4 are observed and scored like the adults' own, and `Context.today` shows the
start-of-day lists and the day's book (tests/tips_module.py)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import xinyong
from tests.conftest import quiet_scenario
from xinyong import modules
from xinyong.engine import Simulation


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    modules.register("tips", "tests.tips_module")
    yield
    modules.unregister("tips")


def tipped(behaviour: str, days: int = 5) -> object:
    return quiet_scenario(
        adults=3, days=days,
        overrides={"tips": {"adult": 1, "behaviour": behaviour}, "consequences.pi": 0},
    )  # fmt: skip


def test_module_events_are_observed_and_scored_like_step_4s() -> None:
    """Jaywalking every day (-3, every channel sees all correctly): five records against
    adult 1, its score 1000 - 15, the module counting one record of it in each day's book."""
    run = xinyong.run(tipped("jaywalking"))
    records = run.sql(
        "SELECT day, person, actor, truth::VARCHAR AS truth FROM records ORDER BY day"
    ).to_pydict()
    assert records == {
        "day": [0, 1, 2, 3, 4], "person": [1] * 5, "actor": [1] * 5, "truth": ["correct"] * 5,
    }  # fmt: skip
    scores = run.sql("SELECT person, score FROM persons WHERE person < 3 ORDER BY person")
    assert scores["score"].to_pylist() == [1000, 985, 1000]
    assert run.table("tips")["records"].to_pylist() == [1] * 5


def test_today_shows_the_lists_as_they_stood_at_the_start_of_the_day() -> None:
    """A court_judgment_default on day 0 lists adult 1 on defaulters on day 0: the module
    sees it at the start of day 1, not of day 0."""
    run = xinyong.run(tipped("court_judgment_default", days=3))
    assert run.table("tips")["settling_at_start"].to_pylist() == [False, True, True]


def test_only_modules_that_add_events_are_asked() -> None:
    assert Simulation(tipped("jaywalking")).event_modules
    assert not Simulation(quiet_scenario(adults=3, days=2)).event_modules


# -- entity kinds: a module reads and acts on another module's entities ---------------------


@pytest.fixture
def stalls() -> Iterator[None]:
    """The inspector registered before the stalls it inspects: `connect` comes after every
    module is built, whatever the registry's order."""
    modules.register("inspector", "tests.inspector_module")
    modules.register("stalls", "tests.stalls_module")
    yield
    modules.unregister("stalls")
    modules.unregister("inspector")


def inspected(**stalls: object) -> object:
    return quiet_scenario(
        adults=3, days=4, overrides={"stalls": stalls, "inspector": {"behaviour": "fined"}}
    )


@pytest.mark.usefixtures("stalls")
def test_a_module_reads_and_adds_to_another_modules_entity_kind() -> None:
    """Day t: the inspector sees stall t mod 3's list in both worlds (stall 1 closed in the
    recorded world only) and its licence (stall 2 provisional), and fines it; the stalls'
    step of the same day takes the fine, with the inspector's own uniform."""
    sim = Simulation(inspected())
    inspector = sim.module("inspector")
    assert inspector.kinds_at_init == []  # built first: the kinds come at connect
    for t in range(4):
        sim.step(t)
    sim.finish()
    seen = sim.recorder.in_memory["inspections"].to_pydict()
    assert seen == {
        "day": [0, 1, 2, 3], "stall": [0, 1, 2, 0], "closed": [0, 1, 0, 0],
        "closed_shadow": [0, 0, 0, 0], "licence": [0, 0, 1, 0],
    }  # fmt: skip
    events = sim.recorder.in_memory["stall_events"].to_pydict()
    assert events["day"] == [0, 1, 2, 3]
    assert events["stall"] == [0, 1, 2, 0]
    assert events["behaviour"] == [0] * 4  # "fined", index 0 of the stalls' catalogue
    assert all(0 <= u < 1 for u in events["uniform"])
    assert len(set(events["uniform"])) == 4


@pytest.mark.usefixtures("stalls")
def test_without_the_kind_connect_fails_by_its_name_and_an_unknown_list_holds_nobody() -> None:
    sc = quiet_scenario(adults=3, days=2, overrides={"inspector": {}})
    with pytest.raises(KeyError, match="stall"):
        Simulation(sc)
    sim = Simulation(quiet_scenario(adults=3, days=2, overrides={"stalls": {}}))
    assert sim.module("stalls").ctx.views["stall"].lists == ("closed",)
    assert (
        sim.module("stalls").entity_view().listed("open", np.arange(3)).tolist()
        == [[False, False]] * 3
    )
