"""The companies' summary metrics (docs/companies.md, "Summary metrics"), from the company
tables and the persons' person-list columns."""

from __future__ import annotations

from typing import Any

import duckdb

from xinyong.audit.summary import ratio

# One line per summary metric; `{}` stands for the grade, size or list in the key.
MEANINGS = {
    "company.rating_share": "share of companies rated {} at T (recorded)",
    "company.a_share_by_size": "share of {} companies rated A at T",
    "company.list_share": "share of companies on {} at T",
    "company.neg_records_per_company_year": "negative company records per company and year",
    "company.wrong_record_share": "share of negative company records that are misattributed "
    "or false reports",
    "company.wrongly_listed_share": "share of companies wrongly on {} at T",
    "company.wrongly_listed_share_by_size": "share of {1} companies wrongly on {0} at T",
    "legal_rep_restricted_share": "share of adults on consumption_restricted at T",
    "legal_rep_wrongly_restricted_share": "share of adults wrongly on consumption_restricted at T",
}


def company_metrics(
    con: duckdb.DuckDBPyConnection, meta: dict[str, Any], days: int, adults: int
) -> dict[str, Any]:
    """The company summary metrics of docs/model.md ("Companies"), and the legal
    representatives' restrictions."""

    def one(sql: str) -> Any:
        return con.sql(sql).fetchall()[0][0]

    out: dict[str, Any] = {}
    n = one("SELECT count(*) FROM companies")
    grades = dict(con.sql("SELECT grade, count(*) FROM companies GROUP BY ALL").fetchall())
    for g in meta["grades"]:
        out[f"company.rating_share.{g}"] = ratio(grades.get(g, 0), n)
    by_size = {
        size: (total, a)
        for size, total, a in con.sql(
            "SELECT size, count(*), count(*) FILTER (grade = 'A') FROM companies GROUP BY ALL"
        ).fetchall()
    }
    for size in meta["sizes"]:
        total, a = by_size.get(size, (0, 0))
        out[f"company.a_share_by_size.{size}"] = ratio(a, total)
    for name in meta["lists"]:
        out[f"company.list_share.{name}"] = ratio(
            one(f'SELECT count(*) FROM companies WHERE "on.{name}"'), n
        )
    records, wrong = con.sql(
        "SELECT count(*), count(*) FILTER (truth <> 'correct') FROM company_records"
    ).fetchall()[0]
    out["company.neg_records_per_company_year"] = ratio(records, n * days / 365)
    out["company.wrong_record_share"] = ratio(wrong, records)
    for name in meta["lists"]:
        wrong_on = f'"on.{name}" AND NOT "shadow_on.{name}"'
        out[f"company.wrongly_listed_share.{name}"] = ratio(
            one(f"SELECT count(*) FROM companies WHERE {wrong_on}"), n
        )
        shares = dict(
            con.sql(
                f"SELECT size, avg(CASE WHEN {wrong_on} THEN 1.0 ELSE 0.0 END) "
                "FROM companies GROUP BY ALL"
            ).fetchall()
        )
        for size in meta["sizes"]:
            out[f"company.wrongly_listed_share_by_size.{name}.{size}"] = shares.get(size)
    restricted = "consumption_restricted"
    if restricted in meta.get("person_lists", {}):
        on = f'"on.{restricted}"'
        out["legal_rep_restricted_share"] = ratio(
            one(f"SELECT count(*) FROM persons WHERE {on}"), adults
        )
        out["legal_rep_wrongly_restricted_share"] = ratio(
            one(f'SELECT count(*) FROM persons WHERE {on} AND NOT "shadow_on.{restricted}"'),
            adults,
        )
    return out
