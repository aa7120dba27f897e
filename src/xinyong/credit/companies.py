"""Companies borrow (docs/credit.md, "The bank-tax loan"): the lender's company side, run
inside the credit module's step at place 0 over the engine's entity kind `company`
(module.EntityView: sizes, risk, the company lists and the tax rating in both worlds, and true
events added to the companies' step 4). Credit files by size on day 0, one loan at a time,
applications decided in both worlds, and a default at a loan's end that is a true
`unpaid_loan` of the company."""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from xinyong.companies.params import SIZES
from xinyong.credit.loans import applicants
from xinyong.credit.params import UNPAID_LOAN, Credit
from xinyong.module import EntityView

KIND = "company"  # the entity kind the lender lends to
RATING = "rating"  # the kind's attribute the bank-tax loan reads
BARRING = ("company_blacklist", "company_defaulters")  # lists whose members are refused
# The credit module's streams 4 to 7 (its adults' side uses 0 to 3): company draws move no
# other draw of the run.
STREAMS = ("company_files", "company_loans", "company_applications", "company_events")
FIRST_STREAM = 4
# Why a company was refused in the recorded world: bits of `reason`.
BLACKLIST, DEFAULTERS, NO_FILE, BOOK, GRADE = 1, 2, 4, 8, 16
REASONS = (
    (BLACKLIST, "company_blacklist"), (DEFAULTERS, "company_defaulters"), (NO_FILE, "no_file"),
    (BOOK, "book"), (GRADE, "grade"),
)  # fmt: skip
COLUMNS = (
    "day", "company", "thin", "clean_book", "rating", "rating_shadow", "blacklist",
    "blacklist_shadow", "defaulters", "defaulters_shadow", "approved", "approved_shadow",
    "reason",
)  # fmt: skip
DTYPES = (
    np.int32, np.int32, bool, bool, np.uint8, np.uint8, bool, bool, bool, bool, bool, bool,
    np.uint8,
)  # fmt: skip


