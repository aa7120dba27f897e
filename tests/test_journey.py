"""A journalist's journey: s1 and c1, small, over two seeds each. Every number of the key
findings is checked against the metrics it cites, recomputed here from each seed's own audit:
means per run (not totals over seeds, not seed 1's), the denominators per run, and the words
"over 2 seeds"."""

from __future__ import annotations

from statistics import mean

import pytest

import xinyong
from xinyong.audit import stats
from xinyong.audit.format import count, interval, pct
from xinyong.audit.registry import MIN_COUNT
from xinyong.audit.report import key_findings
from xinyong.calibration.targets import load_targets
from xinyong.words import number

K = 2
OVER = f"per run over {K} seeds"


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, tuple[dict, list[dict]]]:
    """Each scenario's replicate audit and its seeds' own audits."""
    out = {}
    # s1 with as many minority adults as majority ones: both sides of its disparity have
    # people to count at this size.
    for name, adults, days, overrides in (
        ("s1", 2000, 200, {"population.minority_share": 0.5}),
        ("c1", 1500, 730, {}),
    ):
        path = tmp_path_factory.mktemp(name) / "run"
        sc = xinyong.load_scenario(name, adults=adults, days=days, overrides=overrides)
        xinyong.run_replicates(sc, path, K, workers=K)
        doc = xinyong.audit(path, baseline=False, report=True).doc
        doc["path"] = path
        seeds = [
            xinyong.audit(path / "replicates" / f"seed-{sc.seed + i}", baseline=False).doc
            for i in range(K)
        ]
        out[name] = (doc, seeds)
    return out


def per_seed(seeds: list[dict], name: str, key: str = "count") -> list:
    return [s["metrics"][name][key] for s in seeds]


def test_s1_findings_are_means_per_run_with_their_denominators(sets) -> None:
    doc, seeds = sets["s1"]
    found = [sentence for sentence, _, _ in key_findings(doc)]
    assert doc["replicates"] == K
    ever = per_seed(seeds, "ever_wrongly_listed_share.blacklist")
    now = per_seed(seeds, "wrongly_listed_share.blacklist")
    adults = per_seed(seeds, "ever_wrongly_listed_share.blacklist", "of")
    assert adults == [2000] * K
    head = next(s for s in found if "wrongly on the blacklist at the end" in s)
    # The mean of the seeds, not their total; the denominator is one run's adults.
    assert head.startswith(f"{count(mean(now))} ")
    assert f"{count(mean(ever))} at some point {OVER}" in head
    share = mean(e / n for e, n in zip(ever, adults, strict=True))
    assert f"({pct(share)} of 2,000 adults; " in head and "across seeds)" in head
    assert sum(ever) != mean(ever) or not any(ever)  # the total would be a different number
    # The disparity sentence: pooled counts of the row, given per run.
    row = next(
        r
        for r in doc["disparity"]
        if r["metric"] == "ever_wrongly_listed_share.blacklist" and r["group"] == "minority"
    )
    minority = [
        next(
            r["numerator"]
            for r in s["disparity"]
            if r["metric"] == row["metric"] and r["group"] == "minority"
        )
        for s in seeds
    ]
    # Per run, with its across-seed interval; the total only under its own name.
    assert row["numerator"] == mean(minority) and row["numerator_total"] == sum(minority) > 0
    low, high = stats.clip(*stats.mean_interval(minority)[1:], 0.0)
    assert (row["numerator_low"], row["numerator_high"]) == (low, high)
    groups = next(s for s in found if "in the minority group against" in s)
    assert f" {count(mean(minority))} in the minority group against" in groups
    assert OVER in groups
    small = min(row["numerator_total"], row["reference_numerator_total"]) < MIN_COUNT
    assert ("times as often" not in groups) == small
    # The list's chart title: means per run too, and whose curves are drawn.
    listed = per_seed(seeds, "list_share.blacklist")
    page = (doc["path"] / "report.html").read_text()
    titles = page.replace("\\u003cbr\\u003e", " ")  # a chart title's lines, as one
    assert (
        f"blacklist: {count(mean(listed))} adults listed at the end, {count(mean(now))} of them "
        f"wrongly ({count(mean(ever))} wrongly at some point {OVER}; curves of seed "
    ) in titles
    # The tiers' title: the shares per run over the seeds, not the first seed's.
    aaa = mean(s["run"]["tier_share.AAA"] for s in seeds)
    assert f"At the end, {pct(aaa)} of adults are in tier AAA and " in titles
    assert f"{OVER} (curves of seed 1)" in titles
    # The disparity table: per run with across-seed intervals, totals in their own column.
    assert "<th>People per run</th><th>People in total over 2 seeds</th>" in page
    cell = f"{number(row['numerator'])} {interval(low, high)} / "
    assert cell in page and f"{count(sum(minority))} / " in page
    # The survival curves: the seeds' mean with its across-seed band, not seed 1's.
    curves = [s["survival"]["blacklist"] for s in seeds]
    mine = doc["survival"]["blacklist"]
    assert mine["t"] == sorted({t for c in curves for t in c["t"]}) and "at_risk" not in mine
    for i, t in enumerate(mine["t"]):
        at_t = [stats.survival_at(c, t)[0] for c in curves]
        assert mine["s"][i] == pytest.approx(mean(at_t))
        lo, hi = stats.clip(*stats.mean_interval(at_t)[1:], 0.0, 1.0)
        assert (mine["low"][i], mine["high"][i]) == pytest.approx((lo, hi))
    assert "curves: mean of 2 seeds" in titles and "the mean of the 2 seeds' curves" in page
    # Every finding with a number says what it is a mean of.
    days = per_seed(seeds, "undeserved_sanction_person_days", "value")
    if any(days):
        said = f"{count(mean(days))} person-days of undeserved sanctions {OVER}:"
        assert any(sentence.startswith(said) for sentence in found)
    for sentence in found:
        assert "about 0 " not in sentence and " 1 people" not in sentence


