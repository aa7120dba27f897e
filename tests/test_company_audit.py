"""The audit over companies (metrics.json `company.*` and `company`), the report's Companies
section and `explain RUN company=ID`, cross-checked against the run's tables with independent
SQL."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import xinyong
from xinyong.audit.audit import audit
from xinyong.cli import main
from xinyong.companies.explain import explain_company
from xinyong.store import RunDir

T = 730


@pytest.fixture(scope="module")
def c1(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("c1") / "run"
    sc = xinyong.load_scenario("c1", adults=20_000).with_(days=T)
    xinyong.run(sc, out=out)
    doc = audit(out, baseline=False, report=True)
    return out, doc


@pytest.fixture(scope="module")
def con(c1) -> duckdb.DuckDBPyConnection:
    return RunDir(c1[0]).connect()


def test_metrics_json_has_the_company_section(c1) -> None:
    path, doc = c1
    saved = json.loads((path / "metrics.json").read_text())
    assert saved["company"]["lists"] == doc["company"]["lists"]
    assert any(k.startswith("company.") for k in saved["metrics"])


def test_wrongly_listed_by_size_matches_the_companies_table(c1, con) -> None:
    _, doc = c1
    m = doc["metrics"]
    for lst in doc["company"]["lists"]:
        direct = dict(
            con.sql(
                f"""SELECT size, count(*) FILTER (WHERE "on.{lst}" AND NOT "shadow_on.{lst}")
                    FROM companies GROUP BY ALL"""
            ).fetchall()
        )
        sizes = dict(con.sql("SELECT size, count(*) FROM companies GROUP BY ALL").fetchall())
        for size, n in sizes.items():
            row = m[f"company.wrongly_listed_share_by_size.{lst}.{size}"]
            assert (row["count"], row["of"]) == (direct[size], n)
            assert row["value"] == pytest.approx(direct[size] / n)


def test_ever_wrongly_listed_matches_a_day_by_day_count(c1, con) -> None:
    """Ever wrongly on a list: a day on which a recorded spell is open and no shadow spell,
    counted day by day in pandas (independent of the audit's segment SQL)."""
    _, doc = c1
    spells = con.sql("SELECT * FROM company_spells").df()
    size = dict(con.sql("SELECT company, size FROM companies").fetchall())
    seen: dict[tuple[str, str], set[int]] = {}
    for (company, lst), g in spells.groupby(["company", "list"]):
        days = {"recorded": set(), "shadow": set()}
        for r in g.itertuples():
            end = T if pd.isna(r.end) else int(r.end)  # null: open at T
            days[r.world].update(range(int(r.start), end))
        if days["recorded"] - days["shadow"]:
            seen.setdefault((lst, size[company]), set()).add(company)
    total = 0
    for r in doc["company"]["wrongly_listed"]:
        expected = len(seen.get((r["list"], r["size"]), ()))
        assert r["ever_wrong"] == expected, (r["list"], r["size"])
        total += expected
    blacklist = sum(len(v) for (lst, _), v in seen.items() if lst == "company_blacklist")
    assert doc["metrics"]["company.ever_wrongly_listed_share.company_blacklist"]["count"] == (
        blacklist
    )
    assert total > 0  # this run has wrongly listed companies, so the check bites


def test_ratings_by_size_match_the_ratings_table(c1, con) -> None:
    _, doc = c1
    for r in doc["company"]["ratings"]:
        rated, a, d = con.sql(
            f"""SELECT count(*) FILTER (WHERE r.grade <> 'unrated'),
                       count(*) FILTER (WHERE r.grade = 'A'), count(*) FILTER (WHERE r.grade = 'D')
                FROM company_ratings r JOIN companies c USING (company)
                WHERE r.year = {r["year"]} AND r.world = '{r["world"]}'
                  AND c.size = '{r["size"]}'"""
        ).fetchall()[0]
        assert (r["rated"], r["a"], r["d"]) == (rated, a, d)
        row = doc["metrics"][f"company.rated_a_share.{r['world']}.{r['year']}.{r['size']}"]
        assert (row["count"], row["of"]) == (a, rated)
    assert {r["year"] for r in doc["company"]["ratings"]} == {0, 1}


def test_blacklist_survival_starts_at_one_and_never_rises(c1, con) -> None:
    _, doc = c1
    curve = doc["company"]["survival"]["company_blacklist"]
    assert curve["t"][0] == 0 and curve["s"][0] == 1.0
    assert all(b <= a for a, b in zip(curve["s"], curve["s"][1:], strict=False))
    n = con.sql(
        "SELECT count(*) FROM company_spells WHERE list = 'company_blacklist' "
        "AND world = 'recorded'"
    ).fetchall()[0][0]
    assert curve["at_risk"][0] == n == doc["metrics"]["company.spells.company_blacklist"]["value"]


def test_persons_restricted_through_their_companies(c1, con) -> None:
    _, doc = c1
    rows = {p["list"]: p for p in doc["company"]["persons"]}
    assert set(rows) == {"consumption_restricted", "corporate_officer_ban"}
    p = rows["consumption_restricted"]
    listed, wrong = con.sql(
        """SELECT count(*) FILTER (WHERE "on.consumption_restricted"),
                  count(*) FILTER (WHERE "on.consumption_restricted"
                                   AND NOT "shadow_on.consumption_restricted") FROM persons"""
    ).fetchall()[0]
    # An adult is on it at T exactly when a company they represent is a defaulter at T.
    by_company = con.sql(
        """SELECT count(DISTINCT legal_rep) FILTER (WHERE "on.company_defaulters")
           FROM companies"""
    ).fetchall()[0][0]
    assert (p["listed"], p["wrong"]) == (listed, wrong)
    assert listed == by_company > 0
    ever = con.sql(
        "SELECT count(DISTINCT person) FROM spells WHERE list = 'consumption_restricted' "
        "AND world = 'recorded'"
    ).fetchall()[0][0]
    assert p["ever_listed"] == ever
    m = doc["metrics"]["company.person_listed.consumption_restricted"]
    reps = con.sql("SELECT count(DISTINCT legal_rep) FROM companies").fetchall()[0][0]
    assert (m["count"], m["of"]) == (listed, reps)
    # No adult on corporate_officer_ban: its share of the listed has a zero denominator.
    if rows["corporate_officer_ban"]["listed"] == 0:
        null = doc["metrics"]["company.person_wrongly_listed_of_listed.corporate_officer_ban"]
        assert null["value"] is None and null["of"] == 0


def test_children_restricted_only_through_consumption_restricted(c1, con) -> None:
    _, doc = c1
    kids = doc["company"]["children"]
    only = con.sql(
        """WITH par AS (SELECT child, parent1 AS person FROM children
                        UNION ALL SELECT child, parent2 FROM children WHERE parent2 IS NOT NULL),
           per AS (SELECT child, bool_or(p."on.consumption_restricted") AS cr,
                          bool_or(p."on.blacklist" OR p."on.defaulters") AS other
                   FROM par JOIN persons p USING (person) GROUP BY child)
           SELECT count(*) FILTER (WHERE cr AND NOT other) FROM per"""
    ).fetchall()[0][0]
    assert kids["only_at_T"] == only
    restricted = con.sql("SELECT count(*) FROM children WHERE restricted").fetchall()[0][0]
    assert kids["restricted_at_T"] == restricted >= only
    assert kids["only_ever"] >= kids["only_at_T"]


def test_report_has_a_companies_section(c1) -> None:
    path, _ = c1
    page = (path / "report.html").read_text()
    assert '<section id="companies"><h2>Companies</h2>' in page
    for name in ("company-wrongly-listed", "company-ratings", "company-survival"):
        assert f'-{name}"' in page
        assert f'download="{name}.csv"' in page
    assert "<script src=" not in page  # plotly.js is embedded, nothing fetched
    # One run: its intervals are said to be within-run, and no seeds are named.
    section = page.split('<section id="companies">')[1].split("</section>")[0]
    assert "Intervals: 95% Wilson (Greenwood\nfor the curve), within-run" in section
    assert "across seeds" not in section and "per run over" not in section
    # The opening key findings include the companies' first findings.
    opening = page[page.index('id="key-findings"') : page.index('<section id="companies">')]
    assert "companies were wrongly on the " in opening
    assert "Published tax rating shares: A 4.9%, D 7.0% in the 2019 rating" in opening


def test_explain_company_names_every_record(c1, con) -> None:
    path, _ = c1
    company = con.sql(
        """SELECT company FROM company_records WHERE truth <> 'correct'
           GROUP BY company ORDER BY count(*) DESC, company LIMIT 1"""
    ).fetchall()[0][0]
    report = explain_company(path, company)
    ids = [r[0] for r in con.sql(
        f"SELECT record_id FROM company_records WHERE company = {company} ORDER BY day, record_id"
    ).fetchall()]  # fmt: skip
    assert [r["record_id"] for r in report["records"]] == ids
    truth = dict(
        con.sql(
            f"SELECT record_id, truth FROM company_records WHERE company = {company}"
        ).fetchall()
    )
    assert all(r["truth"] == truth[r["record_id"]] for r in report["records"])
    ratings = con.sql(f"SELECT count(*) FROM company_ratings WHERE company = {company}").fetchall()[
        0
    ][0]
    assert len(report["ratings"]) == ratings == 4  # two tax years, two worlds
    spells = con.sql(f"SELECT count(*) FROM company_spells WHERE company = {company}").fetchall()[
        0
    ][0]
    assert len(report["spells"]) == spells
    rep = con.sql(f"SELECT legal_rep FROM companies WHERE company = {company}").fetchall()[0][0]
    assert report["legal_rep"]["person"] == report["company"]["legal_rep"] == rep
    assert report["story"]["verdict"]
    api = xinyong.explain(path, company=company)
    assert api.verdict == report["story"]["verdict"]
    assert len(api.records) == len(ids)


def test_every_wrongly_listed_company_gets_a_why_naming_a_wrong_record(c1, con) -> None:
    """Every company the audit counts as wrongly listed at some point gets a verdict naming a
    wrong record made by the first wrongful day of the spell it speaks of."""
    from xinyong.audit.queries import wrongful_spells_sql
    from xinyong.companies.explain import CompanyExplainer, company_story

    path, _ = c1
    source = f'SELECT company, list, world, start, coalesce("end", {T}) AS stop FROM company_spells'
    wrongly = [c for (c,) in con.sql(
        f"SELECT DISTINCT company FROM ({wrongful_spells_sql(source, 'company, list')}) ORDER BY 1"
    ).fetchall()]  # fmt: skip
    assert len(wrongly) >= 5
    ex = CompanyExplainer(path)
    for company in wrongly:
        report = ex.company(company)
        verdict = company_story(report)["verdict"]
        assert verdict.startswith(("Wrongly on", "Was wrongly on")), (company, verdict)
        wrong = [s for s in report["spells"] if s.get("wrongly_listed")]
        s = max(wrong, key=lambda s: s["wrong_days"])
        named = [
            r
            for r in report["records"]
            if r["truth"] != "correct"
            and r["day"] <= s["first_wrong_day"]
            and f"{r['behaviour']} record ({r['channel']})" in verdict
        ]
        assert named, (company, verdict)


def test_explain_company_follows_a_defaulter_to_its_representative(c1, con) -> None:
    path, _ = c1
    company, rep = con.sql(
        """SELECT company, legal_rep FROM companies WHERE "on.company_defaulters"
           ORDER BY company LIMIT 1"""
    ).fetchall()[0]
    report = explain_company(path, company)
    hit = [s for s in report["legal_rep"]["spells"] if s["because_of_this_company"]]
    assert {s["list"] for s in hit} == {"consumption_restricted"}
    assert f"adult {rep}" in report["story"]["verdict"]


def test_cli_explain_company(c1, capsys) -> None:
    path, _ = c1
    with pytest.raises(SystemExit) as exit_:
        main(["explain", str(path), "company=0", "--json"])
    assert exit_.value.code == 0
    assert json.loads(capsys.readouterr().out)["company"]["company"] == 0
    with pytest.raises(SystemExit) as exit_:
        main(["explain", str(path), "company=999999999"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert "no company 999999999" in err and len(err.strip().splitlines()) == 1


def test_cli_explain_unknown_kind(c1, capsys) -> None:
    path, _ = c1
    with pytest.raises(SystemExit) as exit_:
        main(["explain", str(path), "shop=1"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert "no explainer for 'shop' (known: adult, company" in err
    assert len(err.strip().splitlines()) == 1
