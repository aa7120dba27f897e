"""The README against the tool: its scenarios and packs are the built-in ones `xinyong list`
shows, and its Python example runs as written (at a smaller size) and reads what it says."""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import pytest

from xinyong.cli import main
from xinyong.scenario import builtin_scenarios
from xinyong.scheme.schema import builtin_packs

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def section(title: str) -> str:
    """The README's text under `## title`, up to the next heading of that level."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else len(README)]


def test_scenario_table_is_the_built_in_scenarios():
    rows = re.findall(r"^\| `([\w-]+)` \|", section("Scenarios and rule packs"), re.M)
    assert sorted(rows) == builtin_scenarios()


def test_packs_named_are_the_built_in_packs():
    text = section("Scenarios and rule packs")
    prose = text[text.index("Rule packs (") :]
    named = set(re.findall(r"`([a-z][\w-]+)`", prose.split("A scenario file")[0]))
    assert named - {"illustrative"} == set(builtin_packs()) | set(builtin_packs("company"))


def test_list_shows_every_scenario_and_pack(capsys):
    with pytest.raises(SystemExit) as done:
        main(["list"])
    assert done.value.code == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["scenarios"].split(", ") == builtin_scenarios()
    assert lines["packs"].split(", ") == builtin_packs()
    assert lines["company packs"].split(", ") == builtin_packs("company")
    assert set(builtin_packs("company")) == {"national-tax-rating", "national-enterprise-lists"}


def python_example() -> str:
    block = section("Python").split("```python\n", 1)[1].split("```", 1)[0]
    # As written but a tenth of the size, so that it runs in CI in seconds.
    smaller = block.replace("adults=50_000", "adults=5_000")
    assert smaller != block, "the example's size changed: update this test"
    return smaller


def test_python_example_runs_and_reads_what_it_says():
    """Every line of the example runs; each bare expression's value is what its comment
    and the text around it promise."""
    scope: dict = {}
    values: list[object] = []  # the bare expressions' values, in order
    for node in ast.parse(python_example()).body:
        if isinstance(node, ast.Expr):
            values.append(eval(compile(ast.Expression(node.value), "<README>", "eval"), scope))
        else:
            exec(compile(ast.Module([node], []), "<README>", "exec"), scope)
    share, by_truth, frame, spells, row, findings, interval = values
    assert 0 <= share <= 1
    assert set(by_truth["truth"].to_list()) <= {"correct", "misattributed", "false_report"}
    assert len(frame) == by_truth["len"].sum()
    assert spells.column_names == ["list", "spells", "ended", "mean_days_capped_at_T"]
    # The interval's bounds are columns of their own; the value lies between them.
    assert list(row.index) == ["value", "low", "high", "count"]
    assert row["low"] <= row["value"] <= row["high"]
    assert row["count"] == round(row["value"] * 5_000)
    assert findings and all(isinstance(f, str) and f for f in findings)
    assert interval == "within-run"
    assert not math.isnan(share)
