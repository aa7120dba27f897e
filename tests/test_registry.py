"""The metric registry: every metric of an audit is declared there (key, meaning, legal
mapping), every summary key has a meaning, and docs/model.md's metric tables are the ones the
registry generates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import xinyong
from xinyong.audit.hooks import all_metrics, docs_tables, module_audits
from xinyong.audit.registry import METRICS, Law, Metric, metric_tables, summary_meaning

DOCS = Path(__file__).parents[1] / "docs" / "model.md"
BEGIN = "<!-- Generated from the metric registry"
END = "<!-- End of the generated metric tables. -->"


def _pattern(m: Metric) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{\w+\\\}", "[^.]+", re.escape(m.name)) + "$")


@pytest.fixture(scope="module")
def audited(tmp_path_factory) -> dict:
    """A small C1 run (adults and companies) audited with its scheme-off baseline."""
    out = tmp_path_factory.mktemp("registry") / "run"
    xinyong.run(xinyong.load_scenario("c1", adults=3000, days=400, seed=2), out=out)
    return xinyong.audit(out, baseline=True).doc


def test_docs_metric_tables_are_generated_from_the_registry() -> None:
    text = DOCS.read_text("utf-8")
    block = text[text.index(BEGIN) : text.index(END)]
    assert block.split("\n", 2)[2] == docs_tables(), "regenerate with hooks.docs_tables()"


def test_metric_tables_by_hand() -> None:
    law = Law("short", "full")
    a = Metric("a.{list}", "T1", "def a", "meaning {list}", law, ("persons",))
    b = Metric("b", "T2", "def b", "mb", law, ("spells", "records"), docs_maps_to="more")
    assert metric_tables([a, b], {"T2": "A note."}) == (
        "### T1\n\n| name | definition | maps to | tables |\n|---|---|---|---|\n"
        "| `a.{list}` | def a | short | persons |\n\n"
        "### T2\n\n| name | definition | maps to | tables |\n|---|---|---|---|\n"
        "| `b` | def b | more | spells, records |\n\nA note.\n"
    )


def test_a_row_fills_its_templates_and_keeps_its_counts() -> None:
    spec = next(m for m in METRICS if m.name == "ever_wrongly_listed_share_by_group.{list}.{group}")
    m: dict = {}
    spec.fraction(m, 3, 12, list="blacklist", group="minority")
    row = m["ever_wrongly_listed_share_by_group.blacklist.minority"]
    assert row["value"] == 0.25 and (row["count"], row["of"]) == (3, 12)
    assert row["meaning"] == (
        "minority adults wrongly on blacklist on at least one day, of all minority adults"
    )
    assert row["maps_to"] == spec.maps_to.full and row["interval"] == "within-run"
    assert 0 < row["low"] < 0.25 < row["high"] < 1


def test_every_audit_metric_is_declared(audited: dict) -> None:
    specs = all_metrics()
    names = [m.name for m in specs]
    assert len(names) == len(set(names))
    patterns = [(_pattern(m), m) for m in specs]
    laws = {m.maps_to.full for m in specs}
    seen = set()
    for key, row in audited["metrics"].items():
        found = [m for p, m in patterns if p.match(key)]
        assert len(found) == 1, f"{key}: declared {len(found)} times"
        seen.add(found[0].name)
        assert row["maps_to"] in laws, key
    assert any(n.startswith("company.") for n in seen)  # the module's rows are declared too
    assert len(seen) >= 40


def test_every_summary_key_has_a_meaning(audited: dict) -> None:
    skip = {"scenario", "adults", "children", "days", "seed", "records", "wall_seconds"}
    keys = [
        k
        for k, v in audited["run"].items()
        if k not in skip and isinstance(v, int | float) and not isinstance(v, bool)
    ]
    assert any(k.startswith("company.") for k in keys)
    vague = [k for k in keys if summary_meaning(k, module_audits()).startswith("summary metric")]
    assert vague == []
    assert summary_meaning("wrongly_listed_share_by_group.blacklist.minority") == (
        "share of minority adults wrongly on blacklist at T"
    )
