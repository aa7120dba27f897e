"""Runs the hand-computed company cases in tests/cases/companies.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import quiet_companies
from xinyong.companies.rating import GRADE_NAMES
from xinyong.engine import Simulation

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "companies.yaml").read_text())


def company_lists(sim: Simulation, company: int, world: int) -> list[str]:
    co = sim.module("companies").layer
    bits = int(co.state.bits[company, world])
    order = co.lists.rules.order.tolist()
    return [co.lists.names[li] for li in order if bits >> li & 1]


def person_lists(sim: Simulation, person: int, world: int) -> list[str]:
    bits = int(sim.scheme.state.bits[person, world])
    return [name for i, name in enumerate(sim.tables.scheme.lists) if bits >> i & 1]


@pytest.mark.parametrize("case", CASES, ids=[c["name"][:60] for c in CASES])
def test_company_case(case: dict) -> None:
    script = {int(d): [list(e) for e in evs] for d, evs in (case.get("events") or {}).items()}
    sc = quiet_companies(
        adults=case.get("adults", 2),
        companies=case.get("companies", 2),
        days=case["days"],
        overrides={**(case.get("set") or {}), "companies.script": script},
    )
    sim = Simulation(sc)
    co = sim.module("companies").layer
    assert co is not None and len(co) == case.get("companies", 2)
    by_day: dict[int, list[dict]] = {}
    for row in case["expect"]:
        by_day.setdefault(row["day"], []).append(row)
    for t in range(sc.days):
        sim.step(t)
        for row in by_day.get(t, []):
            if "company" in row:
                c = row["company"]
                where = f"day {t}, company {c}"
                if "grade" in row:
                    assert GRADE_NAMES[co.state.grade[c, 0]] == row["grade"], where
                if "score" in row:
                    assert co.ratings[-2][2].score[c] == row["score"], where  # recorded world
                if "lists" in row:
                    assert company_lists(sim, c, 0) == row["lists"], where
                if "shadow_lists" in row:
                    assert company_lists(sim, c, 1) == row["shadow_lists"], where
            else:
                p = int(co.pop.legal_rep[row["legal_rep_of"]])
                where = f"day {t}, legal representative {p} of {row['legal_rep_of']}"
                if "lists" in row:
                    assert person_lists(sim, p, 0) == row["lists"], where
                if "shadow_lists" in row:
                    assert person_lists(sim, p, 1) == row["shadow_lists"], where
