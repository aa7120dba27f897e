"""Properties every run must have, checked on one stressed run (S1, 5,000 adults, 400 days)."""

from __future__ import annotations

import numpy as np
import pytest

import xinyong
from xinyong.engine import Simulation
from xinyong.scenario import load_scenario
from xinyong.world import SLOTS, World


def test_score_is_start_plus_live_records(small_r1_run) -> None:
    """Conservation: score = start + points of records neither expired nor upheld on appeal."""
    run, days = small_r1_run, small_r1_run.summary["days"]
    bad = (
        run.sql(f"""
        WITH live AS (
            SELECT r.person, sum(r.points) AS pts, sum(r.shadow_points) AS shadow_pts
            FROM records r LEFT JOIN appeals a USING (record_id)
            WHERE (r.expiry_day IS NULL OR r.expiry_day >= {days})
              AND coalesce(a.upheld, false) = false
            GROUP BY r.person)
        SELECT count(*) FROM persons p LEFT JOIN live l USING (person)
        WHERE p.score <> 1000 + coalesce(l.pts, 0)
           OR p.shadow_score <> 1000 + coalesce(l.shadow_pts, 0)""")
        .column(0)[0]
        .as_py()
    )
    assert bad == 0


def test_shadow_never_sees_a_wrong_record(small_r1_run) -> None:
    wrong = small_r1_run.sql(
        "SELECT count(*), count(*) FILTER (WHERE shadow_points <> 0) FROM records "
        "WHERE truth <> 'correct'"
    ).to_pylist()[0]
    counts = list(wrong.values())
    assert counts[0] > 0  # the stress scenario does make wrong records
    assert counts[1] == 0


def test_nobody_off_a_list_holds_its_sanction(small_r1_run) -> None:
    """A child is restricted exactly when a parent is on a list with a child-directed sanction
    (blacklist or defaulters in R1); privileged exactly when a parent is whitelisted."""
    mismatched = (
        small_r1_run.sql("""
        SELECT count(*) FROM children c
        JOIN persons p1 ON p1.person = c.parent1
        LEFT JOIN persons p2 ON p2.person = c.parent2
        WHERE c.restricted <> (p1."on.blacklist" OR p1."on.defaulters"
                               OR coalesce(p2."on.blacklist" OR p2."on.defaulters", false))
           OR c.privileged <> (p1."on.whitelist" OR coalesce(p2."on.whitelist", false))
    """)
        .column(0)[0]
        .as_py()
    )
    assert mismatched == 0
    assert small_r1_run.summary["children_restricted_share"] > 0


def test_list_spells_match_end_state(small_r1_run) -> None:
    """Open spells at T are exactly the persons on each list at T, in both worlds."""
    run = small_r1_run
    for lst in ("blacklist", "whitelist", "defaulters", "transport_ban"):
        for world, col in (("recorded", "on"), ("shadow", "shadow_on")):
            diff = (
                run.sql(f"""
                SELECT count(*) FROM persons p FULL JOIN (
                    SELECT person FROM spells WHERE list = '{lst}' AND world = '{world}'
                    AND "end" IS NULL) s USING (person)
                WHERE coalesce(p."{col}.{lst}", false) <> (s.person IS NOT NULL)
            """)
                .column(0)[0]
                .as_py()
            )
            assert diff == 0, (lst, world)


def test_wrongly_listed_means_listed_without_shadow(small_r1_run) -> None:
    s = small_r1_run.summary
    n = (
        small_r1_run.sql(
            'SELECT avg(("on.blacklist" AND NOT "shadow_on.blacklist")::INT) FROM persons'
        )
        .column(0)[0]
        .as_py()
    )
    assert s["wrongly_listed_share.blacklist"] == n
    assert s["wrongly_listed_share.blacklist"] > 0  # S1 promises wrongly listed persons


def test_min_stay_is_served(small_r1_run) -> None:
    """S1's blacklist keeps everyone at least 180 days (spells ending before T)."""
    shortest = (
        small_r1_run.sql("""
        SELECT min("end" - start) FROM spells
        WHERE list = 'blacklist' AND "end" IS NOT NULL""")
        .column(0)[0]
        .as_py()
    )
    assert shortest is None or shortest >= 180


