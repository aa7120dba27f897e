"""Companies borrow (docs/credit.md, "The bank-tax loan"): the lender's decisions by hand
(a tax grade in tax_loan_grades, a file with a clean book, the company blacklist and the
court's list of corporate defaulters, each in both worlds), a default as the company's true
unpaid_loan on the loan's last day, loans ending and the company applying again; the file
shares by size and the application rate against the binomial; bad parameters; resume and
shards."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xinyong
from tests.conftest import quiet_scenario
from tests.test_credit import LOAN_DEFAULT
from tests.test_reliability import cli
from tests.test_resume import digests, killed
from xinyong import shard
from xinyong.companies.module import CompaniesModule
from xinyong.companies.rating import GRADE_CODES, NOT_RATED
from xinyong.credit.companies import CompanyLending
from xinyong.credit.module import CreditModule
from xinyong.engine import Simulation
from xinyong.scenario import load_scenario

SIZES = ("micro", "small", "medium", "large")


def quiet_p1c(
    adults: int = 4, companies: int = 8, days: int = 1, extra: dict | None = None, **credit: Any
) -> Any:
    """P1C with nothing random but the lender's draws: no adult or company behaviour, no
    false reports, no firm without income, every channel sees all, correctly; micro firms;
    adults do not borrow."""
    co = load_scenario("c1").companies
    assert co is not None
    quiet: dict[str, Any] = {
        "consequences.pi": 0,
        "companies.per_adult": companies / adults,
        "companies.observation.false_report_rate": 0,
        "companies.no_income_share": 0,
        "companies.consequences.pi": 0,
        "companies.size_shares": {"micro": 1.0, "small": 0.0, "medium": 0.0, "large": 0.0},
        "credit.loan_rate": 0.0,
    }
    for b in co.behaviours:
        quiet[f"companies.behaviours.{b}.base"] = 0
    for c in co.channels:
        quiet[f"companies.channels.{c}.detect"] = 1
        quiet[f"companies.channels.{c}.misattribute"] = 0
    quiet |= {f"credit.{k}": v for k, v in credit.items()}
    quiet |= extra or {}
    return quiet_scenario(adults, days, quiet, base="p1c")


def lender_of(sim: Simulation) -> CompanyLending:
    credit = sim.module("credit")
    assert isinstance(credit, CreditModule)
    return credit.firms


def companies_of(sim: Simulation) -> CompaniesModule:
    module = sim.module("companies")
    assert isinstance(module, CompaniesModule)
    return module


# -- decisions by hand -----------------------------------------------------------------------

# Per company: its rating (recorded, shadow), file, defaulted loans, and the lists it is on
# at the start of day 0 (recorded, shadow).
CASES = [
    # grade  shadow  file   bad  blacklist       defaulters      approved  shadow  reason
    ("A", "A", False, 0, (0, 0), (0, 0), True, True, None),
    ("B", "B", False, 0, (0, 0), (0, 0), True, True, None),
    ("M", "M", False, 0, (0, 0), (0, 0), True, True, None),
    ("C", "C", True, 0, (0, 0), (0, 0), True, True, None),  # a file with a clean book
    ("unrated", "unrated", True, 0, (0, 0), (0, 0), True, True, None),
    ("unrated", "unrated", True, 1, (0, 0), (0, 0), False, False, "book, grade"),
    ("D", "A", False, 0, (0, 0), (0, 0), False, True, "no_file, grade"),  # a wrong rating
    ("A", "A", False, 0, (1, 0), (0, 0), False, True, "company_blacklist"),  # wrongly listed
    ("A", "A", True, 0, (1, 1), (1, 1), False, False, "company_blacklist, company_defaulters"),
    ("B", "B", False, 0, (0, 0), (1, 1), False, False, "company_defaulters"),
]


def test_the_lender_decides_each_company_in_both_worlds() -> None:
    """Day 0's applications of ten companies that all apply (company_loan_rate 1), from a
    state set by hand: the grades A, B, M approve without a file; a clean file approves a C
    and an unrated firm; one default on the book refuses an unrated firm; either list
    refuses an A firm; a refusal on a wrong rating or a wrong listing is wrongly denied."""
    sc = quiet_p1c(companies=len(CASES), company_loan_rate=1.0)
    sim = Simulation(sc)
    lender, layer = lender_of(sim), companies_of(sim).layer
    codes = GRADE_CODES | {"unrated": NOT_RATED}
    bits = {name: layer.lists.bit(name) for name in ("company_blacklist", "company_defaulters")}
    for c, (grade, shadow, file, bad, black, defaulter, *_) in enumerate(CASES):
        layer.state.grade[c] = (codes[grade], codes[shadow])
        layer.state.bits[c] = [
            black[w] * bits["company_blacklist"] | defaulter[w] * bits["company_defaulters"]
            for w in (0, 1)
        ]
        lender.has_file[c], lender.defaulted[c] = file, bad
    sim.step(0)
    apps = lender.tables()["credit_company_applications"].to_pydict()
    assert apps["company"] == list(range(len(CASES)))
    assert apps["approved"] == [case[6] for case in CASES]
    assert apps["approved_shadow"] == [case[7] for case in CASES]
    assert apps["reason"] == [case[8] for case in CASES]
    assert apps["wrongly_denied"] == [not case[6] and case[7] for case in CASES]
    assert apps["rating"] == [case[0] for case in CASES]
    assert apps["rating_shadow"] == [case[1] for case in CASES]
    assert apps["thin"] == [not case[2] for case in CASES]
    assert apps["end_day"] == [180 if case[6] else None for case in CASES]
    # An approved loan opens a file; the loan is active (no application while it runs).
    assert lender.has_file[: len(CASES)].tolist() == [c[2] or c[6] for c in CASES]
    assert (lender.loan_app >= 0).tolist() == [case[6] for case in CASES]


def test_tax_loan_grades_choose_the_grades() -> None:
    """Without M in tax_loan_grades (the bank-tax loan before 2019), an M firm without a file
    is refused."""
    sc = quiet_p1c(companies=2, company_loan_rate=1.0, tax_loan_grades=["A", "B"])
    sim = Simulation(sc)
    companies_of(sim).layer.state.grade[:] = [[GRADE_CODES["M"]] * 2, [GRADE_CODES["B"]] * 2]
    sim.step(0)
    apps = lender_of(sim).tables()["credit_company_applications"].to_pydict()
    assert apps["approved"] == [False, True]
    assert apps["reason"] == ["no_file, grade", None]


def test_loans_end_and_the_company_applies_again_on_the_same_day() -> None:
    """Every company applies whenever it has no loan; loans of 5 days; files for all, nobody
    defaults (company_default_base 0): approved on days 0, 5 and 10, the first two repaid."""
    n = 3
    sc = quiet_p1c(
        companies=n, days=11, company_loan_rate=1.0, loan_term_days=5, company_default_base=0.0,
        company_file_share=dict.fromkeys(SIZES, 1.0),
    )  # fmt: skip
    run = xinyong.run(sc)
    apps = run.sql(
        "SELECT day, count(*) AS n, count(*) FILTER (approved) AS ok, "
        "count(*) FILTER (outcome = 'repaid') AS repaid, count(end_day) AS loans "
        "FROM credit_company_applications GROUP BY day ORDER BY day"
    ).to_pydict()
    assert apps == {
        "day": [0, 5, 10], "n": [n] * 3, "ok": [n] * 3, "repaid": [n, n, 0], "loans": [n] * 3,
    }  # fmt: skip
    firms = run.sql("SELECT sum(repaid) AS r, sum(defaulted) AS d FROM credit_companies")
    assert (firms["r"][0].as_py(), firms["d"][0].as_py()) == (2 * n, 0)
    assert run.sql("SELECT count(*) AS n FROM company_records")["n"][0].as_py() == 0


def test_a_default_is_the_companys_unpaid_loan_on_the_loans_last_day() -> None:
    """Risk at least 1 and company_default_base 1: every loan defaults on day 5 (approval
    day 0 + loan_term_days 5). Each default is a true unpaid_loan of the company, recorded
    by the bank (detect 1) that day; with one default on its book and no rating the company
    is refused on day 5 ("book, grade") and every day after."""
    n = 3
    sc = quiet_p1c(
        companies=n, days=8, extra={"population.trait_min": 1.0}, company_loan_rate=1.0,
        loan_term_days=5, company_default_base=1.0, company_file_share=dict.fromkeys(SIZES, 1.0),
    )  # fmt: skip
    run = xinyong.run(sc)
    records = run.sql(
        "SELECT day, company, behaviour::VARCHAR AS b, channel::VARCHAR AS channel, "
        "truth::VARCHAR AS truth FROM company_records ORDER BY company"
    ).to_pydict()
    assert records == {
        "day": [5] * n, "company": list(range(n)), "b": ["unpaid_loan"] * n,
        "channel": ["bank"] * n, "truth": ["correct"] * n,
    }  # fmt: skip
    apps = run.sql(
        "SELECT day, approved, reason::VARCHAR AS reason, outcome::VARCHAR AS outcome "
        "FROM credit_company_applications WHERE company = 0 ORDER BY day"
    ).to_pydict()
    assert apps == {
        "day": [0, 5, 6, 7],
        "approved": [True, False, False, False],
        "reason": [None, "book, grade", "book, grade", "book, grade"],
        "outcome": ["defaulted", None, None, None],
    }
    s = run.summary
    assert s["credit.company_default_rate"] == 1.0
    assert s["credit.company_approval_rate"] == pytest.approx(1 / 4)
    assert s["credit.company_approval_rate_by_size.micro"] == pytest.approx(1 / 4)
    assert s["credit.company_approval_rate_by_size.large"] is None


def test_explain_tells_a_companys_loans(tmp_path: Path) -> None:
    """The defaulting company above, told by `explain`: its loan and why each later
    application was refused, in the lender's words."""
    sc = quiet_p1c(
        companies=3, days=8, extra={"population.trait_min": 1.0}, company_loan_rate=1.0,
        loan_term_days=5, company_default_base=1.0, company_file_share=dict.fromkeys(SIZES, 1.0),
    )  # fmt: skip
    xinyong.run(sc, out=tmp_path / "run")
    story = xinyong.explain(tmp_path / "run", company=0)
    refused = "(a default on the lender's book; unrated (the bank-tax loan takes A, B, M))"
    assert story.doc["modules"] == [
        "loan approved on day 0 (defaulted)",
        *(f"loan refused on day {t} {refused}" for t in (5, 6, 7)),
    ]


