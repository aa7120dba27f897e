"""Parameters declared once (issue 25 item 3): the docs' table, per-city slicing and the
memory estimate come from the declarations."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xinyong.entities import compile_entity
from xinyong.params import PER_CITY, city_slice, describe, table
from xinyong.scenario import load_scenario, scenario_model

DOCS = Path(__file__).resolve().parents[1] / "docs" / "parameters.md"


def test_the_docs_table_is_the_declarations() -> None:
    generated = table(describe(scenario_model(), ""))
    assert generated in DOCS.read_text(encoding="utf-8"), "run: xinyong params --markdown"
    cli = subprocess.run(
        [sys.executable, "-m", "xinyong.cli", "params", "--markdown"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert cli.stdout == generated


def test_the_terminal_table_names_the_declared_sources() -> None:
    cli = subprocess.run(
        [sys.executable, "-m", "xinyong.cli", "params"],
        capture_output=True, text=True, check=True, env={**os.environ, "COLUMNS": "400"},
    )  # fmt: skip
    assert "Defaults are illustrative unless a source is named." in cli.stdout
    assert "(source: gov.cn on bank-tax interaction loans" in cli.stdout
    assert "(source: illustrative)" not in cli.stdout


def test_declarations_carry_units_bounds_and_defaults() -> None:
    rows = {r.key: r for r in describe(scenario_model(), "")}
    assert rows["consequences.rho"].default == 0.2
    assert rows["consequences.rho"].bounds == "0 .. 1"
    assert rows["population.edges_per_adult"].bounds == "0 .. 1,000"
    assert rows["population.adults"].default is None
    assert rows["companies.size_shares"].per == "size"
    assert rows["companies.consequences.pi"].unit == "per listed company and day"
    assert rows["consequences.rho"].source == "illustrative"
    assert "PBoC Credit Reference Center" in rows["credit.company_file_share"].source


@dataclass
class Inner:
    by_city: np.ndarray = field(metadata=PER_CITY)
    shared: np.ndarray


@dataclass
class Outer:
    masks: np.ndarray = field(metadata=PER_CITY)
    inner: Inner
    by_name: dict[str, Inner]


def test_city_slice_cuts_every_declared_array_and_nothing_else() -> None:
    inner = Inner(np.arange(3), np.arange(5))
    sliced = city_slice(Outer(np.arange(6).reshape(3, 2), inner, {"a": inner}), 2)
    assert sliced.masks.tolist() == [[4, 5]]
    assert sliced.inner.by_city.tolist() == [2] == sliced.by_name["a"].by_city.tolist()
    assert sliced.inner.shared is inner.shared


def test_a_city_engine_reads_its_own_city_only() -> None:
    sc = load_scenario("three-cities", adults=3000, days=5)
    full = compile_entity(sc)
    for k in range(len(sc.cities)):
        one = full.for_city(k)
        assert one.scheme.city_pack.tolist() == [full.scheme.city_pack[k]]
        assert (one.scheme.min_stay[0] == full.scheme.min_stay[k]).all()
        assert (one.consequences.effect_mask[0] == full.consequences.effect_mask[k]).all()
        for name, reach in one.consequences.relations.items():
            assert reach.sanction.tolist() == [full.consequences.relations[name].sanction[k]]


def test_defaults_are_shown_as_a_reader_writes_them() -> None:
    from xinyong.params import shown

    assert shown({"micro": 0.1, "large": 0.95}) == "micro 0.1, large 0.95"
    assert shown(("A", "B", "M")) == "A, B, M"
    assert shown(1 / 200) == "0.005" and shown(None) == "required" and shown([]) == "none"
