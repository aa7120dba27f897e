"""The credit module's audit (docs/credit.md, "Financial inclusion"): who is approved and who
is refused although they would repay, by cohort, group and credit file; the applications
wrongly refused (the shadow world approves them) and the route each came through; the
private score's bands in both worlds. Registered as one `ModuleAudit` (`AUDIT`) with the
summary metrics (`summary.py`), the report section and `explain`'s lines (`explain.py`).

Every row goes into `metrics` under `credit.`: shares keep their counts (`count` of `of`)
and a Wilson interval within a run; a replicate set gives each its across-seed interval
(`replicates.combine`). The report's charts and findings read those rows, so in a replicate
set they are means per run over the seeds.
"""

from __future__ import annotations

import html
from typing import Any

import duckdb

from xinyong.audit import format as fmt
from xinyong.audit.format import count, counted, pct, text
from xinyong.audit.queries import rows
from xinyong.audit.registry import (
    AEQUITAS,
    ART_5_C_I,
    CONTEXT,
    MIN_COUNT,
    Metric,
    ModuleAudit,
    Section,
)
from xinyong.credit import summary
from xinyong.credit.explain import company_lines, explain_lines
from xinyong.credit.params import COHORTS
from xinyong.credit.routes import ROUTE_NAMES, ROUTES, negative_behaviours, routes_sql
from xinyong.credit.score import BANDS
from xinyong.scenario import GROUPS

TOPIC = "Financial inclusion (credit)"
TABLES = ("credit_applications",)
FILES = ("thin", "with_file")  # without a credit file at the moment of applying, or with one
BY = {"cohort": COHORTS, "group": tuple(reversed(GROUPS)), "file": FILES}
WHO = {
    "young": "young adults", "established": "established adults", "minority": "minority adults",
    "majority": "majority adults", "thin": "adults without a credit file",
    "with_file": "adults with a credit file",
}  # fmt: skip
WORLDS = ("recorded", "shadow")
SHARING = ("court_list", "shared_records")  # the two data-sharing switches
ROUTE_WORDS = {
    "loan_ban": "the blacklist's loan ban (the shadow world has them off it)",
    "court_list": "the court's defaulter list, shared with the private score (history 0; the "
    "shadow world has them off the list)",
    "shared_records": "social-credit records shared with the private score (more negative "
    "records in the recorded world's year than correct ones)",
    "connections": "their neighbours' private scores (others' wrong records, through the "
    "connections factor)",
}


def _m(name: str, definition: str, meaning: str, law: Any, *tables: str) -> Metric:
    return Metric(f"credit.{name}", TOPIC, definition, meaning, law, tables or TABLES)


APPROVED = _m(
    "approved_share",
    "approved / loan applications, whole run (recorded decisions)",
    "loan applications approved, of all applications",
    CONTEXT,
)
APPROVED_BY = _m(
    "approved_share_by_{by}.{which}",
    "the same by `cohort` (young, established), `group` and `file` (`thin`: no credit file "
    "at the moment of applying; `with_file`)",
    "loan applications of {who} approved",
    AEQUITAS,
)
WORTHY_REFUSED = _m(
    "worthy_refused_share",
    "refused / applications of creditworthy adults (who would repay: min(1, default_base x "
    "risk) <= worthy_max)",
    "applications of creditworthy adults refused",
    AEQUITAS,
)
WORTHY_REFUSED_BY = _m(
    "worthy_refused_share_by_{by}.{which}",
    "the same by cohort, group and file",
    "applications of creditworthy {who} refused",
    AEQUITAS,
)
WRONGLY_REFUSED = _m(
    "wrongly_refused_share",
    "wrongly refused / refused applications: refused in the recorded world, approved in the "
    "shadow world (correct records only)",
    "refused applications that the shadow world (correct records only) would have approved",
    ART_5_C_I,
)
WRONGLY_PER_1000 = _m(
    "wrongly_refused_per_1000",
    "wrongly refused applications per 1,000 adults",
    "applications wrongly refused per 1,000 adults",
    ART_5_C_I,
)
THROUGH = _m(
    "wrongly_refused_through.{route}",
    "of the wrongly refused applications, those refused through `loan_ban` (the blacklist's "
    "sanction), `court_list` (the court's list shared with the private score), "
    "`shared_records` (the networked what-if) or `connections` (neighbours' scores): the first "
    "of these that differs between the worlds",
    "wrongly refused applications refused through {words}",
    ART_5_C_I,
    "credit_applications",
    "spells",
    "records",
)
THROUGH_SHARING = _m(
    "wrongly_refused_through_sharing",
    "of the wrongly refused applications, those refused through data shared with the lender's "
    "score: `court_list` and `shared_records` together",
    "wrongly refused applications refused through data shared with the private score (the "
    "court's list, shared records)",
    ART_5_C_I,
    "credit_applications",
    "spells",
    "records",
)
BAND_SHARE = _m(
    "score_band_share.{world}.{band}",
    "adults whose private score at T (its last computation) is in the band, in the recorded "
    "and the shadow world",
    "adults whose {world} private score is {band} at T",
    CONTEXT,
    "credit_adults",
)
METRICS = (
    APPROVED,
    APPROVED_BY,
    WORTHY_REFUSED,
    WORTHY_REFUSED_BY,
    WRONGLY_REFUSED,
    WRONGLY_PER_1000,
    THROUGH,
    THROUGH_SHARING,
    BAND_SHARE,
)


