"""The summary metrics of every run (docs/model.md), computed from its tables with SQL (DuckDB).

Reading them from the tables, not from engine state, keeps the audit independent of the day
loop: the same query gives the same numbers on a run directory or an in-memory run.
"""

from __future__ import annotations

from typing import Any

import duckdb

from xinyong.audit import registry, stats
from xinyong.audit.hooks import module_audits
from xinyong.audit.queries import wrongly_listed
from xinyong.scenario import GROUPS


def summary_meaning(key: str) -> str:
    """What a summary key means (docs/model.md, "Summary metrics")."""
    return registry.summary_meaning(key, module_audits())


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
        out[f"tier_share.{name}"] = stats.ratio(counts.get(name, 0), adults)
    for name in meta["lists"]:
        out[f"list_share.{name}"] = stats.ratio(
            one(f'SELECT count(*) FROM persons WHERE "on.{name}"'), adults
        )
    for name in meta["lists"]:
        ever = one(
            "SELECT count(DISTINCT person) FROM spells "
            f"WHERE list = '{name}' AND world = 'recorded'"
        )
        out[f"ever_listed_share.{name}"] = stats.ratio(ever, adults)
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
    out["neg_records_per_adult_year"] = stats.ratio(neg, adults * years)
    out["pos_records_per_adult_year"] = stats.ratio(pos, adults * years)
    out["wrong_record_share"] = stats.ratio(wrong, neg)
    for name in meta["lists"]:
        wrong, by_group = wrongly_listed(con, "persons", "group", name)
        out[f"wrongly_listed_share.{name}"] = stats.ratio(wrong, adults)
        for g in reversed(GROUPS):  # minority first
            out[f"wrongly_listed_share_by_group.{name}.{g}"] = by_group.get(g)
        out[f"wrongly_listed_ratio.{name}"] = stats.ratio(
            by_group.get("minority"), by_group.get("majority")
        )
    out["children_restricted_share"] = stats.ratio(
        one("SELECT count(*) FROM children WHERE restricted"), children
    )
    out["association_records_per_adult_year"] = stats.ratio(assoc, adults * years)
    filed = one("SELECT count(*) FROM appeals")
    upheld = one("SELECT count(*) FROM appeals WHERE upheld")
    out["appeals_filed_per_1000"] = stats.ratio(filed * 1000, adults)
    out["appeals_upheld_per_1000"] = stats.ratio(upheld * 1000, adults)
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
                out[f"tier_share_by_city.{city}.{name}"] = stats.ratio(tiers.get(name, 0), n)
            for name, share in zip(meta["lists"], shares, strict=True):
                out[f"list_share_by_city.{city}.{name}"] = share
    for mod in module_audits():
        if mod.applies(meta):
            out.update(mod.summary(con, meta, days, adults))
    return out
