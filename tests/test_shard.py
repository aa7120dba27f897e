"""Multi-city runs: per-city populations and streams, ghosts, and the same tables whatever
the layout of cities onto shards (here, shards in one process; Ray's in test_cluster.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import xinyong
from tests.conftest import quiet_scenario
from tests.shards import many_cities, run_in_shards, three_cities
from tests.test_golden import digest
from xinyong import population
from xinyong.errors import XinyongError
from xinyong.scenario import load_scenario
from xinyong.shard import Layout, pack_bins, summed_daily
from xinyong.store import RunDir, run_tables


def digests(path: Path) -> dict[str, str]:
    rd = RunDir(path, finished=False)  # run_in_shards writes the tables alone
    return {name: digest(rd.table(name)) for name in run_tables() if rd.has(name)}


@pytest.fixture(scope="module")
def three_city_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    sc = three_cities()
    out = {}
    for bins in (1, 2, 3):
        out[bins] = run_in_shards(sc, tmp_path_factory.mktemp(f"bins{bins}"), bins)
    return out


def test_three_cities_same_tables_on_one_two_three_shards(three_city_runs) -> None:
    one = digests(three_city_runs[1])
    for bins in (2, 3):
        assert digests(three_city_runs[bins]) == one


def test_cross_city_meetings_happen(three_city_runs) -> None:
    """The invariance above is not vacuous: listed adults have neighbours in other cities,
    and meetings with listed neighbours happen."""
    con = RunDir(three_city_runs[1], finished=False).connect()
    cross = con.sql(
        "SELECT count(*) FROM edges e JOIN persons a ON a.person = e.a "
        "JOIN persons b ON b.person = e.b WHERE a.city <> b.city"
    ).fetchall()[0][0]
    assert cross > 0
    assert con.sql("SELECT sum(association_events) FROM daily").fetchall()[0][0] > 0


def test_record_ids_unique_and_appeals_join_records(three_city_runs) -> None:
    con = RunDir(three_city_runs[3], finished=False).connect()
    n, distinct = con.sql("SELECT count(*), count(DISTINCT record_id) FROM records").fetchall()[0]
    assert n == distinct > 0
    filed, joined = con.sql(
        "SELECT count(*), count(r.record_id) FROM appeals a LEFT JOIN records r USING (record_id)"
    ).fetchall()[0]
    assert filed == joined > 0
    assert con.sql(
        "SELECT count(*) FROM appeals a JOIN records r USING (record_id) "
        "WHERE a.person <> r.person OR NOT r.appealed"
    ).fetchall()[0] == (0,)


def test_merged_daily_is_the_sum_of_parts(three_city_runs) -> None:
    path = three_city_runs[3]
    con = RunDir(path, finished=False).connect()
    daily = con.sql("SELECT * FROM daily ORDER BY day").to_arrow_table()
    con.sql(f"CREATE VIEW parts AS SELECT * FROM read_parquet('{path}/parts/daily-*.parquet')")
    assert len(list((path / "parts").glob("daily-*.parquet"))) == 3
    for name in daily.column_names:
        if name in ("day", "mean_score", "mean_shadow_score"):
            continue
        summed = con.sql(
            f'SELECT day, sum("{name}") FROM parts GROUP BY day ORDER BY day'
        ).fetchall()
        assert [v for _, v in summed] == daily[name].to_pylist(), name
    total = con.sql("SELECT day, sum(mean_score) FROM parts GROUP BY day ORDER BY day").fetchall()
    adults = con.sql("SELECT count(*) FROM persons").fetchall()[0][0]
    assert np.allclose([v / adults for _, v in total], daily["mean_score"].to_pylist())
    records = con.sql("SELECT count(*) FROM records").fetchall()[0][0]
    assert records == sum(
        con.sql("SELECT sum(records_positive + records_negative) FROM daily").fetchall()[0]
    )


@pytest.mark.parametrize(
    "cities", [40, pytest.param(300, marks=pytest.mark.slow)], ids=["40-cities", "300-cities"]
)
def test_many_cities_same_tables_on_one_and_three_shards(tmp_path: Path, cities: int) -> None:
    sc = many_cities(cities, adults=10 * cities)
    run_in_shards(sc, tmp_path / "one", 1)
    run_in_shards(sc, tmp_path / "three", 3)
    one = digests(tmp_path / "one")
    assert digests(tmp_path / "three") == one
    persons = RunDir(tmp_path / "one", finished=False).table("persons")
    assert len(set(persons["city"].to_pylist())) == cities
    assert persons["person"].to_pylist() == list(range(sc.adults))


def test_city_codes_do_not_wrap_past_256_cities() -> None:
    sc = many_cities(adults=1200)
    pop = population.generate(sc, np.random.SeedSequence(0))
    assert pop.city.dtype == np.uint16
    assert np.array_equal(np.bincount(pop.city), Layout.of(sc).sizes)
    with pytest.raises(XinyongError, match="at most 65,536 cities"):
        population.city_code(population.MAX_CITIES + 1)


def test_a_city_draws_the_same_whoever_holds_it() -> None:
    """City k's population comes from the seed and k alone, and the cross-city edges each
    city lists are the same whichever other cities are asked for with it."""
    sc = three_cities()
    sizes = Layout.of(sc).sizes
    alone = population.cross_edges(sc.seed, sc.population, sizes, [1])
    together = population.cross_edges(sc.seed, sc.population, sizes, [0, 1, 2])
    for name in ("slots", "inside", "local", "foreign"):
        assert np.array_equal(getattr(alone[1], name), getattr(together[1], name)), name
    # Both ends of every cross edge are listed, each in its own city.
    starts = Layout.of(sc).first_adult
    ends = {
        (int(starts[k] + i), int(g))
        for k, c in together.items()
        for i, g in zip(c.local, c.foreign, strict=True)
    }
    assert ends and all((g, i) in ends for i, g in ends)


def test_pack_bins_balances_adults() -> None:
    sizes = np.array([50, 10, 40, 0, 30, 20])
    bins = pack_bins(sizes, 2)
    assert sorted(k for b in bins for k in b) == [0, 1, 2, 4, 5]  # the empty city left out
    assert sorted(int(sizes[b].sum()) for b in bins) == [70, 80]  # largest first, greedy
    assert pack_bins(sizes, 9) == [[0], [2], [4], [5], [1]]


def test_a_listing_reaches_another_city_the_next_day(tmp_path: Path) -> None:
    """A boundary adult listed on day t (step 9) is read by its neighbours in another city
    from day t + 1 on (start-of-day status), never on day t."""
    overrides = {
        "cities": [
            {"name": "east", "share": 0.5, "pack": "rongcheng"},
            {"name": "west", "share": 0.5, "pack": "rongcheng"},
        ],
        "population.edges_per_adult": 2,
        "population.cross_city_share": 0.5,
        "consequences.rho": 1.0,
        "packs.rongcheng.start_score.value": 601,  # grade C; one jaywalking record: D
    }
    sc = quiet_scenario(adults=40, days=12, overrides=overrides)
    probe = xinyong.run(sc)
    edges = (
        probe.connect()
        .sql("SELECT e.a, e.b FROM edges e WHERE e.a < 20 AND e.b >= 20 ORDER BY e.a, e.b")
        .fetchall()
    )
    assert edges
    boundary = edges[0][0]
    t = 5
    run = xinyong.run(sc, script={t: [(boundary, "jaywalking")]})
    listed = (
        run.connect()
        .sql(
            f"SELECT min(start) FROM spells WHERE person = {boundary} AND list = 'blacklist' "
            "AND world = 'recorded'"
        )
        .fetchall()[0][0]
    )
    assert listed == t
    west = (
        run.connect()
        .sql(
            "SELECT min(day) FROM records WHERE behaviour = 'associating_with_blacklisted' "
            "AND person >= 20"
        )
        .fetchall()[0][0]
    )
    assert west is not None and west >= t + 1
    # Nobody meets a listed neighbour before the listing.
    assert probe.connect().sql("SELECT sum(association_events) FROM daily").fetchall()[0] == (0,)


def test_one_city_keeps_its_streams() -> None:
    """A one-city scenario's streams are the scenario seed's (tests/test_golden.py holds the
    digests); only multi-city scenarios draw per city."""
    assert population.city_seed(7, 0, 1).spawn_key == ()
    assert population.city_seed(7, 2, 3).spawn_key == (population.CITY_STREAMS, 2)


def test_empty_cities_are_left_out() -> None:
    sc = load_scenario("three-cities", adults=5, days=3, overrides={"population.child_ratio": 0})
    sc = sc.with_(cities=[
        {"name": "a", "share": 0.98, "pack": "rongcheng"},
        {"name": "b", "share": 0.01, "pack": "suqian"},
        {"name": "c", "share": 0.01, "pack": "xiamen-egret"},
    ])  # fmt: skip
    run = xinyong.run(sc)
    assert run.summary["adults"] == 5
    assert run.table("persons").num_rows == 5


def test_national_runs_at_any_scale() -> None:
    sc = load_scenario("national")
    assert len(sc.cities) == 31
    assert abs(sum(c.share for c in sc.cities) - 1) < 1e-9
    share = {c.name: c.share for c in sc.cities}
    assert share["guangdong"] == pytest.approx(126_012_510 / 1_409_778_724)
    pack = {c.name: c.pack for c in sc.cities}
    assert (pack["shandong"], pack["jiangsu"], pack["fujian"]) == (
        "rongcheng",
        "suqian",
        "xiamen-egret",
    )
    assert pack["beijing"] == "municipal-generic"
    assert sc.national_packs == ("national-defaulters",)
    for adults in (40, 3100):  # at 40, most provinces have no adult at all
        run = xinyong.run(load_scenario("national", adults=adults, days=3))
        assert run.summary["adults"] == run.table("persons").num_rows == adults


def test_daily_rows_summed_over_cities_by_column() -> None:
    """Two cities whose packs name different tiers: each column summed where a city has it,
    the score means replaced by the summed score sums, the day kept."""
    first = SimpleNamespace(
        daily=[{"day": d, "mean_score": 0.5, "mean_shadow_score": 0.5, "records": 3 + d,
                "tier.A": 10} for d in range(2)],
        score_sums=[np.array([1000, 2000]), np.array([1001, 2002])],
    )  # fmt: skip
    second = SimpleNamespace(
        daily=[{"day": d, "mean_score": 9.0, "mean_shadow_score": 9.0, "records": 5,
                "tier.B": 7 * d} for d in range(2)],
        score_sums=[np.array([30, 40]), np.array([31, 41])],
    )  # fmt: skip
    assert summed_daily([first, second], 2) == [
        {"day": 0, "mean_score": 1030, "mean_shadow_score": 2040, "records": 8, "tier.A": 10,
         "tier.B": 0},
        {"day": 1, "mean_score": 1032, "mean_shadow_score": 2043, "records": 9, "tier.A": 10,
         "tier.B": 7},
    ]  # fmt: skip
    assert summed_daily([first], 0) == []