def credit_audit(con: duckdb.DuckDBPyConnection, out: dict[str, Any], meta: dict, T: int) -> None:
    """Add the credit metrics to `out["metrics"]`, and what the section needs besides them
    (the run's settings) to `out["credit"]`."""
    cm = meta["credit"]
    m = out["metrics"]
    adults = rows(con, "SELECT count(*) AS n FROM credit_adults")[0]["n"]
    keys = {"all": "'all'", "cohort": "cohort::VARCHAR", "group": '"group"::VARCHAR',
            "file": "CASE WHEN thin THEN 'thin' ELSE 'with_file' END"}  # fmt: skip
    found = {
        (by, r["value"]): r
        for by, key in keys.items()
        for r in rows(
            con,
            f"""SELECT {key} AS value, count(*) AS n, count(*) FILTER (approved) AS ok,
                       count(*) FILTER (creditworthy) AS worthy,
                       count(*) FILTER (creditworthy AND NOT approved) AS worthy_refused
                FROM credit_applications GROUP BY ALL""",
        )
    }
    empty = {"n": 0, "ok": 0, "worthy": 0, "worthy_refused": 0}
    total = found.get(("all", "all"), empty)
    APPROVED.fraction(m, total["ok"], total["n"])
    WORTHY_REFUSED.fraction(m, total["worthy_refused"], total["worthy"])
    for by, values in BY.items():
        for value in values:
            r = found.get((by, value), empty)
            parts = {"by": by, "which": value, "who": WHO[value]}
            APPROVED_BY.fraction(m, r["ok"], r["n"], **parts)
            WORTHY_REFUSED_BY.fraction(m, r["worthy_refused"], r["worthy"], **parts)
    refused = total["n"] - total["ok"]
    routes = {
        r["route"]: r["n"]
        for r in rows(
            con,
            f"SELECT route, count(*) AS n FROM ({routes_sql(cm, negative_behaviours(meta))}) "
            "GROUP BY ALL",
        )
    }
    wrong = sum(routes.values())
    WRONGLY_REFUSED.fraction(m, wrong, refused)
    WRONGLY_PER_1000.put(m, 1000 * wrong / adults if adults else None)
    for route in ROUTES:
        THROUGH.fraction(m, routes.get(route, 0), wrong, route=route, words=ROUTE_WORDS[route])
    THROUGH_SHARING.fraction(m, sum(routes.get(r, 0) for r in SHARING), wrong)
    for world, column in zip(WORLDS, ("private_score", "private_score_shadow"), strict=True):
        bands = {
            r["band"]: r["n"]
            for r in rows(
                con,
                f"""SELECT ({column} >= 550)::INT + ({column} >= 600)::INT
                           + ({column} >= 650)::INT + ({column} >= 700)::INT AS band,
                           count(*) AS n FROM credit_adults GROUP BY ALL""",
            )
        }
        for i, band in enumerate(BANDS):
            BAND_SHARE.fraction(m, bands.get(i, 0), adults, world=world, band=band)
    out["credit"] = {
        "lender": cm.get("lender"),
        "score_min": cm.get("score_min"),
        "court_list_to_private": cm.get("court_list_to_private"),
        "records_to_private": cm.get("records_to_private"),
    }