class CompanyLending:
    """The lender's companies of one engine: files, the book, active loans and every
    application with both worlds' decisions."""

    checkpointed = ("has_file", "loan_app", "repaid", "defaulted", "due", "apps", "n_apps",
                    "ended", "rngs")  # fmt: skip

    def __init__(self, p: Credit, view: EntityView, seeds: list[np.random.SeedSequence]) -> None:
        self.p, self.view = p, view
        self.rngs = {name: np.random.default_rng(s) for name, s in zip(STREAMS, seeds, strict=True)}
        n = len(view)
        if set(p.company_file_share) != set(view.groups):
            raise ValueError(f"company_file_share is by {view.groups}")
        shares = np.array([p.company_file_share[g] for g in view.groups])
        # Fixed for the run (regenerated from the seed on resume).
        self.has_file = self.rngs["company_files"].random(n) < shares[view.group]
        self.file_day0 = self.has_file.copy()
        self.p_default = np.minimum(1.0, p.company_default_base * view.risk)
        _, labels = view.attribute(RATING, np.empty(0, dtype=np.int64))
        self.grade_ok = np.array([g in p.tax_loan_grades for g in labels], dtype=bool)
        self.labels = labels
        self.unpaid = view.behaviours.index(UNPAID_LOAN)
        self.loan_app = np.full(n, -1, dtype=np.int64)  # the active loan's application row
        self.repaid = np.zeros(n, dtype=np.int32)
        self.defaulted = np.zeros(n, dtype=np.int32)
        self.due: dict[int, np.ndarray] = {}  # end day -> borrowers
        self.apps: dict[str, list[np.ndarray]] = {c: [] for c in COLUMNS}
        self.n_apps = 0
        self.ended: list[np.ndarray] = []  # per ending day: [application row, defaulted]

    def lend(self, t: int) -> None:
        """Day t's loans due (a default is a true `unpaid_loan` of the company, joining the
        companies' step 4 of the day), then the day's applications."""
        due = self.due.pop(t, None)
        if due is not None and len(due):
            bad = self.rngs["company_loans"].random(len(due)) < self.p_default[due]
            self.repaid[due[~bad]] += 1
            self.defaulted[due[bad]] += 1
            self.ended.append(np.stack([self.loan_app[due], bad.astype(np.int64)]))
            self.loan_app[due] = -1
            debtors = due[bad]
            if len(debtors):
                self.view.add_true_events(
                    (
                        debtors.astype(np.int32),
                        np.full(len(debtors), self.unpaid, dtype=np.int16),
                        self.rngs["company_events"].random(len(debtors)),
                    )
                )
        self.apply(t)

    def apply(self, t: int) -> None:
        """Each company without an active loan applies with probability company_loan_rate
        (a binomial count drawn without replacement, those with a loan dropped); the lender
        decides in both worlds on the lists and ratings as they stood at the start of the day,
        its own book and the file (after today's loans due)."""
        a = applicants(self.rngs["company_applications"], self.p.company_loan_rate, self.loan_app)
        if not len(a):
            return
        view = self.view
        black, defaulters = (view.listed(name, a) for name in BARRING)
        grade, _ = view.attribute(RATING, a)
        has_file = self.has_file[a]
        clean = self.defaulted[a] == 0
        policy = self.grade_ok[grade] | (has_file & clean)[:, None]
        approved = ~black & ~defaulters & policy
        reason = np.where(black[:, 0], BLACKLIST, 0) | np.where(defaulters[:, 0], DEFAULTERS, 0)
        reason |= np.where(policy[:, 0], 0, GRADE | np.where(has_file, BOOK, NO_FILE))
        rows = self.n_apps + np.arange(len(a), dtype=np.int64)
        self.n_apps += len(a)
        for name, dtype, column in zip(COLUMNS, DTYPES, (
            np.full(len(a), t), a, ~has_file, clean, grade[:, 0], grade[:, 1], black[:, 0],
            black[:, 1], defaulters[:, 0], defaulters[:, 1], approved[:, 0], approved[:, 1],
            reason,
        ), strict=True):  # fmt: skip
            self.apps[name].append(np.asarray(column, dtype=dtype))  # kept to the end: small
        lent = approved[:, 0]
        self.loan_app[a[lent]] = rows[lent]
        self.has_file[a[lent]] = True  # a loan opens a file
        if lent.any():
            self.due[t + self.p.loan_term_days] = a[lent]

    def tables(self) -> dict[str, pa.Table]:
        view, p = self.view, self.p
        cols = {
            name: np.concatenate(parts) if parts else np.empty(0, dtype=dtype)
            for (name, parts), dtype in zip(self.apps.items(), DTYPES, strict=True)
        }
        outcome = np.full(self.n_apps, -1, dtype=np.int8)
        for rows, bad in self.ended:
            outcome[rows] = bad
        company = cols["company"].astype(np.int64)
        codes = cols["reason"]
        reasons = pa.DictionaryArray.from_arrays(
            pa.array(codes.astype(np.int8), mask=codes == 0),
            pa.array([", ".join(name for bit, name in REASONS if r & bit) for r in range(32)]),
        )
        approved = cols["approved"]
        apps = pa.table(
            {
                "day": cols["day"],
                "company": (company + view.first).astype(np.int32),
                "size": _names(view.group[company], view.groups),
                "thin": cols["thin"],
                "clean_book": cols["clean_book"],
                "rating": _names(cols["rating"], self.labels),
                "rating_shadow": _names(cols["rating_shadow"], self.labels),
                "company_blacklist": cols["blacklist"],
                "company_blacklist_shadow": cols["blacklist_shadow"],
                "company_defaulters": cols["defaulters"],
                "company_defaulters_shadow": cols["defaulters_shadow"],
                "creditworthy": self.p_default[company] <= p.worthy_max,
                "approved": approved,
                "approved_shadow": cols["approved_shadow"],
                "wrongly_denied": ~approved & cols["approved_shadow"],
                "reason": reasons,
                "end_day": pa.array(
                    np.where(approved, cols["day"] + p.loan_term_days, 0).astype(np.int32),
                    mask=~approved,
                ),
                "outcome": pa.DictionaryArray.from_arrays(
                    pa.array(np.maximum(outcome, 0), mask=outcome < 0),
                    pa.array(["repaid", "defaulted"]),
                ),
            }
        )
        n = len(self.has_file)
        firms = pa.table(
            {
                "company": (np.arange(n, dtype=np.int64) + view.first).astype(np.int32),
                "size": _names(view.group, view.groups),
                "file_day0": self.file_day0,
                "file": self.has_file,
                "repaid": self.repaid,
                "defaulted": self.defaulted,
                "creditworthy": self.p_default <= p.worthy_max,
            }
        )
        return {"credit_company_applications": apps, "credit_companies": firms}


