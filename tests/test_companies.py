"""Companies end to end: C1 in a run directory, read back through SQL; companies leave the
adults' draws alone; bad company input is one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

import xinyong
from tests.test_cli import cli
from tests.test_golden import digest
from xinyong.errors import XinyongError


@pytest.fixture(scope="module")
def c1_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("c1") / "run"
    xinyong.run(xinyong.load_scenario("c1", adults=4000, days=400, seed=9), out)
    return out


def test_companies_leave_the_adults_draws_alone() -> None:
    """C1 is R1 plus companies on streams of their own; the person lists carry no effects on
    behaviour, so the adults' records are R1's, record for record."""
    r1 = xinyong.run(xinyong.load_scenario("r1", adults=3000, days=200, seed=6))
    c1 = xinyong.run(xinyong.load_scenario("c1", adults=3000, days=200, seed=6))
    for table in ("records", "appeals", "behaviour_daily", "edges"):
        assert digest(c1.table(table)) == digest(r1.table(table)), table


def test_run_directory_holds_the_company_tables(c1_dir: Path) -> None:
    run = xinyong.Run.open(c1_dir)
    n = run.summary["adults"]
    companies = run.sql("SELECT count(*) AS n FROM companies").column("n")[0].as_py()
    assert companies == round(0.05 * n) == 200
    # Every company was rated once (day 364), in both worlds.
    rated = run.sql(
        "SELECT world, count(*) AS n FROM company_ratings WHERE year = 0 GROUP BY ALL ORDER BY 1"
    ).to_pydict()
    assert rated == {"world": ["recorded", "shadow"], "n": [200, 200]}
    # The grade at T is the rating of year 0 (recorded world).
    mismatched = run.sql(
        "SELECT count(*) AS n FROM companies c JOIN company_ratings r ON r.company = c.company "
        "AND r.year = 0 AND r.world = 'recorded' WHERE c.grade <> r.grade"
    )
    assert mismatched.column("n")[0].as_py() == 0
    # Shares in summary.json are the tables' counts over the companies.
    summary = run.summary
    for grade in ("A", "B", "M", "C", "D"):
        count = run.sql(f"SELECT count(*) AS n FROM companies WHERE grade = '{grade}'")
        assert summary[f"company.rating_share.{grade}"] == count.column("n")[0].as_py() / 200
    on = run.sql('SELECT count(*) AS n FROM persons WHERE "on.consumption_restricted"')
    assert summary["legal_rep_restricted_share"] == on.column("n")[0].as_py() / n
    # A legal representative is on consumption_restricted exactly while one of their firms
    # is a corporate defaulter.
    reps = (
        run.sql(
            'SELECT DISTINCT legal_rep AS p FROM companies WHERE "on.company_defaulters" ORDER BY 1'
        )
        .column("p")
        .to_pylist()
    )
    restricted = (
        run.sql('SELECT person AS p FROM persons WHERE "on.consumption_restricted" ORDER BY 1')
        .column("p")
        .to_pylist()
    )
    assert reps == restricted
    records = run.sql("SELECT count(*) AS n FROM company_records").column("n")[0].as_py()
    assert summary["company.neg_records_per_company_year"] == pytest.approx(
        records / 200 / (400 / 365)
    )


def test_cli_sql_reads_company_tables(c1_dir: Path) -> None:
    out = cli("sql", str(c1_dir), "SELECT count(*) AS n FROM company_spells")
    assert out.returncode == 0, out.stderr
    assert "n" in out.stdout


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"companies.size_shares.micro": 0.5}, "size shares must add up to 1"),
        ({"companies.script": {0: [[5, "unpaid_loan"]]}, "population.adults": 10}, "no company 5"),
        ({"companies.behaviours.unpaid_loan.channel": "nowhere"}, "unknown channel 'nowhere'"),
        ({"companies.packs": ["national-tax-rating"]}, "unknown company list"),
        (
            {
                "company_packs.national-enterprise-lists.lists.company_blacklist.while_any": [
                    {"rated": "E"}
                ]
            },
            "company_blacklist.while_any.0.rated",
        ),
    ],
)
def test_bad_company_input_names_the_field(override: dict, message: str) -> None:
    with pytest.raises(XinyongError) as err:
        xinyong.load_scenario("c1", overrides=override)
    assert message in str(err.value)


def test_malformed_company_pack_is_one_line_and_exit_2(tmp_path: Path) -> None:
    pack = tmp_path / "tax.yaml"
    pack.write_text(
        "id: my-tax\nkind: company\ntitle: t\nrating:\n"
        "  start: {full: 100, partial: 90, source: x}\n"
        "  grades: {A: {min_score: 90, source: illustrative, note: n}}\n"
    )
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"extends: c1\nname: mine\ncompanies:\n  packs: [{pack}]\n")
    out = cli("run", str(scenario), "--adults", "100", "--out", str(tmp_path / "run"))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert f"{pack}:4: rating: grades needs a min_score" in lines[0]