# -- statistics ------------------------------------------------------------------------------


def test_file_shares_by_size_and_the_application_rate_follow_the_binomial() -> None:
    """20,000 companies (half micro, the rest a sixth each of small, medium, large). On day
    0 a company of size s has a file with probability file_share[s]: the count of each size
    is within 4 sigma of n p (sigma = sqrt(n p (1 - p))). Then 365 days of the lender alone
    (nobody rated, no file: every application refused, every company applies each day with
    probability 2/365): the applications are Binomial(20,000 x 365, 2/365), mean 40,000,
    sigma 199.5, and must lie within 4 sigma."""
    shares = {"micro": 0.5, "small": 1 / 6, "medium": 1 / 6, "large": 1 / 6}
    sc = quiet_p1c(adults=2000, companies=20_000, extra={"companies.size_shares": shares})
    sim = Simulation(sc)
    lender = lender_of(sim)
    size = companies_of(sim).layer.pop.size
    files = (0.10, 0.30, 0.70, 0.95)
    for s, p in enumerate(files):
        n = int((size == s).sum())
        k = int(lender.has_file[size == s].sum())
        assert abs(k - n * p) <= 4 * np.sqrt(n * p * (1 - p)), (SIZES[s], k, n)
    lender.has_file[:] = False
    days, rate, n = 365, 2 / 365, len(size)
    for t in range(days):
        lender.lend(t)
    apps = lender.n_apps
    mean, sigma = n * days * rate, np.sqrt(n * days * rate * (1 - rate))
    assert abs(apps - mean) <= 4 * sigma, (apps, mean, sigma)
    assert not (lender.loan_app >= 0).any()