def test_c1_headline_is_the_largest_company_list_and_says_what_cannot_happen(sets) -> None:
    doc, seeds = sets["c1"]
    found = [sentence for sentence, _, _ in key_findings(doc)]
    lists = doc["company"]["lists"]
    ever = {lst: mean(per_seed(seeds, f"company.ever_wrongly_listed_share.{lst}")) for lst in lists}
    companies = [s for s in found if "companies were wrongly on the" in s]
    if any(ever.values()):
        largest = max(lists, key=lambda lst: (ever[lst] >= MIN_COUNT, ever[lst]))
        assert companies == [next(s for s in companies if f"{count(ever[largest])} companies" in s)]
        assert f"wrongly on the {largest} at some point {OVER}" in companies[0]
    # seriously_illegal needs 1,095 days on abnormal_operations: none within 730.
    assert doc["company"]["earliest_day"]["seriously_illegal"][0] == 1095
    assert all(s["metrics"]["company.person_ever_listed.corporate_officer_ban"]["count"] == 0
               for s in seeds)  # fmt: skip
    assert (
        "No company (and so no legal representative on corporate_officer_ban) can be on the "
        "seriously_illegal within this run: it takes 1,095 days on abnormal_operations first, "
        "and the run lasts 730 days." in found
    )
    # The person lists' table: means per run, not the first seed's rows.
    from xinyong.companies.audit import _person_row

    for p in doc["company"]["persons"]:
        mine = [next(q for q in s["company"]["persons"] if q["list"] == p["list"]) for s in seeds]
        got = _person_row(doc["metrics"], p)
        for key in ("listed", "wrong", "ever_listed", "ever_wrong", "legal_representatives"):
            assert got[key] == pytest.approx(mean(q[key] for q in mine)), key
    # The companies' charts: per run over the seeds with across-seed intervals, and the
    # lock-in curve the seeds' mean; the section says which intervals it shows.
    from xinyong.companies.audit import RATING_KEYS, WRONGFUL_KEYS, _from_metrics

    for table, keys, fields in (
        ("wrongly_listed", WRONGFUL_KEYS, ("ever_wrong", "ever_wrong_share", "companies")),
        ("ratings", RATING_KEYS, ("a", "a_share", "d_share", "rated")),
    ):
        got = _from_metrics(doc["metrics"], doc["company"][table], keys)
        for i, r in enumerate(got):
            for key in fields:
                values = [s["company"][table][i][key] for s in seeds]
                if None not in values:
                    assert r[key] == pytest.approx(mean(values)), (table, key)
    curves = [s["company"]["survival"]["company_blacklist"] for s in seeds]
    at_100 = [stats.survival_at(c, 100)[0] for c in curves]
    assert stats.survival_at(doc["company"]["survival"]["company_blacklist"], 100)[0] == (
        pytest.approx(mean(at_100))
    )
    page = (doc["path"] / "report.html").read_text()
    section = page.split('<section id="companies">')[1].split("</section>")[0]
    assert "the first of 2 seeds" not in section and "within-run" not in section
    assert "Numbers are per run over 2 seeds; intervals: 95%\nStudent t across seeds" in section
    # Published rating shares from the target sets, the simulated ones the seeds' mean.
    published = next(s for s in found if s.startswith("Published tax rating shares: "))
    for name in ("tax-rating-2019", "tax-rating-2020", "tax-rating-2021"):
        targets = list(load_targets(name))
        shares = ", ".join(
            "+".join(m.rsplit(".", 1)[-1] for m in t.metric) + f" {pct(t.value)}" for t in targets
        )
        assert f"{shares} in the {targets[0].year} rating (" in published
    a = [s["run"]["company.rating_share.A"] for s in seeds]
    low, high = stats.clip(*stats.mean_interval(a)[1:], 0.0, 1.0)
    said = f"Simulated at the end of the run: A {pct(mean(a))} ({pct(low)} to {pct(high)} across"
    assert said in published


