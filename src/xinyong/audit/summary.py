"""The summary metrics of every run (docs/model.md), computed from its tables with SQL (DuckDB).

Reading them from the tables, not from engine state, keeps the audit independent of the day
loop: the same query gives the same numbers on a run directory or an in-memory run.
"""

from __future__ import annotations

from typing import Any

import duckdb

from xinyong.scenario import GROUPS

# One line per summary metric; `{}` stands for the list, tier, group or city in the key.
MEANINGS = {
    "mean_score": "mean recorded score at T",
    "tier_share": "share of adults in tier {} at T",
    "list_share": "share of adults on {} at T",
    "ever_listed_share": "share of adults on {} on at least one day",
    "neg_records_per_adult_year": "negative records (all truths) per adult and year",
    "pos_records_per_adult_year": "positive records per adult and year",
    "wrong_record_share": "share of negative records that are misattributed or false reports",
    "wrongly_listed_share": "share of adults wrongly on {} at T (on it, shadow world not)",
    "wrongly_listed_share_by_group": "share of {} adults wrongly on {} at T",
    "wrongly_listed_ratio": "minority over majority share wrongly on {} at T",
    "children_restricted_share": "share of children under a child-directed sanction at T",
    "association_records_per_adult_year": "records for meeting a blacklisted neighbour per "
    "adult and year",
    "appeals_filed_per_1000": "appeals filed per 1,000 adults",
    "appeals_upheld_per_1000": "appeals upheld per 1,000 adults",
    "mean_deter": "mean deterrence factor at T (1: none)",
    "tier_share_by_city": "share of adults of city {} in tier {} at T",
    "list_share_by_city": "share of adults of city {} on {} at T",
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


def summary_meaning(key: str) -> str:
    """What a summary key means (docs/model.md, "Summary metrics")."""
    head, *parts = key.split(".")
    if head == "company" and parts:
        head, *parts = f"company.{parts[0]}", *parts[1:]
    text = MEANINGS.get(head)
    if text is None:
        return "summary metric (docs/model.md)"
    if head == "wrongly_listed_share_by_group" and len(parts) == 2:
        parts = [parts[1], parts[0]]
    if head == "company.wrongly_listed_share_by_size" and len(parts) == 2:
        return text.format(*parts)
    try:
        return text.format(*parts)
    except IndexError:
        return text


def _ratio(num: float | None, den: float | None) -> float | None:
    """A share or ratio with a zero denominator is null (reading 12)."""
    if num is None or not den:
        return None
    return num / den


def summary_metrics(con: duckdb.DuckDBPyConnection, meta: dict[str, Any], days: int) -> dict:
    """Flat dotted keys under the names docs/model.md gives (the same metric for every list)."""

    def one(sql: str) -> Any:
        return con.sql(sql).fetchall()[0][0]

    adults = one("SELECT count(*) FROM persons")
    children = one("SELECT count(*) FROM children")
    years = days / 365
    out: dict[str, Any] = {"mean_score": one("SELECT avg(score) FROM persons")}
    tier_names = []
    for names in meta["tiers"].values():
        tier_names += [n for n in names if n not in tier_names]
    counts = dict(con.sql("SELECT tier, count(*) FROM persons GROUP BY tier").fetchall())
    for name in tier_names:
        out[f"tier_share.{name}"] = _ratio(counts.get(name, 0), adults)
    for name in meta["lists"]:
        out[f"list_share.{name}"] = _ratio(
            one(f'SELECT count(*) FROM persons WHERE "on.{name}"'), adults
        )
    for name in meta["lists"]:
        ever = one(
            "SELECT count(DISTINCT person) FROM spells "
            f"WHERE list = '{name}' AND world = 'recorded'"
        )
        out[f"ever_listed_share.{name}"] = _ratio(ever, adults)
    negative = {b for b, neg in zip(meta["behaviours"], meta["negative"], strict=True) if neg}
    # Counted from the daily tallies (a few dozen rows a day), which count the records as
    # they are made: the same numbers as the records table gives (tested), without reading
    # its hundreds of millions of rows (3.5 s at 10 M adults x 365 days).
    neg = pos = wrong = assoc = 0
    for behaviour, n, not_correct in con.sql(
        "SELECT behaviour, sum(records), sum(misattributed + false_reports) "
        "FROM behaviour_daily GROUP BY ALL"
    ).fetchall():
        if behaviour in negative:
            neg += n
            wrong += not_correct
        else:
            pos += n
        assoc += n if behaviour == meta["association_behaviour"] else 0
    out["neg_records_per_adult_year"] = _ratio(neg, adults * years)
    out["pos_records_per_adult_year"] = _ratio(pos, adults * years)
    out["wrong_record_share"] = _ratio(wrong, neg)
    for name in meta["lists"]:
        wrong_on = f'"on.{name}" AND NOT "shadow_on.{name}"'
        out[f"wrongly_listed_share.{name}"] = _ratio(
            one(f"SELECT count(*) FROM persons WHERE {wrong_on}"), adults
        )
        by_group = dict(
            con.sql(
                f'SELECT "group", avg(CASE WHEN {wrong_on} THEN 1.0 ELSE 0.0 END) '
                'FROM persons GROUP BY "group"'
            ).fetchall()
        )
        for g in reversed(GROUPS):  # minority first
            out[f"wrongly_listed_share_by_group.{name}.{g}"] = by_group.get(g)
        out[f"wrongly_listed_ratio.{name}"] = _ratio(
            by_group.get("minority"), by_group.get("majority")
        )
    out["children_restricted_share"] = _ratio(
        one("SELECT count(*) FROM children WHERE restricted"), children
    )
    out["association_records_per_adult_year"] = _ratio(assoc, adults * years)
    filed = one("SELECT count(*) FROM appeals")
    upheld = one("SELECT count(*) FROM appeals WHERE upheld")
    out["appeals_filed_per_1000"] = _ratio(filed * 1000, adults)
    out["appeals_upheld_per_1000"] = _ratio(upheld * 1000, adults)
    out["mean_deter"] = one("SELECT avg(deter) FROM persons")
    city_pack = meta.get("city_pack", {})
    if len(city_pack) > 1:
        # Tier names repeat across packs with other thresholds: per city they stay apart.
        lists = ", ".join(f'avg("on.{name}"::INT) AS "{name}"' for name in meta["lists"])
        for row in con.sql(
            f"SELECT city, count(*) AS n, {lists} FROM persons GROUP BY ALL ORDER BY city"
        ).fetchall():
            city, n, shares = row[0], row[1], row[2:]
            tiers = dict(
                con.sql(
                    f"SELECT tier, count(*) FROM persons WHERE city = '{city}' GROUP BY ALL"
                ).fetchall()
            )
            for name in meta["tiers"][city_pack[city]]:
                out[f"tier_share_by_city.{city}.{name}"] = _ratio(tiers.get(name, 0), n)
            for name, share in zip(meta["lists"], shares, strict=True):
                out[f"list_share_by_city.{city}.{name}"] = share
    if "companies" in meta:
        out.update(company_metrics(con, meta["companies"], days, adults))
    return out


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
        out[f"company.rating_share.{g}"] = _ratio(grades.get(g, 0), n)
    by_size = {
        size: (total, a)
        for size, total, a in con.sql(
            "SELECT size, count(*), count(*) FILTER (grade = 'A') FROM companies GROUP BY ALL"
        ).fetchall()
    }
    for size in meta["sizes"]:
        total, a = by_size.get(size, (0, 0))
        out[f"company.a_share_by_size.{size}"] = _ratio(a, total)
    for name in meta["lists"]:
        out[f"company.list_share.{name}"] = _ratio(
            one(f'SELECT count(*) FROM companies WHERE "on.{name}"'), n
        )
    records, wrong = con.sql(
        "SELECT count(*), count(*) FILTER (truth <> 'correct') FROM company_records"
    ).fetchall()[0]
    out["company.neg_records_per_company_year"] = _ratio(records, n * days / 365)
    out["company.wrong_record_share"] = _ratio(wrong, records)
    for name in meta["lists"]:
        wrong_on = f'"on.{name}" AND NOT "shadow_on.{name}"'
        out[f"company.wrongly_listed_share.{name}"] = _ratio(
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
        out["legal_rep_restricted_share"] = _ratio(
            one(f"SELECT count(*) FROM persons WHERE {on}"), adults
        )
        out["legal_rep_wrongly_restricted_share"] = _ratio(
            one(f'SELECT count(*) FROM persons WHERE {on} AND NOT "shadow_on.{restricted}"'),
            adults,
        )
    return out