def test_defaults_follow_each_companys_odds() -> None:
    """Every one of 20,000 companies borrows on day 0 on a clean file (loans of one day);
    on day 1 company c defaults with probability p_c = min(1, 0.05 x risk_c): the count of
    defaults is within 4 sigma of sum p_c (sigma^2 = sum p_c (1 - p_c)), and each default is
    handed to the companies as an unpaid_loan."""
    sc = quiet_p1c(
        adults=2000, companies=20_000, company_loan_rate=1.0, loan_term_days=1,
        company_file_share=dict.fromkeys(SIZES, 1.0),
    )  # fmt: skip
    sim = Simulation(sc)
    lender, layer = lender_of(sim), companies_of(sim).layer
    lender.lend(0)
    assert lender.n_apps == 20_000 and (lender.loan_app >= 0).all()
    lender.lend(1)
    p = np.minimum(1.0, 0.05 * layer.risk)
    defaults = int(lender.defaulted.sum())
    assert abs(defaults - p.sum()) <= 4 * np.sqrt((p * (1 - p)).sum()), (defaults, p.sum())
    (added,) = layer.added
    assert sorted(added[0].tolist()) == np.flatnonzero(lender.defaulted).tolist()
    assert set(added[1].tolist()) == {layer.behaviours.index("unpaid_loan")}


