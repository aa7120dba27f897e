"""`xinyong explain`: one adult's timeline, checked against numbers worked out by hand on quiet
runs (only scripted events), and against the engine's final state on a stressed random run."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import xinyong
from tests.conftest import quiet_scenario
from xinyong.audit.explain import Explainer, explain, render, render_story
from xinyong.errors import XinyongError
from xinyong.words import label

KEYS = [
    "person",
    "records",
    "blamed_others",
    "score_path",
    "grade_changes",
    "spells",
    "sanctions",
    "children",
    "appeals",
    "modules",
    "story",
]


def quiet_run(
    tmp_path: Path, days: int, script: dict[int, list[tuple[int, str]]], **overrides: Any
) -> Path:
    out = tmp_path / "run"
    xinyong.run(quiet_scenario(adults=2, days=days, overrides=overrides), out=out, script=script)
    return out


def path_of(report: dict[str, Any]) -> list[tuple[int, int, int]]:
    return [(s["day"], s["score"], s["shadow_score"]) for s in report["score_path"]]


def final_scores(report: dict[str, Any]) -> tuple[int, int]:
    start = report["person"]["start_score"]
    last = report["score_path"][-1] if report["score_path"] else {}
    return last.get("score", start), last.get("shadow_score", start)


def text_of(report: dict[str, Any]) -> str:
    buffer = io.StringIO()
    render(report, Console(file=buffer, width=240))
    return buffer.getvalue()


def test_misattributed_record_with_upheld_appeal(tmp_path: Path) -> None:
    """Adult 0 jaywalks on day 0; the camera blames adult 1 (-3), who appeals; upheld on day 2."""
    run = quiet_run(
        tmp_path,
        6,
        {0: [(0, "jaywalking")]},
        **{
            "channels.camera.misattribute": 1.0,
            "appeals.alpha": 1.0,
            "appeals.upheld": 1.0,
            "appeals.appeal_days": 2,
        },
    )
    victim = explain(run, 1)
    assert list(victim) == KEYS
    (rec,) = victim["records"]
    assert rec["truth"] == "misattributed" and rec["actor"] == 0
    assert (rec["day"], rec["points"], rec["shadow_points"], rec["expiry_day"]) == (0, -3, 0, 365)
    assert (rec["appealed"], rec["decision_day"], rec["upheld"]) == (True, 2, True)
    assert path_of(victim) == [(0, 997, 1000), (2, 1000, 1000)]
    assert victim["score_path"][1]["changes"][0]["event"] == "appeal upheld"
    assert victim["grade_changes"] == []  # 997 is still grade A (>= 960)
    assert [(a["record_id"], a["filed_day"], a["outcome"]) for a in victim["appeals"]] == [
        (0, 0, "upheld")
    ]
    assert victim["blamed_others"] == []
    assert (victim["person"]["score"], victim["person"]["deter"]) == (1000, 0.95)

    actor = explain(run, 0)
    assert actor["records"] == [] and actor["score_path"] == []
    (blamed,) = actor["blamed_others"]
    assert (blamed["record_id"], blamed["person"], blamed["points"], blamed["upheld"]) == (
        0,
        1,
        -3,
        True,
    )
    assert "misattributed (true actor 0)" in text_of(victim)
    assert "upheld (day 2)" in text_of(actor)


def test_wrong_blacklisting_reasons_sanctions_and_children(tmp_path: Path) -> None:
    """Start 600 (grade C): one misattributed -3 on day 12 puts adult 1 at D and on the
    blacklist; the record expires on day 22 (C again), after the 5-day minimum stay."""
    run = quiet_run(
        tmp_path,
        30,
        {12: [(0, "jaywalking")]},
        **{
            "packs.rongcheng.start_score.value": 600,
            "packs.rongcheng.rules.jaywalking.expiry_days": 10,
            "packs.rongcheng.lists.blacklist.min_stay_days": 5,
            "channels.camera.misattribute": 1.0,
            "appeals.alpha": 0.0,
            "population.child_ratio": 1.0,
            "population.two_parent_share": 1.0,
        },
    )
    report = explain(run, 1)
    assert path_of(report) == [(12, 597, 600), (22, 600, 600)]
    assert [(g["day"], g["world"], g["from"], g["to"]) for g in report["grade_changes"]] == [
        (12, "recorded", "C", "D"),
        (22, "recorded", "D", "C"),
    ]
    (spell,) = report["spells"]  # no shadow spell: the shadow score never left 600
    assert (spell["list"], spell["world"], spell["start"], spell["end"], spell["days"]) == (
        "blacklist",
        "recorded",
        12,
        22,
        10,
    )
    assert spell["began"] == "tier fell to D on day 12 after record 0 (jaywalking, misattributed)"
    assert spell["ended"] == (
        "grade C on day 22 after expiry of record 0 (jaywalking, misattributed)"
    )
    assert (spell["wrongly_listed"], spell["wrong_days"]) == (True, 10)
    assert report["story"]["verdict"] == (
        "Was wrongly on the blacklist for 10 days (from day 12 to day 22) because of a "
        "misattributed jaywalking record (camera) that belonged to adult 0; never appealed."
    )

    (sanction,) = report["sanctions"]
    targets = {c["name"]: (c["target"], c["kind"]) for c in sanction["consequences"]}
    assert targets["loan_ban"] == ("person", "sanction")
    assert targets["children_education_restricted"] == ("children", "sanction")
    assert (sanction["days"], len(targets)) == (10, 12)

    # Two children, both with parents 0 and 1 (partners); the restriction ended on day 22.
    assert [(c["child"], c["other_parent"], c["restricted"]) for c in report["children"]] == [
        (0, 0, False),
        (1, 0, False),
    ]
    carried = report["children"][0]["consequences"]
    assert [(c["name"], c["start"], c["end"], c["days"]) for c in carried] == [
        ("children_education_restricted", 12, 22, 10)
    ]
    assert explain(run, 0)["spells"] == []
    assert "children_education_restricted" in text_of(report)


FAMILY = {
    "packs.rongcheng.start_score.value": 600,
    "packs.rongcheng.rules.jaywalking.expiry_days": 10,
    "packs.rongcheng.rules.traffic_violation.expiry_days": 10,
    "packs.rongcheng.lists.blacklist.min_stay_days": 5,
    "channels.camera.misattribute": 1.0,
    "appeals.alpha": 0.0,
    "population.child_ratio": 1.0,
    "population.two_parent_share": 1.0,
}


@pytest.mark.parametrize(
    ("script", "how"),
    [
        # Adult 0 runs a red light on day 12 too (traffic sensor, correct): rightly listed.
        ({12: [(0, "jaywalking"), (0, "traffic_violation")]}, "rightly"),
        # Adult 1 jaywalks on day 12 too and the camera blames adult 0: both wrongly listed.
        ({12: [(0, "jaywalking"), (1, "jaywalking")]}, "wrongly"),
    ],
)
def test_a_childs_restriction_that_holds_anyway_names_the_other_parent(
    tmp_path: Path, script: dict, how: str
) -> None:
    """Adult 1 is wrongly on the blacklist from day 12 to 22 (a misattributed jaywalking
    record); adult 0, the other parent of both children, is on it on the same ten days, rightly
    (own record) or wrongly (another misattribution): the children's restriction would hold
    without adult 1's wrong record, and the story says so."""
    report = explain(quiet_run(tmp_path, 30, script, **FAMILY), 1)
    assert report["story"]["verdict"].startswith("Was wrongly on the blacklist for 10 days")
    anyway = [c["anyway"] for c in report["children"]]
    assert anyway == [{"parent": 0, "lists": ["blacklist"], "days": 10, "of": 10,
                       "rightly": 10 if how == "rightly" else 0}] * 2  # fmt: skip
    assert report["story"]["children"] == [
        f"Child {c}'s other parent, adult 0, was on the blacklist on those days too ({how}), "
        "so the restriction would hold without the wrong record."
        for c in (0, 1)
    ]
    told = io.StringIO()
    render_story(report, Console(file=told, width=100))  # the story as printed: whole lines
    assert report["story"]["children"][0] in " ".join(told.getvalue().split())


