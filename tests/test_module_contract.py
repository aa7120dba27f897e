"""The module contract (issue 25): a module written in one file of the tests
(tests/reviews_module.py) is built, stepped on its clock, recorded, summarised, explained,
sharded, checkpointed and resumed by the engine without any change outside its file."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import xinyong
from tests.test_reliability import cli, main
from tests.test_resume import digests, killed
from xinyong import modules, shard, sizing
from xinyong.audit.hooks import adult_lines, explain
from xinyong.errors import XinyongError
from xinyong.module import Step
from xinyong.params import describe
from xinyong.scenario import load_scenario

REVIEWS = {"every": 30, "threshold": 1000, "sample": 0.5}


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The module registered here and, for the command line's processes, by environment."""
    monkeypatch.setenv(modules.ENV, "reviews=tests.reviews_module")
    modules.register("reviews", "tests.reviews_module")
    yield
    modules.unregister("reviews")


def reviewed(name: str = "r1", adults: int = 2000, days: int = 90, **reviews: object):
    return load_scenario(
        name, overrides={"reviews": {**REVIEWS, **reviews}}, adults=adults, days=days, seed=4
    )


def test_a_step_runs_on_its_clock() -> None:
    yearly = Step(after=9, method="rate", every=365, phase=364)
    assert [t for t in range(800) if yearly.due(t)] == [364, 729]
    assert all(Step(after=0, method="daily").due(t) for t in range(3))
    with pytest.raises(ValueError, match="runs after one of the steps"):
        Step(after=5, method="inside_observation")
    with pytest.raises(ValueError, match="phase"):
        Step(after=9, method="m", every=30, phase=30)


def test_every_adult_is_looked_at_by_each_review_that_falls_within_the_run() -> None:
    """sample = 1: reviews on days 29, 59 and 89 of a 90-day run; 2 in an 89-day one."""
    for days, reviews in ((90, 3), (89, 2)):
        run = xinyong.run(reviewed(adults=500, days=days, sample=1.0))
        table = run.table("reviews")
        assert table.num_rows == 500
        assert set(table["reviewed"].to_pylist()) == {reviews}


def test_the_module_reads_the_engine_state_it_reviews(tmp_path: Path) -> None:
    """The last review is on the last day: whoever it looked at is noted below the threshold
    exactly when their recorded score at T is below it."""
    run = xinyong.run(reviewed(), tmp_path / "run")
    rows = run.sql(
        "SELECT r.below_last, p.score < 1000 AS low, r.reviewed, r.below "
        "FROM reviews r JOIN persons p ON p.person = r.adult WHERE r.looked_last"
    ).to_pydict()
    assert len(rows["low"]) > 500
    assert rows["below_last"] == rows["low"]
    assert any(rows["low"]) and not all(rows["low"])
    everyone = run.table("reviews")
    looked = np.array(everyone["reviewed"].to_pylist())
    assert (np.array(everyone["below"].to_pylist()) <= looked).all()
    # Three reviews of half the adults each: Binomial(3, 1/2) per adult, 5 standard deviations.
    n = len(looked)
    assert abs(looked.mean() - 1.5) < 5 * np.sqrt(0.75 / n)
    ever = run.sql("SELECT count(*) FILTER (below > 0) AS n FROM reviews")["n"][0].as_py()
    assert run.summary["reviews.ever_below_share"] == ever / 2000
    assert run.meta["reviews"] == {"threshold": 1000}


def test_adding_a_module_changes_no_adult_table(tmp_path: Path) -> None:
    """A module's streams are its own: the adults' draws are those of the run without it."""
    with_it = xinyong.run(reviewed(days=40), tmp_path / "with")
    plain = load_scenario("r1", adults=2000, days=40, seed=4)
    without = xinyong.run(plain, tmp_path / "without")
    ours = digests(with_it.path)
    assert ours.pop("reviews")
    assert ours == digests(without.path)


def test_cities_and_shards_carry_it() -> None:
    """Each city engine holds its adults' part of the module; the table is the same however
    the cities are shared out."""
    sc = reviewed("three-cities", adults=3000, days=60)
    tables = [shard.run_in_process(sc, None, bins=bins).tables["reviews"] for bins in (1, 2)]
    assert tables[0].equals(tables[1])
    assert tables[0]["adult"].to_pylist() == list(range(3000))


def test_a_killed_run_resumes_with_the_module_state(tmp_path: Path) -> None:
    scenario = tmp_path / "reviewed.yaml"
    scenario.write_text(
        "name: reviewed\nextends: s1\nreviews: {every: 7, threshold: 1000, sample: 0.5}\n"
    )
    out = tmp_path / "run"
    size = ("--adults", "3000", "--days", "300", "--seed", "5")
    killed(out, str(scenario), *size, "--checkpoint-days", "10", sig=signal.SIGKILL)
    res = cli("run", "--resume", out, "--quiet")
    assert res.returncode == 0, res.stderr
    sc = load_scenario(scenario, adults=3000, days=300, seed=5)
    ref = xinyong.run(sc, tmp_path / "ref", checkpoint_days=0)
    assert digests(out) == digests(ref.path)


def test_declarations_feed_sizing_docs_and_checks() -> None:
    sc = reviewed()
    plain = load_scenario("r1", adults=2000, days=90, seed=4)
    assert sizing.estimate(sc) - sizing.estimate(plain) == 4 * 2000
    rows = {row.key: row for row in describe(type(sc), "")}
    assert rows["reviews.every"].unit == "days"
    assert rows["reviews.every"].bounds == "1 .. 365"
    assert rows["reviews.threshold"].default is None  # required
    with pytest.raises(XinyongError) as err:
        reviewed(days=20)
    assert err.value.field == "reviews.every (from --set)"  # given as an override
    assert "no review would fall within the run" in str(err.value)


def test_explain_lines_come_from_the_module(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = xinyong.run(reviewed(adults=500, sample=1.0), tmp_path / "run")
    with run.connect() as con:
        lines = adult_lines(con, run.meta, 7)
    (below,) = run.sql("SELECT below FROM reviews WHERE adult = 7")["below"].to_pylist()
    assert lines == [f"looked at by 3 reviews, below 1000 points at {below}"]
    assert explain(run.path, "adult", 7)["modules"] == lines  # xinyong explain's document
    code, out, _ = main(capsys, "explain", run.path, "7")  # and its story in the terminal
    assert code == 0 and lines[0] in " ".join(out.split())