# -- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [
        ("  company_file_share: {micro: 1.5, small: 0.3, medium: 0.7, large: 0.95}",
         "credit.company_file_share.micro", "less than or equal to 1"),
        ("  tax_loan_grades: [A, Z]", "credit.tax_loan_grades.1", "unknown grade 'Z'"),
        ("  company_file_share: {micro: 0.1}", "credit.company_file_share",
         "give a value for each size"),
        ("  company_loan_rate: -0.1", "credit.company_loan_rate", "greater than or equal to 0"),
    ],
)  # fmt: skip
def test_bad_company_parameters_are_one_line_and_exit_2(
    tmp_path: Path, line: str, field: str, words: str
) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"extends: p1c\nname: mine\ncredit:\n{line}\n")
    out = cli("run", str(scenario), "--adults", "100", "--out", str(tmp_path / "run"))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert f"{scenario}:4" in lines[0] and field in lines[0] and words in lines[0], lines[0]
    assert not (tmp_path / "run").exists()


def test_credit_needs_a_companys_unpaid_loan() -> None:
    with pytest.raises(xinyong.XinyongError, match="unpaid_loan"):
        load_scenario("p1c", overrides={"companies.behaviours.unpaid_loan.sign": "positive"})


# -- runs ------------------------------------------------------------------------------------


BY_SIZE = ("file_share", "approval_rate", "worthy_denied_share", "wrongly_denied_per_1000")
COMPANY_METRICS = [
    *(f"credit.company_{m}" for m in BY_SIZE),
    *(f"credit.company_{m}_by_size.{size}" for m in BY_SIZE for size in SIZES),
    "credit.company_applications_per_company_year",
    "credit.company_approval_rate_thin",
    "credit.company_default_rate",
    "credit.company_wrongly_denied_share",
]