def test_same_seed_same_records_bit_for_bit() -> None:
    sc = load_scenario("s1", adults=2000, days=60, seed=3)
    a, b = xinyong.run(sc), xinyong.run(sc)
    for name in ("records", "spells", "appeals", "persons"):
        assert a.table(name).equals(b.table(name)), name
    c = xinyong.run(sc.with_(seed=4))
    assert not a.table("records").equals(c.table("records"))


def test_daily_counts_agree_with_tables(small_r1_run) -> None:
    run = small_r1_run
    daily = run.table("daily").to_pydict()
    last = {k: v[-1] for k, v in daily.items()}
    persons = run.table("persons").to_pydict()
    assert last["list.blacklist"] == sum(persons["on.blacklist"])
    assert last["wrongly_listed.blacklist"] == sum(
        a and not b
        for a, b in zip(persons["on.blacklist"], persons["shadow_on.blacklist"], strict=True)
    )
    assert np.isclose(last["mean_score"], np.mean(persons["score"]))
    n_records = run.sql("SELECT count(*) FROM records").column(0)[0].as_py()
    assert sum(daily["records_negative"]) + sum(daily["records_positive"]) == n_records


def test_behaviour_tallies_agree_with_the_records(small_r1_run) -> None:
    """The summary counts records from behaviour_daily: per behaviour, its records, its
    misattributed ones and its false reports are what the records table holds."""
    from_records = run_rows(
        small_r1_run,
        "SELECT behaviour, count(*), count(*) FILTER (truth = 'misattributed'), "
        "count(*) FILTER (truth = 'false_report') FROM records GROUP BY ALL ORDER BY ALL",
    )
    tallied = run_rows(
        small_r1_run,
        "SELECT behaviour, sum(records), sum(misattributed), sum(false_reports) "
        "FROM behaviour_daily GROUP BY ALL HAVING sum(records) > 0 ORDER BY ALL",
    )
    assert tallied == from_records
    assert sum(r[2] for r in from_records) > 0 and sum(r[3] for r in from_records) > 0
    summary = small_r1_run.summary
    years, adults = summary["days"] / 365, summary["adults"]
    sc = load_scenario("s1")
    negative = [r for r in from_records if sc.behaviours[r[0]].sign == "negative"]
    assert summary["wrong_record_share"] == pytest.approx(
        sum(r[2] + r[3] for r in negative) / sum(r[1] for r in negative)
    )
    assert summary["neg_records_per_adult_year"] == pytest.approx(
        sum(r[1] for r in negative) / (adults * years)
    )


def run_rows(run, sql: str) -> list[tuple]:
    return [tuple(row.values()) for row in run.sql(sql).to_pylist()]


def test_several_cities_report_tiers_and_lists_per_city() -> None:
    s = xinyong.run(load_scenario("three-cities", adults=3000, days=60, seed=2)).summary
    for city in ("rongcheng", "suqian", "xiamen"):
        shares = [v for k, v in s.items() if k.startswith(f"tier_share_by_city.{city}.")]
        assert len(shares) >= 5 and abs(sum(shares) - 1) < 1e-9
    assert "tier_share_by_city.xiamen.excellent" in s
    assert "tier_share.AAA" in s  # the pooled summary keys stay


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {  # records that cap the tier, for 30 days
            "packs.rongcheng.rules.fare_evasion.effects": [{"tier_at_most": "C"}],
            "packs.rongcheng.rules.fare_evasion.expiry_days": 30,
        },
    ],
)
def test_skipping_rules_when_the_tier_holds_changes_nothing(monkeypatch, changes) -> None:
    """Persons whose score changed but whose tier did not keep their lists without the rules
    being read: scoring passes on only the persons whose score left their tier's bounds, and
    steps 8-9 skip the rules where the tier holds. Evaluating the rules of everyone with a
    record instead gives the same spells, lists and daily counts (a stressed run with
    minimum stays, direct listings, tier caps and settlement)."""
    from xinyong.scheme import lists
    from xinyong.scheme.layer import Scheme

    sc = load_scenario("s1", adults=3000, days=400, seed=11).with_(**changes)
    fast = xinyong.run(sc)
    monkeypatch.setattr(lists, "SCORE_CHANGED", lists.RECHECK)  # every mark asks for the rules
    score = Scheme.score

    def everyone_with_a_record(self: Scheme, t: int, rec):
        scored = score(self, t, rec)
        scored.tier_may_move = rec.person
        return scored

    monkeypatch.setattr(Scheme, "score", everyone_with_a_record)
    full = xinyong.run(sc)
    for table in ("spells", "persons", "daily"):
        query = f"SELECT * FROM {table} ORDER BY ALL"
        assert fast.sql(query) == full.sql(query), table
    assert fast.sql("SELECT count(*) FROM spells").column(0)[0].as_py() > 100


