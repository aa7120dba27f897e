"""Runs the hand-computed YAML cases in tests/cases/."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import quiet_scenario
from xinyong.engine import Simulation

CASES = [
    case
    for path in sorted((Path(__file__).parent / "cases").glob("*.yaml"))
    if path.name != "companies.yaml"  # test_company_cases.py
    for case in yaml.safe_load(path.read_text())
]


def lists_of(sim: Simulation, person: int, world: int) -> list[str]:
    bits = int(sim.scheme.state.bits[person, world])
    return [name for i, name in enumerate(sim.tables.scheme.lists) if bits >> i & 1]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict) -> None:
    script = {int(d): [list(e) for e in evs] for d, evs in (case.get("events") or {}).items()}
    sc = quiet_scenario(
        adults=case.get("adults", 2),
        days=case["days"],
        overrides=case.get("set"),
        base=case.get("base", "r1"),
    )
    sim = Simulation(sc.with_(script=script))
    by_day: dict[int, list[dict]] = {}
    for row in case["expect"]:
        by_day.setdefault(row["day"], []).append(row)
    for t in range(sc.days):
        sim.step(t)
        for row in by_day.get(t, []):
            p = row["person"]
            where = f"day {t}, person {p}"
            city_pack = sim.tables.scheme.city_pack[sim.pop.city[p]]
            tiers = sim.tables.scheme.tier_names[city_pack]
            if "score" in row:
                assert sim.scheme.state.score[p, 0] == row["score"], where
            if "shadow_score" in row:
                assert sim.scheme.state.score[p, 1] == row["shadow_score"], where
            if "tier" in row:
                assert tiers[sim.scheme.state.tier[p, 0]] == row["tier"], where
            if "lists" in row:
                assert lists_of(sim, p, 0) == row["lists"], where
            if "shadow_lists" in row:
                assert lists_of(sim, p, 1) == row["shadow_lists"], where
            if "deter" in row:
                assert sim.scheme.state.deter[p] == pytest.approx(row["deter"]), where
