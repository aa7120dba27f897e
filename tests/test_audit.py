"""Audit metrics on tiny hand-made runs, each value computed by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import xinyong
from tests.conftest import quiet_scenario
from xinyong.audit import stats
from xinyong.audit.audit import audit, audit_one
from xinyong.audit.compare import compare
from xinyong.audit.metrics import baseline_scenario

# Two adults start at 600 (grade C). Adult 0 jaywalks on a camera that always blames the
# other adult, and runs a red light on a sensor that is always right: both fall to grade D
# on day 0, adult 1 only through a wrong record. Records expire on day 5, when both climb
# back to C and leave the blacklist (minimum stay 3 served). The blacklist has two sanctions:
# one in the traffic context (where the records came from) and one in finance.
TINY = {
    "population.minority_share": 0.0,
    "packs.rongcheng.start_score.value": 600,
    "packs.rongcheng.rules.jaywalking.expiry_days": 5,
    "packs.rongcheng.rules.traffic_violation.expiry_days": 5,
    "packs.rongcheng.lists.blacklist.min_stay_days": 3,
    "packs.rongcheng.lists.blacklist.consequences": [
        {"name": "licence_ban", "context": "traffic"},
        {"name": "loan_ban", "context": "finance"},
    ],
    "channels.camera.misattribute": 1.0,
    "appeals.alpha": 0.0,
}
EVENTS = {0: [(0, "jaywalking"), (0, "traffic_violation")]}


def tiny_run(tmp_path: Path, days: int = 10, **extra) -> Path:
    out = tmp_path / "run"
    xinyong.run(quiet_scenario(days=days, overrides={**TINY, **extra}), out, script=EVENTS)
    return out


def test_wrongful_listing_false_records_and_detection(tmp_path: Path) -> None:
    m = audit_one(tiny_run(tmp_path, days=4), baseline=False)["metrics"]
    # On day 3 both are still listed (min stay 3 served, but still grade D): one of two wrongly.
    assert m["wrongly_listed_share.blacklist"]["value"] == 0.5
    assert m["wrongly_listed_of_listed.blacklist"]["value"] == 0.5
    assert m["false_record_share.camera"]["value"] == 1.0
    assert m["false_record_share.traffic_sensor"]["value"] == 0.0
    # Two true negative events by the majority (everyone), two records against them.
    assert m["detection_ratio.majority"]["value"] == 1.0


def test_lock_in_spillover_and_proportionality(tmp_path: Path) -> None:
    doc = audit_one(tiny_run(tmp_path), baseline=False)
    m = doc["metrics"]
    # Both spells run days 0..4 and end on day 5: S(t) = 1 before 5, 0 from 5.
    assert doc["survival"]["blacklist"]["t"] == [0, 5]
    assert doc["survival"]["blacklist"]["s"] == [1.0, 0.0]
    assert m["median_stay_days.blacklist"]["value"] == 5
    assert m["spells.blacklist"]["value"] == 2
    # Each spell: 5 days x 2 sanctions, caused by a traffic record: half the days are spent
    # in finance, a context unrelated to the cause.
    assert m["spillover_share.blacklist"]["value"] == 0.5
    assert doc["spillover"]["blacklist"]["related"] == [[False, True]]
    sp = doc["spillover"]["blacklist"]
    assert sp["causes"] == ["traffic"] and sp["sanctions"] == ["finance", "traffic"]
    assert sp["sanction_days"] == [[10.0, 10.0]]
    # Each behaviour's single record brought one spell of 5 days x 2 sanctions.
    per = {r["behaviour"]: r["sanction_days_per_record"] for r in doc["proportionality"]}
    assert per == {"jaywalking": 10.0, "traffic_violation": 10.0}
    assert m["gravity_severity_rank_correlation"]["value"] is None  # two points: undefined
    assert m["minor_only_share"]["value"] == 1.0  # gravity 1 and 2 only
    assert m["associates_penalised_per_listed_adult"]["value"] == 0.0
    assert m["children_restricted_per_listed_adult"]["value"] is None  # no child sanction


def test_related_contexts_decide_what_counts_as_spillover(tmp_path: Path) -> None:
    out = tiny_run(tmp_path, **{"audit.related_contexts": {"traffic": ["finance"]}})
    m = audit_one(out, baseline=False)["metrics"]
    assert m["spillover_share.blacklist"]["value"] == 0.0


def test_disparity_rows_against_the_reference_group(tmp_path: Path) -> None:
    """Four adults; this seed draws adults 0, 1 majority and 2, 3 minority, and the camera
    blames adult 3. Blacklisted: 0 (rightly) and 3 (wrongly): half of each group."""
    out = tiny_run(tmp_path, days=4, **{"population.adults": 4, "population.minority_share": 0.5})
    groups = [p["group"] for p in xinyong.Run.open(out).table("persons").to_pylist()]
    assert groups == ["majority", "majority", "minority", "minority"]
    rows = {r["metric"]: r for r in audit_one(out, baseline=False)["disparity"]}
    listed = rows["list_share.blacklist"]
    assert (listed["group"], listed["reference"]) == ("minority", "majority")
    assert (listed["value"], listed["reference_value"]) == (0.5, 0.5)
    assert (listed["ratio"], listed["difference"], listed["flag"]) == (1.0, 0.0, False)
    wrong = rows["wrongly_listed_share.blacklist"]
    assert (wrong["value"], wrong["reference_value"], wrong["difference"]) == (0.5, 0.0, 0.5)
    assert wrong["ratio"] is None and not wrong["flag"]  # zero reference rate: no ratio


def test_redress(tmp_path: Path) -> None:
    out = tiny_run(
        tmp_path, days=10, **{"appeals.alpha": 1.0, "appeals.upheld": 1.0, "appeals.appeal_days": 2}
    )
    m = audit_one(out, baseline=False)["metrics"]
    assert m["appeals_filed_per_1000"]["value"] == 500.0  # one appeal, two adults
    assert m["appeals_upheld_share"]["value"] == 1.0
    assert m["days_to_remedy"]["value"] == 2.0
    assert m["wrong_records_never_corrected"]["value"] == 0.0
    # The upheld appeal lifts adult 1 back to C on day 2; the minimum stay ends on day 3.
    spells = xinyong.Run.open(out).sql(
        "SELECT person, start, \"end\" FROM spells WHERE world = 'recorded' ORDER BY person"
    )
    assert spells.to_pylist() == [
        {"person": 0, "start": 0, "end": 5},
        {"person": 1, "start": 0, "end": 3},
    ]


def test_scheme_off_world_is_the_same_world_when_nothing_feeds_back(tmp_path: Path) -> None:
    """With no deterrence, distress or meetings, the baseline draws the same events (common
    random numbers), so every behaviour change is exactly zero."""
    sc = xinyong.load_scenario(
        "r1",
        adults=2000,
        days=40,
        seed=2,
        overrides={
            "consequences.eta": 0.0,
            "consequences.behaviour_effects": False,
            "consequences.rho": 0.0,
        },
    )
    xinyong.run(sc, tmp_path / "run")
    doc = audit_one(tmp_path / "run", baseline=True)
    assert all(r["events"] == r["baseline_events"] for r in doc["behaviour"])
    assert doc["metrics"]["negative_events_change"]["value"] == 0.0


def test_positive_events_are_common_to_both_worlds_when_negative_ones_feed_back() -> None:
    """Positive behaviour has streams of its own: strong deterrence changes the negative
    events of the scheme-on world, and not one positive event or record."""
    sc = xinyong.load_scenario(
        "r1", adults=2000, days=60, seed=5, overrides={"consequences.eta": 0.3}
    )
    on, off = xinyong.run(sc), xinyong.run(baseline_scenario(sc))
    names: dict[bool, str] = {}
    for negative in (True, False):
        names[negative] = ", ".join(
            f"'{name}'" for name, b in sc.behaviours.items() if (b.sign == "negative") == negative
        )
    events = "SELECT behaviour, sum(true_events)::BIGINT FROM behaviour_daily WHERE behaviour IN "
    for negative in (True, False):
        query = f"{events} ({names[negative]}) GROUP BY ALL ORDER BY ALL"
        same = on.sql(query) == off.sql(query)
        assert same != negative  # negative events differ, positive events are the same
    records = f"SELECT * EXCLUDE (record_id) FROM records WHERE behaviour IN ({names[False]})"
    assert on.sql(records + " ORDER BY ALL") == off.sql(records + " ORDER BY ALL")


def test_deterrence_lowers_negative_events(tmp_path: Path) -> None:
    sc = xinyong.load_scenario(
        "r1", adults=3000, days=200, seed=4, overrides={"consequences.eta": 0.3}
    )
    xinyong.run(sc, tmp_path / "run")
    m = audit_one(tmp_path / "run")["metrics"]
    assert m["negative_events_change"]["high"] < 0


def test_audit_writes_metrics_and_compare_finds_the_reform(tmp_path: Path) -> None:
    base = tiny_run(tmp_path / "a", days=10)
    reform = tmp_path / "b" / "run"
    xinyong.run(
        quiet_scenario(days=10, overrides={**TINY, "channels.camera.misattribute": 0.0}),
        reform,
        script=EVENTS,
    )
    doc = audit(base, baseline=False, report=False)
    assert (base / "metrics.json").exists() and doc["replicates"] == 1
    rows = {r["metric"]: r for r in compare(base, reform)["rows"]}
    # Without misattribution the jaywalking record lands on adult 0, adult 1 stays clean.
    assert rows["false_record_share.camera"]["difference"] == -1.0
    assert rows["ever_listed_share.blacklist"]["a"] == 1.0
    assert rows["ever_listed_share.blacklist"]["b"] == 0.5


def test_replicates_give_intervals(tmp_path: Path) -> None:
    from xinyong.replicates import run_replicates

    sc = xinyong.load_scenario("s1", adults=1500, days=60, seed=10)
    run = run_replicates(sc, tmp_path / "reps", 3, workers=2)
    assert run.summary["seeds"] == [10, 11, 12]
    low, high = run.summary["intervals"]["mean_score"]
    assert low < run.summary["mean_score"] < high
    doc = audit(tmp_path / "reps", baseline=False, report=False)
    row = doc["metrics"]["wrongly_listed_share.blacklist"]
    assert doc["replicates"] == 3
    values = [
        audit_one(tmp_path / "reps" / "replicates" / f"seed-{s}", baseline=False)["metrics"][
            "wrongly_listed_share.blacklist"
        ]["value"]
        for s in (10, 11, 12)
    ]
    mean, sd = sum(values) / 3, math.sqrt(sum((v - sum(values) / 3) ** 2 for v in values) / 2)
    assert row["value"] == pytest.approx(mean)
    # The wider of the t interval (cut to [0, 1]) and the Wilson of the pooled counts.
    half = 4.303 * sd / math.sqrt(3)
    _, w_low, w_high = stats.wilson(round(sum(v * 1500 for v in values)), 3 * 1500)
    assert row["high"] == pytest.approx(max(mean + half, w_high))
    assert row["low"] == pytest.approx(min(max(mean - half, 0.0), w_low))
    # The kind of interval is stated, per seed values kept, counts summed over the seeds.
    assert doc["interval"] == "across-seeds" and "warning" not in doc
    assert row["interval"] == "across-seeds" and row["per_seed"] == values
    assert row["count_total"] == round(sum(v * 1500 for v in values))
    assert doc["run"]["per_seed"]["mean_score"] == [
        json.loads((tmp_path / "reps" / "replicates" / f"seed-{s}" / "summary.json").read_text())[
            "mean_score"
        ]
        for s in (10, 11, 12)
    ]


def test_interval_helpers() -> None:
    # Wilson: 0 of 10 gives [0, 0.2775]; 5 of 10 is symmetric around 0.5.
    p, lo, hi = stats.wilson(0, 10)
    assert (p, lo) == (0.0, 0.0) and hi == pytest.approx(0.27754, abs=1e-5)
    p, lo, hi = stats.wilson(5, 10)
    assert lo == pytest.approx(1 - hi)
    assert stats.wilson(1, 0) == (None, None, None)
    # Katz: equal shares give ratio 1; a zero reference share is undefined.
    assert stats.ratio_of_shares(10, 100, 10, 100)[0] == 1.0
    assert stats.ratio_of_shares(10, 100, 0, 100) == (None, None, None)
    # Kaplan-Meier by hand: stays 2, 3+, 5, 5 -> S(2)=3/4, S(5)=3/4 * (1 - 2/2) = 0.
    km = stats.kaplan_meier([2, 3, 5, 5], [True, False, True, True])
    assert km["t"] == [0, 2, 5] and km["s"] == [1.0, 0.75, 0.0]
    assert stats.median_time(km) == 5
    assert stats.survival_at(km, 4)[0] == 0.75
    # Spearman: perfectly monotone -> 1; reversed -> -1; ties averaged.
    assert stats.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert stats.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert stats.spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(math.sqrt(3) / 2)


def test_collateral_children_and_associates(tmp_path: Path) -> None:
    """Both adults end blacklisted (see TINY); the blacklist restricts children; each child
    of the pair is restricted. With rho = 1 and the pair linked, each adult meets the other
    (listed since day 0) on days 1 and 2: four association records, both penalised."""
    out = tiny_run(
        tmp_path,
        days=3,
        **{
            "population.child_ratio": 1.0,
            "population.edges_per_adult": 1,
            "consequences.rho": 1.0,
            "packs.rongcheng.lists.blacklist.consequences": [
                {"name": "licence_ban", "context": "traffic"},
                {"name": "school_ban", "context": "education", "target": "children"},
            ],
        },
    )
    run = xinyong.Run.open(out)
    assert run.table("edges").num_rows == 1  # this seed links the two adults
    assert run.table("children").num_rows == 2
    doc = audit_one(out, baseline=False)
    m = doc["metrics"]
    assert m["children_restricted_per_listed_adult"]["value"] == 2 / 2
    assert m["associates_penalised_per_listed_adult"]["value"] == 2 / 2
    assert run.summary["association_records_per_adult_year"] == pytest.approx(4 / 2 / (3 / 365))
    assert run.summary["children_restricted_share"] == 1.0


def test_still_listed_after_a_year(tmp_path: Path) -> None:
    """Adult 0's transport ban runs days 0-364 and ends; adult 1's is extended by a second
    flight on day 100 and is still running at T = 400 (censored): S(365) = 1 - 1/2."""
    out = tmp_path / "run"
    xinyong.run(
        quiet_scenario(days=400),
        out,
        script={
            0: [(0, "disruptive_flight"), (1, "disruptive_flight")],
            100: [(1, "disruptive_flight")],
        },
    )
    doc = audit_one(out, baseline=False)
    assert doc["survival"]["transport_ban"]["t"] == [0, 365]
    assert doc["survival"]["transport_ban"]["s"] == [1.0, 0.5]
    assert doc["metrics"]["still_listed_after_1y.transport_ban"]["value"] == 0.5
    assert doc["metrics"]["median_stay_days.transport_ban"]["value"] == 365


def test_behaviour_metrics_by_hand(tmp_path: Path) -> None:
    """Scripted events are the same with the scheme off: nothing prevented, so zero events
    prevented per wrongly listed adult (adult 1), and no online speech to chill."""
    doc = audit_one(tiny_run(tmp_path, days=4), baseline=True)
    m = doc["metrics"]
    assert m["negative_events_change"]["value"] == 0.0
    assert m["events_prevented_per_wrongly_listed"]["value"] == 0.0
    assert m["online_speech_change"]["value"] is None
    rows = {r["behaviour"]: r for r in doc["behaviour"]}
    assert rows["jaywalking"]["events"] == rows["jaywalking"]["baseline_events"] == 1
    # Every metric says what it means and which legal test or convention it maps to.
    assert all(row["meaning"] and row["maps_to"] for row in m.values())


def test_whole_run_counts_and_person_days(tmp_path: Path) -> None:
    """TINY plus a misattributed disruptive flight on day 2 (expiring on day 7): adult 1 is
    wrongly on the blacklist on days 0-6 (back to C when the flight's -50 expire) and wrongly
    on the transport ban from day 2 to T = 10 (censored): 7 + 8 person-days, which overlap,
    so 10 distinct person-days of undeserved sanctions. Adult 0 is rightly listed 0-4."""
    out = tmp_path / "run"
    sc = quiet_scenario(
        days=10,
        overrides={**TINY, "packs.rongcheng.rules.disruptive_flight.expiry_days": 5},
    )
    xinyong.run(sc, out, script={**EVENTS, 2: [(0, "disruptive_flight")]})
    spells = xinyong.Run.open(out).sql(
        "SELECT person, list, start, \"end\" FROM spells WHERE world = 'recorded' ORDER BY ALL"
    )
    assert spells.to_pylist() == [
        {"person": 0, "list": "blacklist", "start": 0, "end": 5},
        {"person": 1, "list": "blacklist", "start": 0, "end": 7},
        {"person": 1, "list": "transport_ban", "start": 2, "end": None},
    ]
    m = audit_one(out, baseline=False)["metrics"]
    row = m["ever_wrongly_listed_share.blacklist"]
    assert (row["value"], row["count"], row["of"]) == (0.5, 1, 2)
    assert m["ever_listed_share.blacklist"]["count"] == 2
    assert m["wrongly_listed_share.blacklist"]["count"] == 0  # both off by T
    assert m["ever_wrongly_listed_share_by_group.blacklist.majority"]["count"] == 1
    assert m["wrongly_listed_person_days.blacklist"]["value"] == 7
    assert m["wrongly_listed_person_days.transport_ban"]["value"] == 8
    assert m["undeserved_sanction_person_days"]["value"] == 10
    # Stays of 5 and 7 days, both ended: the median is 5 and the restricted mean (tau = 7,
    # the longest stay) the plain mean, 6. The transport ban's one stay is censored at 8:
    # no median, restricted mean 8.
    assert m["median_stay_days.blacklist"]["value"] == 5
    assert m["mean_stay_days_restricted.blacklist"]["value"] == 6
    assert m["median_stay_days.transport_ban"]["value"] is None
    assert m["mean_stay_days_restricted.transport_ban"]["value"] == 8
    assert m["ever_wrongly_listed_share.blacklist"]["interval"] == "within-run"
    assert m["wrongly_listed_person_days.blacklist"]["interval"] == "none"


def test_children_over_the_whole_run(tmp_path: Path) -> None:
    """Both adults are blacklisted on days 0-4 (adult 1 wrongly), and the blacklist restricts
    children: every child was restricted; a child is restricted only through wrong records
    when adult 1 is its only parent."""
    out = tiny_run(
        tmp_path,
        days=10,
        **{
            "population.child_ratio": 3.0,
            "packs.rongcheng.lists.blacklist.consequences": [
                {"name": "school_ban", "context": "education", "target": "children"},
            ],
        },
    )
    kids = xinyong.Run.open(out).table("children").to_pylist()
    assert len(kids) == 6
    only_adult_1 = sum(k["parent1"] == 1 and k["parent2"] is None for k in kids)
    with_adult_1 = sum(1 in (k["parent1"], k["parent2"]) for k in kids)
    assert 0 < only_adult_1 < with_adult_1  # this seed draws both kinds of household
    m = audit_one(out, baseline=False)["metrics"]
    assert m["children_restricted_share"]["count"] == 0  # all off the list by T
    assert m["children_ever_restricted_share"]["count"] == 6
    # Adult 1 is wrongly listed days 0-4 while adult 0 is rightly listed on the same days:
    # only a child without adult 0 as a parent goes through a day restricted wrongly.
    assert m["children_wrongly_restricted_share"]["count"] == only_adult_1
    assert m["children_restricted_only_by_wrong_records_share"]["count"] == only_adult_1


def test_small_number_rule_for_disparities() -> None:
    """Flagged only outside the four-fifths band, with an interval that excludes 1 and at
    least MIN_COUNT people in each numerator; otherwise the row says why not."""
    from xinyong.audit.metrics import MIN_COUNT, disparity_row

    def row(k1: int, n1: int, k0: int, n0: int) -> dict:
        r, lo, hi = stats.ratio_of_shares(k1, n1, k0, n0)
        return disparity_row(
            "m",
            "minority",
            "majority",
            k1 / n1,
            k0 / n0,
            r,
            lo,
            hi,
            numerator=k1,
            denominator=n1,
            reference_numerator=k0,
            reference_denominator=n0,
        )

    assert MIN_COUNT == 10
    # One minority person against 50 majority people: a ratio of 0.18, not flagged.
    few = row(1, 100, 50, 900)
    assert few["outside_band"] and not few["flag"] and few["status"].startswith("too few")
    # Enough people, but 12/100 against 90/900 (ratio 1.2) sits inside the band.
    assert row(12, 100, 90, 900)["status"] == "within band"
    # 15/100 against 90/900: ratio 1.5, outside the band, but the Katz interval spans 1.
    wide = row(15, 100, 90, 900)
    assert wide["ratio_low"] < 1 < wide["ratio_high"] and wide["status"] == "interval includes 1"
    # 30/100 against 90/900: ratio 3, interval [2.1, 4.3]: flagged.
    strong = row(30, 100, 90, 900)
    assert strong["ratio_low"] > 1 and strong["flag"] and strong["status"] == "flagged"


def test_wrongful_duration_by_hand() -> None:
    """Wrongful spells cut by the shadow world, joined across adjacent listings, censored at T;
    Kaplan-Meier median, quartiles and restricted mean worked out by hand."""
    import duckdb

    from xinyong.audit.metrics import _wrongful_duration

    con = duckdb.connect()
    con.sql("""CREATE TABLE persons AS SELECT * FROM (VALUES
        (1, 'minority'), (2, 'majority'), (3, 'majority')) t(person, "group")""")
    con.sql("""CREATE TABLE spells AS SELECT * FROM (VALUES
        (1, 'blacklist', 'recorded', 0, 10),     -- wrongful 10 days
        (1, 'blacklist', 'recorded', 50, 55),    -- relisted the day it ended:
        (1, 'blacklist', 'recorded', 55, 70),    --   one wrongful spell of 20 days
        (2, 'blacklist', 'recorded', 0, 40),
        (2, 'blacklist', 'shadow', 5, 15),       -- wrongful 5 days, then 25
        (3, 'blacklist', 'recorded', 20, 30),
        (3, 'blacklist', 'shadow', 20, 30),      -- deserved: not wrongful
        (3, 'blacklist', 'recorded', 60, NULL)   -- still wrongful at T: 40 days, censored
        ) t(person, list, world, start, "end")""")
    out: dict = {"metrics": {}}
    _wrongful_duration(con, out, ["blacklist", "whitelist"], ["minority", "majority"], 100)
    m = {k: v["value"] for k, v in out["metrics"].items()}
    # All: 5, 10, 20, 25 ended and 40 censored. S = 0.8, 0.6, 0.4, 0.2 after 5, 10, 20, 25.
    assert m["wrongful_spells.blacklist"] == 5
    assert m["wrongful_spells_open_at_T.blacklist"] == pytest.approx(0.2)
    assert out["metrics"]["wrongful_spells_open_at_T.blacklist"]["count"] == 1
    assert (m["wrongful_days_q1.blacklist"], m["wrongful_days_median.blacklist"]) == (10, 20)
    assert m["wrongful_days_q3.blacklist"] == 25
    assert m["wrongful_days_mean_restricted.blacklist"] == pytest.approx(5 + 4 + 6 + 2 + 3)
    # Minority (adult 1): 10 and 20, both ended.
    assert m["wrongful_days_median_by_group.blacklist.minority"] == 10
    assert m["wrongful_days_q3_by_group.blacklist.minority"] == 20
    assert m["wrongful_days_mean_restricted_by_group.blacklist.minority"] == pytest.approx(15)
    # Majority: 5, 25 ended, 40 censored: S = 2/3 after 5, 1/3 after 25; never a quarter.
    assert m["wrongful_days_median_by_group.blacklist.majority"] == 25
    assert m["wrongful_days_q3_by_group.blacklist.majority"] is None
    assert m["wrongful_days_mean_restricted_by_group.blacklist.majority"] == pytest.approx(
        5 + 20 * 2 / 3 + 15 / 3
    )
    # A list nobody was wrongly on: its count, and no durations.
    assert m["wrongful_spells.whitelist"] == 0 and "wrongful_days_median.whitelist" not in m
    assert out["wrongful_survival"]["blacklist"]["s"] == pytest.approx([1, 0.8, 0.6, 0.4, 0.2])