def test_p1c_summary_agrees_with_its_tables() -> None:
    """The company metrics (docs/credit.md), each with its meaning, against the tables."""
    from xinyong.audit.hooks import module_audits
    from xinyong.audit.registry import summary_meaning

    run = xinyong.run(load_scenario("p1c", adults=2000, days=400, seed=1))
    s = run.summary
    assert sorted(k for k in s if k.startswith("credit.company")) == sorted(COMPANY_METRICS)
    for key in COMPANY_METRICS:
        assert not summary_meaning(key, module_audits()).startswith("summary metric"), key
    assert summary_meaning("credit.company_approval_rate_by_size.small", module_audits()) == (
        "approved / loan applications of small companies"
    )
    counts = run.sql(
        "SELECT size::VARCHAR AS size, count(*) AS n, count(*) FILTER (approved) AS ok, "
        "count(*) FILTER (NOT approved AND creditworthy) AS worthy_denied, "
        "count(*) FILTER (creditworthy) AS worthy, count(*) FILTER (wrongly_denied) AS wrong "
        "FROM credit_company_applications GROUP BY ALL"
    ).to_pylist()
    firms = run.sql(
        "SELECT size::VARCHAR AS size, count(*) AS n FROM credit_companies GROUP BY ALL"
    ).to_pylist()
    assert sum(r["n"] for r in counts) > 100
    for r in counts:
        assert s[f"credit.company_approval_rate_by_size.{r['size']}"] == r["ok"] / r["n"]
        if r["worthy"]:
            assert s[f"credit.company_worthy_denied_share_by_size.{r['size']}"] == (
                r["worthy_denied"] / r["worthy"]
            )
    wrong = {r["size"]: r["wrong"] for r in counts}
    for r in firms:
        assert s[f"credit.company_wrongly_denied_per_1000_by_size.{r['size']}"] == (
            wrong.get(r["size"], 0) / r["n"] * 1000
        )
    total = sum(r["n"] for r in counts)
    assert s["credit.company_approval_rate"] == sum(r["ok"] for r in counts) / total
    assert s["credit.company_applications_per_company_year"] == pytest.approx(
        total / sum(r["n"] for r in firms) / (400 / 365)
    )


def test_a_killed_p1c_run_resumes_to_the_uninterrupted_tables(tmp_path: Path) -> None:
    """kill -9 after the second checkpoint; the resumed run's tables (the lender's company
    tables and the companies' records of unpaid loans included) are those of a run never
    interrupted."""
    out = tmp_path / "run"
    size = ("--adults", "3000", "--days", "300", "--seed", "5")
    killed(out, "p1c", *size, "--checkpoint-days", "10", sig=signal.SIGKILL)
    res = cli("run", "--resume", out, "--quiet")
    assert res.returncode == 0, res.stderr
    ref = xinyong.run(
        load_scenario("p1c", adults=3000, days=300, seed=5), tmp_path / "ref", checkpoint_days=0
    )
    ours = digests(out)
    assert {"credit_company_applications", "credit_companies", "company_records"} <= set(ours)
    assert ours == digests(ref.path)
    ended = ref.sql("SELECT count(outcome) AS n FROM credit_company_applications")["n"][0]
    assert ended.as_py() > 0  # loans ended before T, across the checkpoints


def test_cities_and_shards_carry_company_loans() -> None:
    """Each city engine lends to its own companies; the tables are the same however the
    cities are shared out."""
    sc = load_scenario(
        "three-cities", adults=3000, days=120, seed=2,
        overrides={"credit": {"company_loan_rate": 0.02}, "behaviours.loan_default": LOAN_DEFAULT},
    )  # fmt: skip
    runs = [shard.run_in_process(sc, None, bins=bins).tables for bins in (1, 2)]
    for name in ("credit_company_applications", "credit_companies", "company_records"):
        assert runs[0][name].equals(runs[1][name]), name
    n = runs[0]["companies"].num_rows
    assert runs[0]["credit_companies"]["company"].to_pylist() == list(range(n))
    assert runs[0]["credit_company_applications"].num_rows > 100


def test_the_memory_estimate_counts_the_companies_loans() -> None:
    from xinyong import sizing

    p1c = load_scenario("p1c", adults=10_000, days=730)
    c1 = load_scenario("c1", adults=10_000, days=730)
    extra = (sizing.estimate(p1c) - sizing.estimate(c1)) / 10_000
    # The adults' credit as in P1 (70 bytes of state, 2 applications of 45 bytes), and per
    # company (0.05 per adult) 26 bytes of state and 4 applications (2/365 a day for 730
    # days) of 24 bytes.
    assert extra == pytest.approx(70 + 2 * 45 + 0.05 * (26 + 4 * 24))
