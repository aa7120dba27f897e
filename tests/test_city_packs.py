"""The city packs and the `cities` scenario: every pack validates, documents come as
documents, and the features' keys are checked where they are written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from xinyong.errors import XinyongError
from xinyong.scenario import load_scenario
from xinyong.scheme.schema import PACKS_DIR, builtin_packs, load_pack

CITY_PACKS = ("hangzhou-qianjiang", "fuzhou-jasmine", "weihai-haibei", "wuxi-afu",
              "shanghai-honest", "xiamen-egret", "rongcheng", "suqian")  # fmt: skip


def test_every_builtin_pack_validates_against_the_cities_catalogue() -> None:
    behaviours = set(load_scenario("cities").behaviours)
    assert set(CITY_PACKS) <= set(builtin_packs())
    for name in builtin_packs():
        assert load_pack(name, behaviours).id == name


@pytest.mark.parametrize("name", builtin_packs())
def test_sources_are_documents_with_publisher_and_date(name: str) -> None:
    for key, source in load_pack(name).sources.items():
        assert source.publisher and source.date, f"{name}: source {key}"
        assert "spec/" not in source.title and "shared/" not in source.title


def pack_text(name: str) -> str:
    return (PACKS_DIR / f"{name}.yaml").read_text()


def load_changed(tmp_path: Path, name: str, old: str, new: str):
    text = pack_text(name)
    assert old in text
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace(old, new, 1))
    return load_pack(path)


def test_a_home_page_is_not_a_source(tmp_path: Path) -> None:
    with pytest.raises(XinyongError, match="is a home page") as err:
        load_changed(tmp_path, "fuzhou-jasmine",
                     "url: https://www.nesta.org.uk/report/separating-myth-reality/citizen-scoring/",
                     "url: https://www.nesta.org.uk/")  # fmt: skip
    assert err.value.field == "sources.nesta.url" or err.value.field.startswith("sources.nesta")


def test_an_unsourced_number_is_refused(tmp_path: Path) -> None:
    with pytest.raises(XinyongError, match="illustrative value needs a 'note'"):
        load_changed(
            tmp_path,
            "wuxi-afu",
            'source: chinadaily-2019, note: "1000 points"}',
            "source: illustrative}",
        )
    with pytest.raises(XinyongError, match="unknown source 'weihai-2021'"):
        load_changed(tmp_path, "weihai-haibei", "source: weihai-drc-2020,", "source: weihai-2021,")


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    [
        ("weihai-haibei", "- {units_per_point: 4}", "- {up_to: 300, units_per_point: 4}",
         "the last has none"),
        ("weihai-haibei", "{up_to: 80, units_per_point: 2}", "{up_to: 10, units_per_point: 2}",
         "must rise strictly"),
        ("weihai-haibei", "  volunteering:\n    expiry_days: 365\n",
         "  volunteering:\n    points: 2\n    expiry_days: 365\n", "replaces 'points'"),
        ("wuxi-afu", "    points: -50\n    push_below: 650", "    points: 5\n    push_below: 650",
         "belongs to a deduction"),
        ("suqian", "  jaywalking: {points: -3,", "  jaywalking: {push_below: 900, points: -3,",
         "needs a daily score"),
    ],
)  # fmt: skip
def test_feature_keys_are_checked(
    tmp_path: Path, name: str, old: str, new: str, message: str
) -> None:
    with pytest.raises(XinyongError, match=re.escape(message)) as err:
        load_changed(tmp_path, name, old, new)
    assert err.value.line is not None


def test_a_national_pack_has_no_city_features(tmp_path: Path) -> None:
    text = pack_text("national-defaulters") + (
        "clean_year_bonus: {points: 5, expiry_days: 10, source: illustrative, note: x}\n"
    )
    path = tmp_path / "n.yaml"
    path.write_text(text)
    with pytest.raises(XinyongError, match="a national pack has no clean_year_bonus"):
        load_pack(path)


def test_the_cities_scenario_has_the_census_shares() -> None:
    sc = load_scenario("cities")
    counts = {"shanghai": 24_870_895, "hangzhou": 11_936_010, "fuzhou": 8_291_268,
              "wuxi": 7_462_135, "xiamen": 5_163_970, "suqian": 4_986_192,
              "weihai": 2_906_548 - 720_000, "rongcheng": 720_000}  # fmt: skip
    total = sum(counts.values())
    assert total == 65_617_018
    assert {c.name: c.share for c in sc.cities} == pytest.approx(
        {k: v / total for k, v in counts.items()}
    )
    assert {c.pack for c in sc.cities} == set(CITY_PACKS)
    assert sc.national_packs == ("national-defaulters",)
    assert sc.population.cross_city_share == 0.1
    # The comment that documents the counts says the same numbers.
    comment = Path(load_scenario.__code__.co_filename).parent / "scenarios" / "cities.yaml"
    text = comment.read_text()
    for n in counts.values():
        assert f"{n:,}" in text
    assert yaml.safe_load(text)["extends"] == "c1"


def test_cities_same_tables_on_one_and_three_shards(tmp_path: Path) -> None:
    """Past day 365: Suqian's recalculations, Fuzhou's first bonus and the new window of
    Weihai's hours happen in every shard as in one."""
    from tests.shards import run_in_shards
    from tests.test_golden import digest
    from xinyong.store import RunDir, run_tables

    def digests(path: Path) -> dict[str, str]:
        rd = RunDir(path, finished=False)  # run_in_shards writes the tables alone
        return {name: digest(rd.table(name)) for name in run_tables() if rd.has(name)}

    sc = load_scenario("cities", adults=2000, days=370, seed=6)
    sc = sc.with_(companies=None, company_packs={})
    run_in_shards(sc, tmp_path / "one", 1)
    run_in_shards(sc, tmp_path / "three", 3)
    one = digests(tmp_path / "one")
    assert "spells" in one and digests(tmp_path / "three") == one


