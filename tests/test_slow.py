"""Long checks kept out of CI: run with `.venv/bin/pytest -m slow`."""

from __future__ import annotations

from pathlib import Path

import pytest

import xinyong
from xinyong.audit.audit import audit

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_s1_keeps_its_promise(seed: int) -> None:
    """S1 is built to put around 30% of adults on the blacklist, with wrongly listed persons
    in every run, and face recognition's group weights make minorities more often wrong."""
    s = xinyong.run(xinyong.load_scenario("s1", adults=100_000, seed=seed)).summary
    assert 0.2 < s["list_share.blacklist"] < 0.4
    assert s["wrongly_listed_share.blacklist"] > 0
    assert s["wrongly_listed_ratio.blacklist"] > 1


def test_three_cities_audit_end_to_end(tmp_path: Path) -> None:
    sc = xinyong.load_scenario("three-cities", adults=50_000, days=730, seed=5)
    xinyong.run(sc, tmp_path / "run")
    doc = audit(tmp_path / "run")
    assert (tmp_path / "run" / "report.html").stat().st_size > 100_000
    assert doc["metrics"]["negative_events_change"]["value"] < 0


def test_million_adults_deterministic(tmp_path: Path) -> None:
    sc = xinyong.load_scenario("r1", adults=1_000_000, days=60, seed=9)
    a = xinyong.run(sc, tmp_path / "a")
    b = xinyong.run(sc, tmp_path / "b")
    assert a.table("records").equals(b.table("records"))