def test_observation_of_an_event_is_coupled_across_reforms() -> None:
    """Detection and misattribution read the event's own uniform, so a reform of a channel
    changes only the events it must: with registry's misattribution raised, every positive
    event is detected as before, and every misattribution before is one still (the victims
    may differ); with its detection lowered, only events detected before are detected."""

    def registry_records(**changes: float) -> dict[tuple[int, int, str], str]:
        """The truth of each positive registry event's record, by (day, actor, behaviour)."""
        overrides = {f"channels.registry.{k}": v for k, v in changes.items()}
        sc = xinyong.load_scenario("r1", adults=3000, days=30, seed=4, overrides=overrides)
        positive = {b for b, v in sc.behaviours.items() if v.sign == "positive"}
        rec = xinyong.run(sc).table("records").to_pydict()
        keys = zip(rec["day"], rec["actor"], rec["behaviour"], strict=True)
        return {
            k: t
            for k, t, c in zip(keys, rec["truth"], rec["channel"], strict=True)
            if c == "registry" and k[2] in positive
        }

    base = registry_records()
    more_errors = registry_records(misattribute=0.05)
    assert base.keys() == more_errors.keys()
    wrong = {k for k, t in base.items() if t == "misattributed"}
    wrong_after = {k for k, t in more_errors.items() if t == "misattributed"}
    assert wrong < wrong_after
    assert len(wrong_after) > 10 * max(1, len(wrong))
    less_seen = registry_records(detect=0.5)
    assert less_seen.keys() < base.keys()


def test_the_meetings_flags_are_the_association_list_of_the_day(monkeypatch) -> None:
    """S1's list grows from nobody: step 5 first visits the listed persons' neighbours, then
    draws meetings, reading flags that must be exactly the rows listed at the day's start, and
    each adult's bits for its listed neighbours, both brought up to date from the day before."""
    sampler: list[bool] = []
    association = World.association

    def checked(self: World, rng: np.random.Generator, listed: np.ndarray):
        out = association(self, rng, listed)
        sampler.append(self.by_meetings(len(listed)))
        if sampler[-1]:
            bits = np.unpackbits(self.listed_flags, bitorder="little")
            assert np.array_equal(np.flatnonzero(bits), listed)
            degree, nbr = self.graph[1].astype(np.int64), self.graph[2]
            owner = np.repeat(np.arange(len(degree)), degree)
            slot = np.arange(len(nbr)) - np.repeat(np.cumsum(degree) - degree, degree)
            mine = (owner < len(self.listed_slots)) & (degree[owner] <= SLOTS)
            slots = np.zeros(len(self.listed_slots), dtype=np.uint32)
            np.bitwise_or.at(
                slots, owner[mine], (bits[nbr].astype(np.int64) << slot)[mine].astype(np.uint32)
            )
            assert np.array_equal(self.listed_slots, slots)
        return out

    monkeypatch.setattr(World, "association", checked)
    Simulation(load_scenario("s1", adults=3000, days=150, seed=5)).run()
    assert len(sampler) == 150 and not sampler[0]
    switched = sampler.index(True)
    assert 0 < switched < 100 and sum(sampler) > 100


def test_step_4s_flags_are_the_affected_members_of_the_day(monkeypatch) -> None:
    """S1's blacklisted are many: step 4 reads a bit per risk row of theirs, brought up to date
    each day from the ids whose lists changed, which must equal the bits set anew."""
    paths: list[str] = []
    flags_of = World.flags_of

    def checked(self: World, affected: np.ndarray, since) -> np.ndarray:
        before = self.flagged
        if affected is before:
            paths.append("same")
        elif since is not None and since[0] is before:
            paths.append("changed")
        else:
            paths.append("anew")
        flags = flags_of(self, affected, since)
        rows = np.flatnonzero(np.unpackbits(flags, bitorder="little"))
        assert np.array_equal(rows, np.sort(self.traits.risk_rank[affected]))
        return flags

    monkeypatch.setattr(World, "flags_of", checked)
    Simulation(load_scenario("s1", adults=3000, days=150, seed=5)).run()
    assert paths[0] == "anew" and paths.count("anew") == 1
    assert paths.count("changed") > 50