class NoCompanies(EntityView):
    """The companies of a run without any: the lender's company side then keeps nothing and
    writes its tables without rows."""

    kind = KIND
    behaviours = (UNPAID_LOAN,)

    def __init__(self, p: Credit) -> None:
        self.groups = tuple(p.company_file_share)
        self.labels = tuple(p.tax_loan_grades)

    @property
    def group(self) -> np.ndarray:
        return np.empty(0, dtype=np.uint8)

    @property
    def risk(self) -> np.ndarray:
        return np.empty(0, dtype=np.float64)

    def attribute(self, name: str, rows: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
        return np.empty((0, 2), dtype=np.uint8), self.labels


def _names(index: np.ndarray, names: tuple[str, ...]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(
        pa.array(np.asarray(index, dtype=np.int8)), pa.array(list(names), pa.string())
    )


# -- summary metrics (credit.summary) --------------------------------------------------------


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def company_metrics(con: duckdb.DuckDBPyConnection, days: int) -> dict[str, Any]:
    """The company side's summary metrics, overall and by size (the definitions of the
    adults' credit metrics, companies in place of adults and sizes in place of cohorts)."""
    out: dict[str, Any] = {}

    def by_size(select: str, table: str, where: str = "true") -> dict[str, tuple[int, int]]:
        rows = con.sql(
            f"SELECT size::VARCHAR, {select} FROM {table} WHERE {where} GROUP BY ALL"
        ).fetchall()
        return {size: (num, den) for size, num, den in rows}

    def put(name: str, counts: dict[str, tuple[int, int]], scale: float = 1.0) -> None:
        num, den = sum(n for n, _ in counts.values()), sum(d for _, d in counts.values())
        ratio = _ratio(num, den)
        out[name] = None if ratio is None else ratio * scale
        for size in SIZES:
            ratio = _ratio(*counts.get(size, (0, 0)))
            out[f"{name}_by_size.{size}"] = None if ratio is None else ratio * scale

    firms = by_size("count(*) FILTER (file), count(*)", "credit_companies")
    companies = {size: den for size, (_, den) in firms.items()}
    put("credit.company_file_share", firms)
    apps = "credit_company_applications"
    ((n_apps,),) = con.sql(f"SELECT count(*) FROM {apps}").fetchall()
    total = sum(companies.values())
    out["credit.company_applications_per_company_year"] = _ratio(n_apps * 365 / days, total)
    put("credit.company_approval_rate", by_size("count(*) FILTER (approved), count(*)", apps))
    ((thin_ok, thin),) = con.sql(
        f"SELECT count(*) FILTER (approved), count(*) FROM {apps} WHERE thin"
    ).fetchall()
    out["credit.company_approval_rate_thin"] = _ratio(thin_ok, thin)
    ((defaulted, ended),) = con.sql(
        f"SELECT count(*) FILTER (outcome = 'defaulted'), count(outcome) FROM {apps}"
    ).fetchall()
    out["credit.company_default_rate"] = _ratio(defaulted, ended)
    worthy = by_size("count(*) FILTER (NOT approved), count(*)", apps, "creditworthy")
    put("credit.company_worthy_denied_share", worthy)
    wrong = by_size("count(*) FILTER (wrongly_denied), count(*) FILTER (NOT approved)", apps)
    per_size = {s: (wrong.get(s, (0, 0))[0], n) for s, n in companies.items()}
    put("credit.company_wrongly_denied_per_1000", per_size, 1000.0)
    out["credit.company_wrongly_denied_share"] = _ratio(
        sum(w for w, _ in wrong.values()), sum(d for _, d in wrong.values())
    )
    return out