def test_a_childs_restriction_only_through_the_wrong_record(tmp_path: Path) -> None:
    """The other parent on no list: the restriction comes from the wrong record alone."""
    report = explain(quiet_run(tmp_path, 30, {12: [(0, "jaywalking")]}, **FAMILY), 1)
    assert report["children"][0]["anyway"] == {
        "parent": 0, "lists": [], "days": 0, "of": 10, "rightly": 0
    }  # fmt: skip
    assert report["story"]["children"][0] == (
        "Child 0 was restricted for 10 days only through the wrong record: their other parent, "
        "adult 0, was on no list that restricts children on those days."
    )
    assert explain(tmp_path / "run", 0)["children"][0]["anyway"] is None  # never listed


def test_minimum_stay_holds_a_recovered_grade(tmp_path: Path) -> None:
    """D on day 12, C again on day 15 (expiry 3), but the 5-day stay runs to day 17."""
    run = quiet_run(
        tmp_path,
        20,
        {12: [(0, "jaywalking")]},
        **{
            "packs.rongcheng.start_score.value": 600,
            "packs.rongcheng.rules.jaywalking.expiry_days": 3,
            "packs.rongcheng.lists.blacklist.min_stay_days": 5,
        },
    )
    spells = explain(run, 0)["spells"]
    assert [(s["world"], s["start"], s["end"]) for s in spells] == [
        ("recorded", 12, 17),
        ("shadow", 12, 17),
    ]
    assert spells[0]["ended"] == "grade C on day 17 (minimum stay of 5 days served)"
    assert (spells[0]["wrongly_listed"], spells[0]["wrong_days"]) == (False, 0)


