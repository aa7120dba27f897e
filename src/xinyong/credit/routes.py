"""Which route a wrongly refused application came through (docs/credit.md, "Financial
inclusion"), read back from a run's tables: the computation of the private score the lender
read, and the first factor that differs between the two worlds there."""

from __future__ import annotations

from typing import Any

# Why a wrongly refused application was refused, by the first factor that differs between
# the two worlds (docs/credit.md): the blacklist's loan ban, the court's list zeroing the
# history, the shared records lowering the behaviour factor, else the neighbours' scores.
ROUTES = ("loan_ban", "court_list", "shared_records", "connections")
ROUTE_NAMES = {
    "loan_ban": "the blacklist's loan ban",
    "court_list": "the court's list",
    "shared_records": "the shared records",
    "connections": "the neighbours' scores",
}  # in words
DEFAULTERS = "defaulters"  # the court's list, shared with the private score


def computation_day_sql(period: int) -> str:
    """The day of the private-score computation an application of day `day` read: the last
    multiple of `period` from 1 to day - 1, else -1 (the one before day 0)."""
    return f"CASE WHEN day - 1 >= {period} THEN ((day - 1) // {period}) * {period} ELSE -1 END"


def on_defaulters_sql(world: str) -> str:
    """Whether the application's adult was on `defaulters` in that world at the computation
    it read (after that day's step 9)."""
    return f"""EXISTS (SELECT 1 FROM spells s WHERE s.person = a.adult
        AND s.list = '{DEFAULTERS}' AND s.world = '{world}' AND s.start <= a.c
        AND (s."end" IS NULL OR s."end" > a.c))"""


def routes_sql(cm: dict[str, Any], negative: list[str], adult: int | None = None) -> str:
    """Each wrongly refused application (of one adult, or all) with its route (ROUTES) and
    the computation day c it read. In the networked what-if, n counts the adult's negative
    records of days c-364..c: recorded, those against them not removed on appeal by c;
    shadow, the correct ones."""
    names = ", ".join(f"'{b}'" for b in negative) or "NULL"
    records = "false"
    mine = "" if adult is None else f" AND adult = {int(adult)}"
    if cm.get("records_to_private"):
        records = f"""(SELECT count(*) FILTER (WHERE ap.upheld IS NOT TRUE OR ap.decision_day > a.c)
                   > count(*) FILTER (WHERE r.truth = 'correct')
            FROM records r LEFT JOIN appeals ap USING (record_id)
            WHERE r.person = a.adult AND r.behaviour IN ({names})
              AND r.day BETWEEN a.c - 364 AND a.c)"""
    return f"""
        WITH a AS (SELECT *, {computation_day_sql(cm.get("score_period", 30))} AS c
                   FROM credit_applications WHERE wrongly_denied{mine})
        SELECT a.day, a.adult, a.c, CASE
            WHEN a.loan_ban AND NOT a.loan_ban_shadow THEN 'loan_ban'
            WHEN a.history_zero AND NOT {on_defaulters_sql("shadow")} THEN 'court_list'
            WHEN {records} THEN 'shared_records'
            ELSE 'connections' END AS route
        FROM a"""


def negative_behaviours(meta: dict) -> list[str]:
    """The negative behaviours of the run (meta.json)."""
    return [b for b, neg in zip(meta["behaviours"], meta["negative"], strict=True) if neg]
