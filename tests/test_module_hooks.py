"""The contract's hooks for modules that act inside the day (issue 26): true events a module
adds to step 4 are observed and scored like the adults' own, and `Context.today` shows the
start-of-day lists and the day's book (tests/tips_module.py)."""

from __future__ import annotations

from collections.abc import Iterator

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