# The report: key findings and charts, from the metric rows (in a replicate set, means per
# run over its seeds with their across-seed intervals).


def _small(r: dict) -> bool:
    """Fewer than MIN_COUNT cases behind a share (pooled over a replicate set's seeds)."""
    k = r.get("count_total", r.get("count"))
    return k is None or k < MIN_COUNT


def _share(r: dict) -> str:
    """'k of n (p%)': the share only from MIN_COUNT cases up (the small-number rule), its
    interval's kind said in the section's note."""
    said = f"{count(r.get('count'))} of {count(r.get('of'))}"
    if _small(r) or r.get("value") is None:
        return said
    return f"{said} ({pct(r.get('value'))}, {pct(r.get('low'))} to {pct(r.get('high'))})"


def credit_findings(doc: dict) -> list[str]:
    """The Financial inclusion section's key findings in plain language, each number a metric
    row's (tests/test_credit_audit.py checks them against the rows)."""
    if not doc.get("credit"):
        return []
    m = doc.get("metrics") or {}
    k = max(1, int(doc.get("replicates") or 1))
    per_run = f" per run over {k} seeds" if k > 1 else ""
    out = []
    every = fmt.row(m, APPROVED.key())
    if not every.get("of"):
        return ["No adult applied for a loan."]
    cohorts = ", ".join(
        f"{text(c)} {_share(fmt.row(m, APPROVED_BY.key(by='cohort', which=c)))}" for c in COHORTS
    )
    thin = fmt.row(m, APPROVED_BY.key(by="file", which="thin"))
    out.append(
        f"{count(every.get('count'))} of {count(every.get('of'))} loan applications were "
        f"approved{per_run}: {cohorts}; without a credit file {_share(thin)}."
    )
    worthy = fmt.row(m, WORTHY_REFUSED.key())
    if worthy.get("of"):
        young = fmt.row(m, WORTHY_REFUSED_BY.key(by="cohort", which="young"))
        out.append(
            f"Of the applications of adults who would repay, {_share(worthy)} were refused"
            f"{per_run}; of young ones, {_share(young)}."
        )
    wrong = fmt.row(m, WRONGLY_REFUSED.key())
    if wrong.get("count"):
        sharing = fmt.row(m, THROUGH_SHARING.key())
        by_route = {r: fmt.row(m, THROUGH.key(route=r)).get("count") for r in ROUTES}
        routes = [f"{text(ROUTE_NAMES[r])} {count(n)}" for r, n in by_route.items() if n]
        out.append(
            f"{counted(wrong.get('count'), 'refused application', 'refused applications')} "
            f"would have been approved on correct records alone{per_run}; "
            f"{count(sharing.get('count'))} of them through data shared with the private score "
            f"(by route: {', '.join(routes)})."
        )
    elif wrong.get("of"):
        out.append(f"No application was wrongly refused{per_run}.")
    poor = [fmt.row(m, BAND_SHARE.key(world=w, band="poor")) for w in WORLDS]
    if poor[0].get("of"):
        out.append(
            f"At the end, the recorded world gave {_share(poor[0])} adults a poor private score "
            f"(below 550), the shadow world {_share(poor[1])}{per_run}."
        )
    return out