def test_defaulters_listing_ended_by_settlement(tmp_path: Path) -> None:
    """A court default on day 3 lists adult 0; with pi = 1 they settle on day 4."""
    run = quiet_run(tmp_path, 10, {3: [(0, "court_judgment_default")]}, **{"consequences.pi": 1.0})
    report = explain(run, 0)
    assert path_of(report) == [(3, 950, 950)]
    assert [(g["day"], g["from"], g["to"]) for g in report["grade_changes"]] == [
        (3, "A", "B"),
        (3, "A", "B"),
    ]
    assert [(s["list"], s["world"], s["start"], s["end"], s["days"]) for s in report["spells"]] == [
        ("defaulters", "recorded", 3, 4, 1),
        ("defaulters", "shadow", 3, 4, 1),
    ]
    for spell in report["spells"]:
        assert spell["began"] == "entered on day 3 by record 0 (court_judgment_default, correct)"
        assert spell["ended"] == "settled on day 4"
        assert spell["records"] == [0]
    (sanction,) = report["sanctions"]
    names = {c["name"]: c["target"] for c in sanction["consequences"]}
    assert len(names) == 9 and names["flight_ban"] == "person"
    assert names["children_private_school_ban"] == "children"
    assert sanction["wrongly_listed"] is False


def test_record_entered_listings_end_by_appeal_or_running_out(tmp_path: Path) -> None:
    """A wrong court default (adult 1) is lifted by its upheld appeal on day 5; adult 0's own
    disruptive flight on day 1, with a 4-day ban, runs out on day 5."""
    run = quiet_run(
        tmp_path,
        10,
        {3: [(0, "court_judgment_default")], 1: [(0, "disruptive_flight")]},
        **{
            "channels.court.misattribute": 1.0,
            "consequences.pi": 0.0,
            "appeals.alpha": 1.0,
            "appeals.upheld": 1.0,
            "appeals.appeal_days": 2,
            "packs.rongcheng.rules.disruptive_flight.effects": [
                {"list": "transport_ban", "days": 4}
            ],
        },
    )
    victim = explain(run, 1)
    (spell,) = victim["spells"]
    assert (spell["list"], spell["start"], spell["end"], spell["wrong_days"]) == (
        "defaulters",
        3,
        5,
        2,
    )
    assert spell["began"] == "entered on day 3 by record 1 (court_judgment_default, misattributed)"
    assert spell["ended"] == "appeal upheld on day 5"
    assert path_of(victim) == [(3, 950, 1000), (5, 1000, 1000)]

    actor = explain(run, 0)
    assert [(s["list"], s["world"], s["start"], s["end"]) for s in actor["spells"]] == [
        ("transport_ban", "recorded", 1, 5),
        ("transport_ban", "shadow", 1, 5),
    ]
    assert actor["spells"][0]["ended"] == "ban ran out on day 5"
    assert [b["record_id"] for b in actor["blamed_others"]] == [1]


def test_tier_cap_lowers_the_grade_while_its_record_is_live(tmp_path: Path) -> None:
    """Fare evasion (-10, 990 is grade A) with a cap at C for its 3-day life."""
    run = quiet_run(
        tmp_path,
        5,
        {0: [(0, "fare_evasion")]},
        **{
            "packs.rongcheng.rules.fare_evasion.effects": [{"tier_at_most": "C"}],
            "packs.rongcheng.rules.fare_evasion.expiry_days": 3,
        },
    )
    report = explain(run, 0)
    assert path_of(report) == [(0, 990, 990), (3, 1000, 1000)]
    recorded = [g for g in report["grade_changes"] if g["world"] == "recorded"]
    assert [(g["day"], g["from"], g["to"], g["score"]) for g in recorded] == [
        (0, "A", "C", 990),
        (3, "C", "A", 1000),
    ]
    assert "tier cap from record 0 (fare_evasion, correct)" in recorded[0]["cause"]
    assert "end of the tier cap from record 0" in recorded[1]["cause"]


