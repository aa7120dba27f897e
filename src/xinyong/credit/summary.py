"""The credit module's summary metrics and their meanings (docs/credit.md); the audit
registers them with its own (`audit.AUDIT`)."""

from __future__ import annotations

from typing import Any

import duckdb

from xinyong.credit.companies import company_metrics
from xinyong.credit.params import COHORTS
from xinyong.credit.score import BANDS
from xinyong.scenario import GROUPS

MEANINGS = {
    "credit.file_share": "share of adults ({}) with a credit file at T",
    "credit.private_score_mean": "mean recorded private score at T (its last computation)",
    "credit.private_band_share": "share of adults whose recorded private score is {} at T",
    "credit.applications_per_adult_year": "loan applications / adults / (T/365)",
    "credit.approval_rate": "approved / loan applications ({} adults), whole run",
    "credit.approval_rate_thin": "approved / applications made without a credit file",
    "credit.approval_rate_by_group": "approved / loan applications of {} adults",
    "credit.default_rate": "defaulted / loans ended by T",
    "credit.worthy_denied_share": "denied / applications of creditworthy adults",
    "credit.worthy_denied_share_by_cohort": "denied / applications of creditworthy {} adults",
    "credit.wrongly_denied_per_1000": "applications denied although the shadow world approves"
    " them, per 1000 adults",
    "credit.wrongly_denied_share": "wrongly denied / denied applications",
    "credit.defaulters_poor_share": "share of adults on defaulters at T whose recorded private"
    " score is poor (< 550)",
    # Companies' loans (credit.companies.company_metrics), in runs with companies.
    "credit.company_file_share": "share of companies with a credit file at T",
    "credit.company_file_share_by_size": "share of {} companies with a credit file at T",
    "credit.company_applications_per_company_year": "company loan applications / companies"
    " / (T/365)",
    "credit.company_approval_rate": "approved / company loan applications, whole run",
    "credit.company_approval_rate_by_size": "approved / loan applications of {} companies",
    "credit.company_approval_rate_thin": "approved / company applications made without a"
    " credit file",
    "credit.company_default_rate": "defaulted / company loans ended by T",
    "credit.company_worthy_denied_share": "denied / applications of creditworthy companies",
    "credit.company_worthy_denied_share_by_size": "denied / applications of creditworthy {}"
    " companies",
    "credit.company_wrongly_denied_per_1000": "company applications denied although the"
    " shadow world approves them, per 1000 companies",
    "credit.company_wrongly_denied_per_1000_by_size": "the same per 1000 {} companies",
    "credit.company_wrongly_denied_share": "wrongly denied / denied company applications",
}


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def credit_metrics(
    con: duckdb.DuckDBPyConnection, meta: dict[str, Any], days: int, adults: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    years = days / 365
    files = {
        c: (f, n)
        for c, f, n in con.sql(
            "SELECT cohort::VARCHAR, count(*) FILTER (file), count(*) FROM credit_adults "
            "GROUP BY ALL"
        ).fetchall()
    }
    out["credit.file_share.all"] = _ratio(sum(f for f, _ in files.values()), adults)
    for c in COHORTS:
        out[f"credit.file_share.{c}"] = _ratio(*files.get(c, (0, 0)))
    ((mean,),) = con.sql("SELECT avg(private_score) FROM credit_adults").fetchall()
    out["credit.private_score_mean"] = mean
    bands = dict(
        con.sql(
            "SELECT CASE WHEN private_score < 550 THEN 0 WHEN private_score < 600 THEN 1 "
            "WHEN private_score < 650 THEN 2 WHEN private_score < 700 THEN 3 ELSE 4 END, "
            "count(*) FROM credit_adults GROUP BY ALL"
        ).fetchall()
    )
    for i, band in enumerate(BANDS):
        out[f"credit.private_band_share.{band}"] = _ratio(bands.get(i, 0), adults)
    ((apps,),) = con.sql("SELECT count(*) FROM credit_applications").fetchall()
    out["credit.applications_per_adult_year"] = apps / adults / years

    def rates(by: str) -> dict[str, tuple[int, int]]:
        return {
            k: (ok, n)
            for k, ok, n in con.sql(
                f"SELECT {by}, count(*) FILTER (approved), count(*) FROM credit_applications "
                "GROUP BY ALL"
            ).fetchall()
        }

    every = rates("'all'")
    out["credit.approval_rate.all"] = _ratio(*every.get("all", (0, 0)))
    cohort = rates("cohort::VARCHAR")
    for c in COHORTS:
        out[f"credit.approval_rate.{c}"] = _ratio(*cohort.get(c, (0, 0)))
    thin = rates("thin")
    out["credit.approval_rate_thin"] = _ratio(*thin.get(True, (0, 0)))
    group = rates('"group"::VARCHAR')
    for g in reversed(GROUPS):
        out[f"credit.approval_rate_by_group.{g}"] = _ratio(*group.get(g, (0, 0)))
    ((defaulted, ended),) = con.sql(
        "SELECT count(*) FILTER (outcome = 'defaulted'), count(outcome) FROM credit_applications"
    ).fetchall()
    out["credit.default_rate"] = _ratio(defaulted, ended)
    worthy = {
        c: (d, n)
        for c, d, n in con.sql(
            "SELECT cohort::VARCHAR, count(*) FILTER (NOT approved), count(*) "
            "FROM credit_applications WHERE creditworthy GROUP BY ALL"
        ).fetchall()
    }
    out["credit.worthy_denied_share"] = _ratio(
        sum(d for d, _ in worthy.values()), sum(n for _, n in worthy.values())
    )
    for c in COHORTS:
        out[f"credit.worthy_denied_share_by_cohort.{c}"] = _ratio(*worthy.get(c, (0, 0)))
    ((wrong, denied),) = con.sql(
        "SELECT count(*) FILTER (wrongly_denied), count(*) FILTER (NOT approved) "
        "FROM credit_applications"
    ).fetchall()
    out["credit.wrongly_denied_per_1000"] = wrong / adults * 1000
    out["credit.wrongly_denied_share"] = _ratio(wrong, denied)
    ((poor, listed),) = con.sql(
        "SELECT count(*) FILTER (private_score < 550), count(*) FROM credit_adults "
        "WHERE on_defaulters"
    ).fetchall()
    out["credit.defaulters_poor_share"] = _ratio(poor, listed)
    if meta.get("credit", {}).get("company_loans"):
        out |= company_metrics(con, days)
    return out
