"""Structure-aware fuzzing of scenarios and packs: valid documents, mutated, must give exit 0
or exit 2 with one line on stderr, never a traceback. CI runs a few dozen examples at tiny
sizes; `pytest -m slow` runs many more."""

from __future__ import annotations

import copy
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_reliability import main
from xinyong.scenario import load_scenario
from xinyong.scheme.schema import PACKS_DIR

SCENARIO = load_scenario("s1").model_dump(mode="json", exclude_none=True)
PACK = yaml.safe_load((PACKS_DIR / "rongcheng.yaml").read_text())
PACK_TEXT = (PACKS_DIR / "rongcheng.yaml").read_text()
ODD_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    1,
    3,
    2**31,
    -(2**40),
    10**30,
    1e308,
    -0.5,
    math.inf,
    math.nan,
    "",
    "x",
    "1/0",
    "1/3",
    "[red]x[/x]",
    ":100:",
    "nolist",
    "blacklist",
    "AAA",
    "illustrative",
    [],
    [1, "a"],
    {},
    {"a": 1},
]
QUICK = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples on every CI run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MANY = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a document, containers included."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


def at(doc: Any, path: tuple) -> Any:
    for p in path:
        doc = doc[p]
    return doc


@st.composite
def mutated(draw: st.DrawFn, base: dict) -> dict:
    """`base` with one to three changes: a value replaced (by an odd one, or by another
    value of the document), a key deleted, renamed or added."""
    doc = copy.deepcopy(base)
    every = paths(base)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(every[1:]))
        try:
            parent, key = at(doc, path[:-1]), path[-1]
            parent[key]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed it
        op = draw(st.sampled_from(["value", "value", "borrow", "delete", "rename", "add"]))
        if op == "value":
            parent[key] = draw(st.sampled_from(ODD_VALUES))
        elif op == "borrow":
            parent[key] = copy.deepcopy(at(base, draw(st.sampled_from(every))))
        elif op == "delete" and isinstance(parent, dict):
            del parent[key]
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["x", "name", "blacklist", "AAA", "0"]))] = parent.pop(key)
        elif op == "add" and isinstance(parent[key], dict):
            parent[key][draw(st.sampled_from(["extra", "days", "list", "points"]))] = draw(
                st.sampled_from(ODD_VALUES)
            )
    return doc


def command(capsys: pytest.CaptureFixture[str], *args: str | Path) -> None:
    """Run the command in this process; exit 0, or exit 2 with one line; anything that
    escapes (a traceback) fails the example."""
    code, _, err = main(capsys, *args)
    assert code in (0, 2), (code, err)
    if code == 2:
        assert len([ln for ln in err.splitlines() if ln.strip()]) == 1, err
        assert "Traceback" not in err


def dump(doc: Any, path: Path) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path


def check_scenario(doc: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tmp_path = Path(tempfile.mkdtemp(dir=tmp_path))  # tmp_path is shared by the examples
    file = dump(doc, tmp_path / "scenario.yaml")
    command(capsys, "validate", file)
    out = tmp_path / "run"
    command(capsys, "run", file, "--adults", "40", "--days", "3", "--quiet", "--out", out)
    if out.exists():
        command(capsys, "sql", out, "SELECT count(*) FROM records")
        command(capsys, "explain", out, "0", "--json")


def check_pack(doc: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    command(capsys, "validate", dump(doc, tmp_path / "pack.yaml"))


@QUICK
@given(doc=mutated(SCENARIO))
def test_mutated_scenarios(doc: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_scenario(doc, tmp_path, capsys)


@QUICK
@given(doc=mutated(PACK))
def test_mutated_packs(doc: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_pack(doc, tmp_path, capsys)


@QUICK
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, len(PACK_TEXT)),
            st.integers(0, 8),
            st.sampled_from(":-&*[]{}'\"\n #!|>%@`\t"),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_pack_text(
    edits: list[tuple[int, int, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Characters that mean something to YAML, put anywhere (or text cut out)."""
    text = PACK_TEXT
    for pos, cut, char in edits:
        text = text[:pos] + char + text[pos + cut :]
    path = tmp_path / "pack.yaml"
    path.write_text(text)
    command(capsys, "validate", path)


@pytest.mark.slow
@MANY
@given(doc=mutated(SCENARIO))
def test_many_mutated_scenarios(
    doc: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check_scenario(doc, tmp_path, capsys)


@pytest.mark.slow
@MANY
@given(doc=mutated(PACK))
def test_many_mutated_packs(doc: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_pack(doc, tmp_path, capsys)
