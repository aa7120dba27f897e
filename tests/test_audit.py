"""Audit metrics on tiny hand-made runs, each value computed by hand."""

from __future__ import annotations

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
            "consequences.distress_factor": 1.0,
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
    from xinyong.api import run_replicates

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
    assert row["high"] - row["value"] == pytest.approx(4.303 * sd / math.sqrt(3))


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
            "consequences.distress_factor": 1.0,  # no loan_ban below: distress is off
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