@pytest.fixture(scope="module")
def stressed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("explain") / "s1"
    xinyong.run(xinyong.load_scenario("s1", adults=300, days=400, seed=5), out=out)
    return out


def test_rebuilt_score_and_grade_match_the_engine_for_every_adult(stressed_run: Path) -> None:
    ex = Explainer(stressed_run)
    listed = 0
    for i in range(300):
        report = ex.person(i)
        p = report["person"]
        assert final_scores(report) == (p["score"], p["shadow_score"]), i
        grade = {"recorded": "A", "shadow": "A"}  # the start score 1000 is grade A
        for change in report["grade_changes"]:
            assert grade[change["world"]] == change["from"], i
            grade[change["world"]] = change["to"]
        assert grade == {"recorded": p["tier"], "shadow": p["shadow_tier"]}, i
        for spell in report["spells"]:
            assert spell["began"], (i, spell)
            if spell["list"] == "blacklist":  # S1: entered at B or below, left at A or better
                listed += 1
                assert spell["began"].split(" on day")[0].split()[-1] in ("B", "C", "D")
                assert spell["ended"] is None or spell["ended"].split()[1] in ("AAA", "AA", "A")
                assert spell["end"] is None or spell["days"] >= 180
        open_lists = {s["list"] for s in report["spells"] if s["end"] is None}
        assert {s for s in open_lists if s in p["lists"] or s in p["shadow_lists"]} == open_lists
        json.dumps(report)
    assert listed > 0


@pytest.fixture(scope="module")
def wrongful_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """S1 with many wrong records, long enough for expiry, appeals and minimum stays."""
    out = tmp_path_factory.mktemp("explain") / "wrongful"
    sc = xinyong.load_scenario("s1", adults=3000, days=400, seed=1)
    xinyong.run(sc, out=out)
    return out


def test_every_wrongly_listed_adult_gets_a_why_naming_a_wrong_record(wrongful_run: Path) -> None:
    """As the engine cross-check does for scores: every adult the audit counts as wrongly
    listed at some point (recorded on, shadow off) gets a verdict that names a wrong record
    pushing towards that list, made by then, and still live on the day the verdict speaks of
    unless it says the minimum stay held them; the shaded wrongful days add up."""
    from xinyong.audit.explain import _live, story
    from xinyong.audit.queries import spells_sql, wrongful_spells_sql
    from xinyong.store import RunDir

    con = RunDir(wrongful_run).connect(threads=1)
    sql = wrongful_spells_sql(spells_sql(400), "person, list")
    wrongly = [p for (p,) in con.sql(f"SELECT DISTINCT person FROM ({sql}) ORDER BY 1").fetchall()]
    assert len(wrongly) >= 30
    ex = Explainer(wrongful_run)
    held = 0
    for person in wrongly:
        report = ex.person(person)
        verdict = story(report)["verdict"]
        assert verdict.startswith(("Wrongly on", "Was wrongly on")), (person, verdict)
        assert "no longer in the run's tables" not in verdict, (person, verdict)
        recorded = [s for s in report["spells"] if s["world"] == "recorded"]
        for s in recorded:
            days = sum(e - b for b, e in s["wrong_intervals"])
            assert days == s["wrong_days"], (person, s)
        wrong = [s for s in recorded if s["wrongly_listed"]]
        now = [s for s in wrong if s["end"] is None]
        s = max(now or wrong, key=lambda s: s["wrong_days"])
        assert label(s["list"]) in verdict  # the list in words
        by_id = {r["record_id"]: r for r in report["records"]}
        main = by_id[s["cause"]["records"][0]]
        assert main["truth"] != "correct", (person, main)
        sign = 1 if s["list"] == "whitelist" else -1
        assert main["points"] * sign > 0 or main["record_id"] in s["records"], (person, main)
        day = 399 if s["end"] is None else s["first_wrong_day"]
        assert main["day"] <= day, (person, main, day)
        if s["cause"]["held"]:  # gone by then: the verdict says since when
            held += 1
            assert not _live(main, day) and "gone since day" in verdict, (person, verdict)
        elif main["record_id"] not in s["records"]:
            assert _live(main, day), (person, main, day)
    assert 0 < held < len(wrongly)