def test_explain_rebuilds_every_city_adults_score_and_grade(tmp_path: Path) -> None:
    """explain's timeline knows Suqian's recalculation days and Fuzhou's bonuses."""
    import xinyong
    from tests.test_explain import final_scores
    from xinyong.audit.explain import Explainer

    sc = load_scenario("cities", adults=600, days=400, seed=8)
    xinyong.run(sc.with_(companies=None, company_packs={}), out=tmp_path / "run")
    ex = Explainer(tmp_path / "run")
    seen = set()
    for i in range(600):
        report = ex.person(i)
        p = report["person"]
        assert final_scores(report) == (p["score"], p["shadow_score"]), i
        changes = report["grade_changes"]
        last = {c["world"]: c["to"] for c in changes}
        assert last.get("recorded", p["tier"]) == p["tier"], i
        assert last.get("shadow", p["shadow_tier"]) == p["shadow_tier"], i
        if p["city"] == "suqian":
            assert all(s["day"] % 30 == 0 for s in report["score_path"]), i
        events = {c["event"] for s in report["score_path"] for c in s["changes"]}
        seen |= {p["city"]} if "bonus" in events else set()
    assert "fuzhou" in seen


def test_the_city_comparison_counts_by_hand(tmp_path: Path) -> None:
    """Two quiet cities; every adult defaults on a court judgment on day 0 and nobody pays."""
    import csv as csvlib

    import xinyong
    from tests.conftest import quiet_scenario
    from xinyong.audit.cities import compare_cities, write_city_comparison

    cities = [{"name": "rongcheng", "share": 0.5, "pack": "rongcheng"},
              {"name": "wuxi", "share": 0.5, "pack": "wuxi-afu"}]  # fmt: skip
    plain = {"companies": None, "company_packs": {}, "consequences.pi": 0.0}
    sc = quiet_scenario(adults=6, days=3, base="cities", overrides={"cities": cities, **plain})
    run = tmp_path / "run"
    xinyong.run(sc, out=run, script={0: [[a, "court_judgment_default"] for a in range(6)]})
    doc = {c["city"]: c for c in compare_cities(run)["cities"]}
    n = {k: doc[k]["adults"] for k in doc}
    assert sum(n.values()) == 6 and min(n.values()) > 0
    # Rongcheng: 1000 - 50 = 950, grade B; Wuxi: pushed to 649, band 500-650, no whitelist.
    assert [g for g in doc["rongcheng"]["grades"] if g["adults"]] == [
        {"grade": "B", "adults": n["rongcheng"]}
    ]
    assert doc["rongcheng"]["score"]["median"] == 950
    assert [g for g in doc["wuxi"]["grades"] if g["adults"]] == [
        {"grade": "500-650", "adults": n["wuxi"]}
    ]
    for city in doc:
        lists = {x["list"]: x for x in doc[city]["lists"]}
        assert lists["defaulters"] | {"list": 0} == {
            "list": 0, "kind": "sanction", "on": n[city], "wrongly_on": 0, "ever": n[city],
            "ever_wrongly": 0,
        }  # fmt: skip
        reach = {r["consequence"]: sum(r["adults_by_group"].values()) for r in doc[city]["reach"]}
        assert reach["flight_ban"] == n[city] and "whitelist" not in reach
    assert write_city_comparison(run)
    rows = list(csvlib.DictReader((run / "cities.csv").open()))
    assert {"city": "wuxi", "measure": "list_on", "key": "defaulters", "count": str(n["wuxi"]),
            "of": str(n["wuxi"])} in rows  # fmt: skip
    assert "<script src" not in (run / "cities.html").read_text()
    one = tmp_path / "one"
    xinyong.run(quiet_scenario(adults=2, days=2), out=one)
    assert not write_city_comparison(one) and not (one / "cities.html").exists()
