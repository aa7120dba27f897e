"""Shared helpers: quiet scenarios where only scripted events happen; the flags headless
chromium runs with in the browser tests."""

from __future__ import annotations

from typing import Any

import pytest

from xinyong.scenario import Scenario, load_scenario

# Headless, and nothing fetched: without the background-networking flags chromium tries
# hosts this machine cannot reach.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def quiet_scenario(
    adults: int = 2, days: int = 10, overrides: dict[str, Any] | None = None, base: str = "r1"
) -> Scenario:
    """`base` with no random behaviour, meetings or false reports; every channel sees all,
    correctly. Only scripted events happen, so results can be computed by hand."""
    sc = load_scenario(base)
    quiet: dict[str, Any] = {
        "population.adults": adults,
        "population.child_ratio": 0,
        "population.edges_per_adult": 0,
        "days": days,
        "observation.false_report_rate": 0,
        "consequences.rho": 0,
    }
    for b in sc.behaviours:
        quiet[f"behaviours.{b}.base"] = 0
    for c in sc.channels:
        quiet[f"channels.{c}.detect"] = 1
        quiet[f"channels.{c}.misattribute"] = 0
    quiet.update(overrides or {})
    return load_scenario(base, overrides=quiet)


def quiet_companies(
    adults: int = 2, companies: int = 2, days: int = 10, overrides: dict[str, Any] | None = None
) -> Scenario:
    """C1 as quiet as `quiet_scenario`: no random adult or company behaviour, no false
    reports, no firm without income; every company channel sees all, correctly; micro firms
    with full indicators."""
    sc = load_scenario("c1")
    co = sc.companies
    assert co is not None
    quiet: dict[str, Any] = {
        "companies.per_adult": companies / adults,
        "companies.observation.false_report_rate": 0,
        "companies.no_income_share": 0,
        "companies.size_shares": {"micro": 1.0, "small": 0.0, "medium": 0.0, "large": 0.0},
        "companies.full_indicators": dict.fromkeys(("micro", "small", "medium", "large"), 1.0),
    }
    for b in co.behaviours:
        quiet[f"companies.behaviours.{b}.base"] = 0
    for c in co.channels:
        quiet[f"companies.channels.{c}.detect"] = 1
        quiet[f"companies.channels.{c}.misattribute"] = 0
    quiet.update(overrides or {})
    return quiet_scenario(adults, days, quiet, base="c1")


@pytest.fixture(scope="session")
def small_r1_run():
    """One R1 run shared by the property tests (5,000 adults, 400 days: expiries happen)."""
    import xinyong

    sc = load_scenario("s1", adults=5000, days=400, seed=7)
    return xinyong.run(sc)
