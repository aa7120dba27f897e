"""Scenarios for the multi-city tests (test_shard.py, test_cluster.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xinyong.scenario import Scenario, load_scenario

PACKS = ("rongcheng", "suqian", "xiamen-egret")
# Rongcheng's adults start 10 points above grade D, so some reach its blacklist within days
# and the association step, the only one that reads other cities, has listed neighbours.
PRESSED = {"packs.rongcheng.start_score.value": 610}


def three_cities(adults: int = 3000, days: int = 40, seed: int = 3) -> Scenario:
    return load_scenario("three-cities", adults=adults, days=days, seed=seed, overrides=PRESSED)


def many_cities(k: int = 300, adults: int = 3000, days: int = 12, seed: int = 4) -> Scenario:
    """three-cities' packs over k cities of equal share, 10% of edges across cities."""
    cities: list[dict[str, Any]] = [
        {"name": f"city{i:03d}", "share": 1 / k, "pack": PACKS[i % 3]} for i in range(k)
    ]
    return load_scenario(
        "three-cities", adults=adults, days=days, seed=seed, overrides={**PRESSED, "cities": cities}
    )


def run_in_shards(sc: Scenario, path: Path, bins: int) -> Path:
    """A run directory of `sc` from `bins` shards in this process (shard.run_in_process)."""
    from xinyong.shard import run_in_process

    path.mkdir(parents=True, exist_ok=True)
    (path / "scenario.yaml").write_text(sc.to_yaml())
    run_in_process(sc, path, bins=bins)
    return path