def _section(page: Any, doc: dict) -> dict | None:
    """The report's Financial inclusion section: findings, approval and creditworthy-refused
    shares by cohort, group and file, the routes of the wrongly refused, the score bands."""
    import plotly.graph_objects as go

    from xinyong.audit.figures import FLAG, GOOD, OK, errors, layout

    cr, m = doc.get("credit"), doc.get("metrics") or {}
    if not cr:
        return None
    groups = [(by, value) for by, values in BY.items() for value in values]
    table = []
    for by, value in groups:
        ok = fmt.row(m, APPROVED_BY.key(by=by, which=value))
        worthy = fmt.row(m, WORTHY_REFUSED_BY.key(by=by, which=value))
        table.append(
            {
                "by": by,
                "value": value,
                "who": WHO[value],
                "applications": ok.get("of"),
                "approved": ok.get("count"),
                "approved_share": ok.get("value"),
                "approved_low": ok.get("low"),
                "approved_high": ok.get("high"),
                "worthy_applications": worthy.get("of"),
                "worthy_refused": worthy.get("count"),
                "worthy_refused_share": worthy.get("value"),
                "worthy_refused_low": worthy.get("low"),
                "worthy_refused_high": worthy.get("high"),
                "small": _small(ok),
                "worthy_small": _small(worthy),
            }
        )
    labels = [html.escape(WHO[v]) for _, v in groups]
    figs = []
    traces = [
        go.Bar(
            x=labels,
            y=[r[f"{key}_share"] for r in table],
            name=name,
            marker={"color": colour},
            error_y=errors(table, f"{key}_share", f"{key}_low", f"{key}_high"),
            hovertext=[
                f"{html.escape(WHO[r['value']])}: {count(r[num])} of {count(r[den])} {name}"
                for r in table
            ],
            hoverinfo="text",
        )
        for key, name, colour, num, den in (
            ("approved", "applications approved", GOOD, "approved", "applications"),
            ("worthy_refused", "creditworthy applications refused", FLAG, "worthy_refused",
             "worthy_applications"),
        )
    ]  # fmt: skip
    kind = "across seeds" if (doc.get("replicates") or 1) > 1 else "within the run"
    figs.append(
        page.figure(
            "credit-approval",
            traces,
            layout(
                f"Loans approved and creditworthy adults refused (95% intervals {kind})",
                420,
                barmode="group",
                xaxis={"title": {"text": "applicants"}},
                yaxis={
                    "title": {"text": "share of applications"},
                    "tickformat": ".0%",
                    "range": [0, 1.03],
                },
            ),
            table,
        )
    )
    bands = [
        {"world": w, "band": b, **{key: fmt.row(m, BAND_SHARE.key(world=w, band=b)).get(key)
                                   for key in ("value", "low", "high", "count", "of")}}
        for w in WORLDS
        for b in BANDS
    ]  # fmt: skip
    figs.append(
        page.figure(
            "credit-bands",
            [
                go.Bar(
                    x=[html.escape(b.replace("_", " ")) for b in BANDS],
                    y=[r["value"] for r in bands if r["world"] == w],
                    name=f"{w} world",
                    marker={"color": colour},
                    error_y=errors([r for r in bands if r["world"] == w], "value", "low", "high"),
                )
                for w, colour in zip(WORLDS, (OK, GOOD), strict=True)
            ],
            layout(
                "Private scores at the end, by band, recorded and shadow world",
                380,
                barmode="group",
                xaxis={"title": {"text": "private score band"}},
                yaxis={
                    "title": {"text": "share of adults"},
                    "tickformat": ".0%",
                    "rangemode": "tozero",
                },
            ),
            bands,
        )
    )
    wrong = fmt.row(m, WRONGLY_REFUSED.key())
    routes = [
        {"route": r, "words": ROUTE_WORDS[r], **{key: fmt.row(m, THROUGH.key(route=r)).get(key)
                                                 for key in ("count", "of", "value")}}
        for r in ROUTES
    ]  # fmt: skip
    return {
        "findings": credit_findings(doc),
        "figures": figs,
        "table": table,
        "routes": routes if wrong.get("count") else [],
        "settings": cr,
        "min_count": MIN_COUNT,
    }


def _headline(doc: dict) -> list[str]:
    """The finding that opens the report: the approvals by cohort and thin file."""
    return credit_findings(doc)[:1]


AUDIT = ModuleAudit(
    package="xinyong.credit",
    applies=lambda meta: "credit" in meta,
    summary=summary.credit_metrics,
    summary_meanings=summary.MEANINGS,
    compute=credit_audit,
    metrics=METRICS,
    section=Section("credit", "credit_section.html", _section),
    headline=_headline,
    lines={"adult": explain_lines, "company": company_lines},
)
