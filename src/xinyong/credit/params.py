"""The credit module's parameters, the scenario's `credit:` section (docs/credit.md), declared
once, with the checks of a scenario that holds them."""

from __future__ import annotations

from typing import Literal

from xinyong.companies.params import SIZES
from xinyong.companies.schema import GRADES
from xinyong.module import Problem
from xinyong.params import param
from xinyong.scenario import Model, NonNegative, Probability, Scenario
from xinyong.scheme.schema import Flag, Int

COHORTS = ("young", "established")  # index 0 and 1 in every array
LENDERS = ("file", "score", "file_or_score")
SCORE_LO, SCORE_HI = 350, 950  # the private score's range
DEFAULT_BEHAVIOUR = "loan_default"  # a true event of the borrower when a loan defaults
SUIT_BEHAVIOUR = "court_judgment_default"  # the lender's suit, a true event too
LOAN_BAN = "loan_ban"  # the sanction under which the lender always refuses
UNPAID_LOAN = "unpaid_loan"  # a true event of a company whose loan defaults


class FileShare(Model):
    young: Probability = param(
        0.10, doc="share of young adults with a credit file on day 0", unit="share"
    )
    established: Probability = param(
        0.40, doc="share of established adults with a credit file on day 0", unit="share"
    )


class Capacity(Model):
    young: Probability = param(0.3, doc="fulfilment capacity F of a young adult", unit="share")
    established: Probability = param(
        0.6, doc="fulfilment capacity F of an established adult", unit="share"
    )


class Credit(Model):
    """Credit files, the lender's book, loans and a private score (docs/credit.md)."""

    young_share: Probability = param(
        0.2, doc="probability that an adult is in the young cohort", unit="share"
    )
    file_share: FileShare = FileShare()
    loan_rate: Probability = param(
        1 / 365,
        doc="daily probability that an adult without an active loan applies for one",
        unit="per adult and day",
    )
    loan_term_days: Int = param(
        180, doc="days from approval to the loan's end (repaid or defaulted)", unit="days",
        ge=1, le=3650,
    )  # fmt: skip
    default_base: Probability = param(
        0.05, doc="a borrower defaults with probability min(1, default_base x risk)",
        unit="share",
    )  # fmt: skip
    sue_share: Probability = param(
        0.2,
        doc="probability that the lender sues on a default (a true court_judgment_default)",
        unit="share",
    )
    lender: Literal["file", "score", "file_or_score"] = param(
        "file_or_score",
        doc="what the lender approves on: a clean file, the private score, or either",
    )
    history_min: Probability = param(
        0.5, doc="the file policy's least H_book (repayment history) to approve", unit="share"
    )
    score_min: Int = param(
        600, doc="the score policy's least private score to approve", unit="points",
        ge=SCORE_LO, le=SCORE_HI,
    )  # fmt: skip
    score_period: Int = param(
        30, doc="days between two computations of the private score", unit="days",
        ge=1, le=3650,
    )  # fmt: skip
    thin_history: Probability = param(
        0.2, doc="the history factor H of an adult without a credit file", unit="share"
    )
    capacity: Capacity = Capacity()
    identity: Probability = param(0.8, doc="the identity factor I of every adult", unit="share")
    court_list_to_private: Flag = param(
        True, doc="the court shares its defaulter list: H = 0 while on defaulters"
    )
    records_to_private: Flag = param(
        False,
        doc="the networked what-if: the last year's negative records lower the behaviour factor B",
    )
    records_scale: NonNegative = param(
        5.0,
        doc="B is multiplied by max(0, 1 - n / records_scale) for n negative records in a year",
        unit="records", gt=0.0,
    )  # fmt: skip
    worthy_max: Probability = param(
        0.05,
        doc="an adult is creditworthy when min(1, default_base x risk) is at most this",
        unit="share",
    )
    # Companies borrow too, in a scenario with companies (the bank-tax loan).
    company_loan_rate: Probability = param(
        2 / 365,
        doc="daily probability that a company without an active loan applies for one",
        unit="per company and day",
    )
    company_file_share: dict[str, Probability] = param(
        {"micro": 0.10, "small": 0.30, "medium": 0.70, "large": 0.95},
        doc="share of companies with a credit file on day 0", unit="share", per="size",
        source="illustrative: credit reports cover 28.34 M enterprises (PBoC Credit Reference"
        " Center, 2019); thin files keep small firms from loans (Trivium)",
    )  # fmt: skip
    tax_loan_grades: tuple[str, ...] = param(
        ("A", "B", "M"),
        doc="tax ratings on which the lender approves a company without a file (the bank-tax loan)",
        source="gov.cn on bank-tax interaction loans: A and B firms since 2015, M since"
        " November 2019",
    )
    company_default_base: Probability = param(
        0.05, doc="a company defaults with probability min(1, company_default_base x risk)",
        unit="share",
    )  # fmt: skip


