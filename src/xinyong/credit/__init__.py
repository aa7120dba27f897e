"""Credit (docs/credit.md): cohorts and credit files, one lender with its own book, loans that
end repaid or defaulted (defaults and the lender's suits are true events observed and scored
like any other), applications decided by the lender's policy in both worlds, and a private
score recomputed from five factors, with the court's list and, in the networked what-if,
the social-credit records shared with it. A module (`module.CreditModule`), declared here."""

from xinyong.credit import params
from xinyong.module import Spec, Table

SPEC = Spec(
    name="credit",
    fields={"credit": (params.Credit | None, None)},
    runtime="xinyong.credit.module:CreditModule",
    tables=(
        Table(
            "credit_applications",
            nullable=("reason", "end_day", "outcome"),
            columns=("day", "adult", "approved", "approved_shadow", "wrongly_denied", "outcome"),
        ),
        Table("credit_adults", columns=("adult", "cohort", "file", "private_score")),
        Table("credit_scores", columns=("day", "world", "band", "adults")),
        Table(
            "credit_company_applications",
            nullable=("reason", "end_day", "outcome"),
            columns=("day", "company", "size", "approved", "approved_shadow", "outcome"),
        ),
        Table("credit_companies", columns=("company", "size", "file_day0", "file")),
    ),
    check=params.check,
    memory_per_adult=params.memory_per_adult,
)