def test_unknown_person_and_not_a_run(tmp_path: Path, stressed_run: Path) -> None:
    with pytest.raises(XinyongError, match="no adult 300"):
        explain(stressed_run, 300)
    with pytest.raises(XinyongError, match="not a run directory"):
        explain(tmp_path, 0)


def test_a_run_with_its_persons_in_one_file_or_none(tmp_path: Path, stressed_run: Path) -> None:
    """Runs of earlier versions wrote the persons table as one file: explained the same."""
    old = tmp_path / "old"
    shutil.copytree(stressed_run, old)
    (old / "persons" / "part-00000.parquet").rename(old / "persons.parquet")
    (old / "persons").rmdir()
    assert explain(old, 7) == explain(stressed_run, 7)
    (old / "persons.parquet").unlink()
    with pytest.raises(XinyongError, match="table 'persons' is missing"):
        explain(old, 7)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "xinyong.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_explain(stressed_run: Path, tmp_path: Path) -> None:
    res = cli("explain", str(stressed_run), "999999")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "no adult 999999" in lines[0], res.stderr

    res = cli("explain", str(tmp_path), "0")
    assert res.returncode == 2 and "not a run directory" in res.stderr

    res = cli("explain", str(stressed_run), "7", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert list(doc) == KEYS and doc["person"]["person"] == 7

    res = cli("explain", str(stressed_run), "7")
    assert res.returncode == 0, res.stderr
    assert "adult 7" in res.stdout and "records that mattered" in res.stdout
    full = cli("explain", str(stressed_run), "7", "--all")
    assert "score path" in full.stdout
    assert len(res.stdout.splitlines()) < len(full.stdout.splitlines())


def test_story_blames_the_wrong_record_still_live_not_an_expiry(tmp_path: Path) -> None:
    """Adult 1 starts at 600 (C), donates blood on day 0 (+10, expiring on day 5) and is
    blamed for adult 0's jaywalking on day 1 (-3): 607, still C. On day 5 the donation
    expires: 597, grade D, blacklisted; the shadow score (600) stays C. The listing is the
    misattributed record's doing, not the expiry's."""
    run = quiet_run(
        tmp_path,
        10,
        {0: [(1, "blood_donation")], 1: [(0, "jaywalking")]},
        **{
            "packs.rongcheng.start_score.value": 600,
            "packs.rongcheng.rules.blood_donation.expiry_days": 5,
            "channels.camera.misattribute": 1.0,
            "appeals.alpha": 0.0,
        },
    )
    report = explain(run, 1)
    (spell,) = report["spells"]
    assert (spell["start"], spell["end"], spell["first_wrong_day"]) == (5, None, 5)
    assert "expiry of record 0 (blood_donation, correct)" in spell["began"]  # the full listing
    (jaywalk,) = [r for r in report["records"] if r["behaviour"] == "jaywalking"]
    assert spell["cause"] == {
        "kind": "wrong records",
        "records": [jaywalk["record_id"]],
        "held": False,
    }
    story = report["story"]
    assert story["verdict"] == (
        "Wrongly on the blacklist since day 5 because of a misattributed jaywalking record "
        "(camera) that belonged to adult 0; never appealed."
    )
    # The donation is routine (positive, correct, entered no list); the jaywalking mattered.
    assert story["mattered"] == [jaywalk["record_id"]]
    assert story["routine"] == "1 routine positive record (blood donation 1), +10 points in all"


def test_story_on_the_command_line_and_as_a_page(tmp_path: Path) -> None:
    run = quiet_run(
        tmp_path,
        10,
        {0: [(1, "blood_donation")], 1: [(0, "jaywalking")]},
        **{
            "packs.rongcheng.start_score.value": 600,
            "packs.rongcheng.rules.blood_donation.expiry_days": 5,
            "channels.camera.misattribute": 1.0,
        },
    )
    from tests.test_cli import cli

    page = tmp_path / "adult-1.html"
    res = cli("explain", str(run), "1", "--html", str(page))
    assert res.returncode == 0, res.stderr
    assert "Wrongly on the blacklist since day 5" in " ".join(res.stdout.split())
    assert "score path" not in res.stdout  # the full listing only with --all
    assert "score path" in cli("explain", str(run), "1", "--all").stdout
    text = page.read_text("utf-8")
    assert "Wrongly on the blacklist since day 5" in text and "Plotly.newPlot(" in text
