"""What `xinyong explain RUN ADULT` says of an adult's loan applications (docs/credit.md): each
decision, the condition that refused it and the factor behind a low score, and, when a wrong
record is behind it, which record; for a wrongly refused application, the route it came
through (routes.ROUTES)."""

from __future__ import annotations

from typing import Any

import duckdb

from xinyong.audit.queries import rows
from xinyong.credit.params import LOAN_BAN
from xinyong.credit.routes import (
    DEFAULTERS,
    ROUTE_NAMES,
    computation_day_sql,
    negative_behaviours,
    routes_sql,
)
from xinyong.scenario import Scenario


def defaulters_entry(sc: Scenario) -> list[str]:
    """The behaviours whose records put an adult on the court's list (for run meta)."""
    found = []
    for pack in sc.packs.values():
        lst = pack.lists.get(DEFAULTERS)
        if lst is not None and lst.entry is not None and lst.entry.record is not None:
            found.append(lst.entry.record)
    return sorted(set(found))


def _record_words(r: dict[str, Any]) -> str:
    """'a misattributed record 812 (court_judgment_default of adult 77)'."""
    what = f"record {r['record_id']} ({r['behaviour']}"
    if r["truth"] == "misattributed":
        return f"a misattributed {what} of adult {r['actor']})"
    if r["truth"] == "false_report":
        return f"a false report, {what}: nobody did it)"
    return f"their own {what})"


def _spell(con: duckdb.DuckDBPyConnection, adult: int, lists: list[str], day: int) -> dict | None:
    """The adult's recorded spell on one of `lists` running after step 9 of `day`."""
    if not lists or day < 0:
        return None
    names = ", ".join(f"'{x}'" for x in lists)
    found = rows(
        con,
        f"""SELECT list, start FROM spells WHERE person = {adult} AND world = 'recorded'
            AND list IN ({names}) AND start <= {day} AND ("end" IS NULL OR "end" > {day})
            ORDER BY start LIMIT 1""",
    )
    return found[0] if found else None


def _entered(con: duckdb.DuckDBPyConnection, adult: int, spell: dict, entry: list[str]) -> str:
    """', entered on a misattributed record ...': the record of the spell's first day that
    puts adults on the list (none named when the run's meta does not say which)."""
    if not entry:
        return ""
    names = ", ".join(f"'{b}'" for b in entry)
    found = rows(
        con,
        f"""SELECT record_id, behaviour, truth, actor FROM records WHERE person = {adult}
            AND day = {spell["start"]} AND behaviour IN ({names}) ORDER BY record_id LIMIT 1""",
    )
    return f", entered on {_record_words(found[0])}" if found else ""


def _history(con: duckdb.DuckDBPyConnection, adult: int, a: dict, cm: dict[str, Any]) -> str:
    """The history factor behind a low score (the heaviest of the five): 0 while on the
    court's list (since when, and on which record), the thin-file value, or the book's."""
    if a["history_zero"]:
        spell = _spell(con, adult, [DEFAULTERS], a["c"])
        if spell is None:
            return "history 0 while on the defaulter list"
        entered = _entered(con, adult, spell, cm.get("defaulters_entry") or [])
        return f"history 0 while on the defaulter list since day {spell['start']}{entered}"
    if a["thin"]:
        value = cm.get("thin_history")
        return "history " + (f"{value:.2f} " if value is not None else "") + "without a file"
    return f"history {a['h_book']:.2f} from the lender's book"


def explain_lines(con: duckdb.DuckDBPyConnection, meta: dict[str, Any], adult: int) -> list[str]:
    """One line per application of the adult: the decision and why, and the shadow world's."""
    cm = meta["credit"]
    adult = int(adult)
    apps = rows(
        con,
        f"""SELECT day, approved, approved_shadow, reason::VARCHAR AS reason, score,
                   score_shadow, history_zero, h_book, thin, outcome::VARCHAR AS outcome,
                   {computation_day_sql(cm.get("score_period", 30))} AS c
            FROM credit_applications WHERE adult = {adult} ORDER BY day""",
    )
    if not apps:
        return []
    routes = {
        r["day"]: r["route"] for r in rows(con, routes_sql(cm, negative_behaviours(meta), adult))
    }
    ban_lists = [
        name
        for name, sanctions in (meta.get("consequences") or {}).items()
        if any(s.get("name") == LOAN_BAN and s.get("target") == "person" for s in sanctions)
    ]
    lines = []
    for a in apps:
        day = a["day"]
        if a["approved"]:
            lines.append(approved_line(a))
            continue
        why = []
        for part in (a["reason"] or "").split(", "):
            if part == "loan_ban":
                spell = _spell(con, adult, ban_lists, day - 1)
                since = f" (on the {spell['list']} since day {spell['start']})" if spell else ""
                why.append(f"holds {LOAN_BAN}{since}")
            elif part == "no_file":
                why.append("no credit file")
            elif part == "history":
                why.append(f"history {a['h_book']:.2f} < {cm['history_min']}")
            elif part == "score":
                factor = _history(con, adult, a, cm)
                why.append(f"score {a['score']} < {cm['score_min']}: {factor}")
        line = f"loan refused on day {day} ({'; '.join(why)})"
        if a["approved_shadow"]:
            route = ROUTE_NAMES[routes.get(day, "connections")]
            line += (
                f"; the shadow world (score {a['score_shadow']}) would have approved it: "
                f"refused through {route} (wrongly denied)"
            )
        lines.append(line)
    return lines


def approved_line(application: dict[str, Any]) -> str:
    """An approved application: its day and how the loan ended."""
    outcome = application["outcome"]
    ended = f" ({outcome})" if outcome else " (still running at the end)"
    return f"loan approved on day {application['day']}{ended}"


def company_lines(con: duckdb.DuckDBPyConnection, meta: dict[str, Any], company: int) -> list[str]:
    """One line per loan application of the company: the decision and why, and the shadow
    world's where it differs."""
    if not meta["credit"].get("company_loans"):
        return []
    apps = rows(
        con,
        f"""SELECT day, approved, approved_shadow, reason::VARCHAR AS reason,
                   rating::VARCHAR AS rating, rating_shadow::VARCHAR AS rating_shadow,
                   company_blacklist_shadow, company_defaulters_shadow,
                   outcome::VARCHAR AS outcome
            FROM credit_company_applications WHERE company = {int(company)} ORDER BY day""",
    )
    grades = ", ".join(meta["credit"].get("tax_loan_grades", ()))
    lines = []
    for a in apps:
        if a["approved"]:
            lines.append(approved_line(a))
            continue
        why = []
        for part in (a["reason"] or "").split(", "):
            if part in ("company_blacklist", "company_defaulters"):
                why.append(f"on the {part}")
            elif part == "no_file":
                why.append("no credit file")
            elif part == "book":
                why.append("a default on the lender's book")
            elif part == "grade":
                rated = "unrated" if a["rating"] in (None, "unrated") else f"rated {a['rating']}"
                why.append(f"{rated} (the bank-tax loan takes {grades})")
        line = f"loan refused on day {a['day']} ({'; '.join(why)})"
        if a["approved_shadow"]:
            shadow = [f"rated {a['rating_shadow'] or 'unrated'}"]
            shadow += [
                f"not on the {name}"
                for name, on in (
                    ("company_blacklist", a["company_blacklist_shadow"]),
                    ("company_defaulters", a["company_defaulters_shadow"]),
                )
                if not on and name in (a["reason"] or "")
            ]
            line += (
                f"; the shadow world ({', '.join(shadow)}) would have approved it (wrongly denied)"
            )
        lines.append(line)
    return lines