def test_the_company_headline_is_the_largest_list_not_the_first() -> None:
    """c1 at 100,000 adults: 7 firms on abnormal_operations (listed first) and 93 on the
    company blacklist; the headline is the blacklist's."""
    from xinyong.companies.audit import _headline

    def share(k: int, n: int) -> dict:
        return {"value": k / n, "count": k, "of": n}

    metrics = {
        "company.ever_wrongly_listed_share.abnormal_operations": share(7, 5000),
        "company.ever_wrongly_listed_share.company_blacklist": share(93, 5000),
        "company.ever_wrongly_listed_share_by_size.company_blacklist.micro": share(93, 4000),
        "company.wrongly_listed_share.company_blacklist": share(40, 5000),
    }
    doc = {
        "run": {"days": 730},
        "metrics": metrics,
        "company": {
            "lists": ["abnormal_operations", "company_blacklist"],
            "sizes": ["micro"],
            "wrongly_listed": [{}],
            "earliest_day": {"company_blacklist": [0, "a record or a rating"]},
        },
    }
    assert _headline(doc)[0] == (
        "93 companies were wrongly on the company_blacklist at some point: 93 of 4,000 micro; "
        "40 still at the end."
    )


def test_no_ratio_below_the_small_number_rule() -> None:
    """'Wrongly listed 0 times as often (0 against 1 people)' is not a finding."""
    ever = {"value": 0.001, "count": 1, "of": 1000}
    doc = {
        "metrics": {"ever_wrongly_listed_share.blacklist": ever},
        "disparity": [
            {"metric": "ever_wrongly_listed_share.blacklist", "group": "minority",
             "reference": "majority", "ratio": 0.0, "numerator": 0, "reference_numerator": 1}
        ],
    }  # fmt: skip
    found = [sentence for sentence, _, _ in key_findings(doc)]
    assert found[1] == (
        "Too few adults were wrongly listed to compare minority with majority adults: 0 in the "
        f"minority group against 1 in the majority group; a ratio needs at least {MIN_COUNT} "
        "people on each side."
    )


def test_a_chart_calls_a_class_the_highest_only_when_it_surely_is() -> None:
    from xinyong.companies.audit import _ahead

    # Medium 25.3% against small 24.5% of ~2,000 rated each: the intervals overlap.
    assert _ahead({"medium": (506, 2000), "small": (490, 2000)}) is None
    # One of 49 large firms at full height: under the small-number rule.
    assert _ahead({"large": (1, 49), "micro": (30, 4000)}) is None
    # 60 of 400 micro against 10 of 1,000 small: 15% [11.9%, 18.8%] above 1% [0.5%, 1.8%].
    assert _ahead({"micro": (60, 400), "small": (10, 1000)}) == "micro"
