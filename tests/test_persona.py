"""Personas: a life history run exactly through city packs, checked by hand."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from xinyong.cli import main
from xinyong.errors import XinyongError
from xinyong.persona import builtin_personas, load_persona, run_persona

HAND = """\
name: hand-case
description: a jaywalk, a wrong camera record, a court default and its settlement
days: 40
acts:
  - {behaviour: jaywalking, day: 0}
  - {behaviour: jaywalking, day: 2, record: wrong}
  - {behaviour: court_judgment_default, day: 5}
settle_days: [8]
"""


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("persona") / "hand.yaml"
    path.write_text(HAND)
    return path


def test_the_same_life_in_three_cities_by_hand(hand: Path) -> None:
    rong, wuxi, suqian = run_persona(load_persona(hand), ["rongcheng", "wuxi-afu", "suqian"])
    # Rongcheng: -3 (own), -3 (someone else's act, recorded world only), -50 and the court's
    # list from day 5 until the debt is paid on day 8.
    assert (rong.score[0], rong.score[2], rong.shadow_score[2]) == (997, 994, 997)
    assert (rong.score[5], rong.shadow_score[5], rong.tier[5]) == (944, 947, "B")
    assert rong.lists[4:9] == [[], ["defaulters"], ["defaulters"], ["defaulters"], []]
    assert rong.days_on() == {"defaulters": 3}
    assert rong.summary()["sanctions"] == []
    # Wuxi: the court default pushes both worlds to 649 (so the wrong record stops mattering)
    # and takes the top band's privileges.
    assert (wuxi.score[2], wuxi.lists[2]) == (994, ["whitelist"])
    assert (wuxi.score[5], wuxi.shadow_score[5], wuxi.tier[5]) == (649, 649, "500-650")
    assert wuxi.lists[5] == ["defaulters"] and wuxi.lists[8] == []
    # Suqian: the court's list on day 5 (a direct listing), the points at the recalculation
    # of day 30 only.
    assert suqian.score[29] == 1000 and suqian.lists[5] == ["defaulters"]
    assert (suqian.score[30], suqian.shadow_score[30], suqian.tier[30]) == (944, 947, "BBB")


def test_the_command_prints_and_writes_the_same_numbers(
    hand: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["persona", str(hand), "--packs", "rongcheng,wuxi-afu", "--out", str(tmp_path)])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert "hand-case, 40 days" in printed and "649" in printed
    summary = json.loads((tmp_path / "persona.json").read_text())
    assert [c["days_on"] for c in summary["cities"]] == [
        {"defaulters": 3},
        {"whitelist": 5, "defaulters": 3},
    ]
    rows = list(csv.DictReader((tmp_path / "persona.csv").open()))
    assert len(rows) == 2 * 40
    day5 = {r["pack"]: r for r in rows if r["day"] == "5"}
    assert (day5["wuxi-afu"]["score"], day5["wuxi-afu"]["lists"]) == ("649", "defaulters")
    assert "flight_ban" in day5["rongcheng"]["sanctions"].split(";")
    page = (tmp_path / "persona.html").read_text()
    assert "Plotly.newPlot" in page and "<script src" not in page  # nothing fetched


def test_builtin_personas_load_and_run() -> None:
    names = builtin_personas()
    assert {"delivery-rider", "retired-volunteer", "small-trader", "student-poster"} <= set(names)
    trader = load_persona("small-trader")
    short = trader.model_copy(update={"days": 120})
    (life,) = run_persona(short, ["fuzhou-jasmine"])
    # Two missed loan payments (-10 each, Xiamen's amounts), a court default (-100).
    assert life.score[-1] == 500 - 10 - 10 - 100 - 5 * 3 and life.lists[-1] == ["defaulters"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nacts: [{behaviour: flying, day: 1}]\n", "unknown behaviour 'flying'"),
        ("name: x\ndays: 10\nacts: [{behaviour: jaywalking, day: 10}]\n", "after the last day"),
        ("name: x\nacts: [{behaviour: jaywalking}]\n", "either 'day' or 'every_days'"),
    ],
)
def test_a_bad_persona_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(XinyongError, match=message) as err:
        load_persona(path)
    assert err.value.line is not None


def test_only_city_packs_run_a_persona(hand: Path) -> None:
    with pytest.raises(XinyongError, match="not a city's"):
        run_persona(load_persona(hand), ["national-defaulters"])


def test_the_web_page_runs_a_builtin_persona(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from xinyong.web.app import create_app
    from xinyong.web.settings import Settings

    with TestClient(
        create_app(Settings(runs=tmp_path, warm=False)), base_url="http://localhost"
    ) as client:
        form = client.get("/persona")
        assert form.status_code == 200 and 'value="small-trader"' in form.text
        page = client.get("/persona", params={"name": "small-trader", "packs": ["wuxi-afu"]})
        assert page.status_code == 200
        (life,) = run_persona(load_persona("small-trader"), ["wuxi-afu"])
        assert f"<td>{life.score[-1]} (from 1000)</td>" in page.text
        assert "Plotly.newPlot" in page.text and '<script src="http' not in page.text
        assert client.get("/persona", params={"name": "../x"}).status_code == 404
        bad = client.get(
            "/persona", params={"name": "small-trader", "packs": ["national-defaulters"]}
        )
        assert bad.status_code == 422