def check(sc: Scenario) -> list[Problem]:
    """The credit section against the rest of the scenario: the behaviours it makes happen
    must be in the catalogue, with the sign the model gives them."""
    credit: Credit | None = getattr(sc, "credit", None)
    if credit is None:
        return []
    problems: list[Problem] = []
    needed = [DEFAULT_BEHAVIOUR] + ([SUIT_BEHAVIOUR] if credit.sue_share > 0 else [])
    for name in needed:
        beh = sc.behaviours.get(name)
        if beh is None:
            problems.append((f"credit needs a behaviour '{name}' in the catalogue", ("credit",)))
        elif beh.sign != "negative":
            problems.append(
                (f"'{name}' must be a negative behaviour", ("behaviours", name, "sign"))
            )
    problems += company_problems(sc, credit)
    if DEFAULT_BEHAVIOUR in sc.observation.false_report_behaviours:
        problems.append(
            (
                f"'{DEFAULT_BEHAVIOUR}' happens only when a loan defaults, not by false report",
                ("observation", "false_report_behaviours"),
            )
        )
    return problems


def company_problems(sc: Scenario, credit: Credit) -> list[Problem]:
    """The company parameters: a share for each size, known grades, and the behaviour a
    company's default is, where the scenario has companies."""
    problems: list[Problem] = []
    sizes = set(credit.company_file_share)
    if sizes != set(SIZES):
        problems.append(
            (f"give a value for each size: {', '.join(SIZES)}", ("credit", "company_file_share"))
        )
    for i, grade in enumerate(credit.tax_loan_grades):
        if grade not in GRADES:
            problems.append(
                (f"unknown grade '{grade}' ({', '.join(GRADES)})", ("credit", "tax_loan_grades", i))
            )
    companies = getattr(sc, "companies", None)
    if companies is not None:
        beh = companies.behaviours.get(UNPAID_LOAN)
        if beh is None:
            problems.append(
                (f"credit needs a company behaviour '{UNPAID_LOAN}'", ("companies", "behaviours"))
            )
        elif beh.sign != "negative":
            problems.append(
                (f"'{UNPAID_LOAN}' must be a negative behaviour",
                 ("companies", "behaviours", UNPAID_LOAN, "sign"))
            )  # fmt: skip
    return problems


# Bytes an application keeps until the end of the run (its twelve columns and its outcome).
APPLICATION_BYTES = 45
# A company's file now and on day 0, default odds, active loan, book; an application's
# thirteen columns (19 bytes), its outcome and, for a loan, its share of the end rows.
COMPANY_STATE_BYTES = 2 + 8 + 8 + 8
COMPANY_APPLICATION_BYTES = 24


def memory_per_adult(sc: Scenario) -> float:
    """Bytes per adult: cohort, files, the book, the active loan, both worlds' private scores
    and record counts, the factors the kernel reads, and the run's applications
    (`loan_rate` x days of them per adult at most)."""
    fixed = 1 + 2 + 3 * 8  # cohort; file now and on day 0; default odds, B and F
    book = 8 + 8  # the active loan's application; repaid and defaulted
    scores = 4 + 4 + 8 + 1 + 2  # both worlds', a computation's new ones, H, listed (x2)
    state = fixed + book + scores + 8  # and the what-if's record counts per world
    credit = sc.credit
    per_adult = state + credit.loan_rate * sc.days * APPLICATION_BYTES
    companies = getattr(sc, "companies", None)
    if companies is not None:  # per company: its state, and its applications
        per_company = (
            COMPANY_STATE_BYTES + credit.company_loan_rate * sc.days * COMPANY_APPLICATION_BYTES
        )
        per_adult += companies.per_adult * per_company
    return per_adult
