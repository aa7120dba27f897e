"""The companies' audit (docs/model.md, "Companies"): their metrics, summary metrics, report
section, key findings and explainer, registered as one `ModuleAudit` (`AUDIT`).

Wrongful company listing by size class, the tax rating's disparity by size, the lock-in of the
company lists (Kaplan-Meier), the adults restricted because of a company they represent, and
the spillover of those restrictions onto their children. Every metric row goes into
`metrics` under `company.`; the tables behind them (for the report) go into `company`.
Shares keep their counts (`count` of `of`); a zero denominator gives null.
"""

from __future__ import annotations

import html
from typing import Any

import duckdb

from xinyong.audit import format as fmt
from xinyong.audit import stats
from xinyong.audit.format import count, num, pct, text
from xinyong.audit.queries import (
    child_lists,
    one,
    quote,
    rows,
    segments_sql,
    spells_sql,
    survival,
    wrongly_listed,
)
from xinyong.audit.registry import (
    AEQUITAS,
    ART_5_C_I,
    ART_5_C_II,
    CONTEXT,
    FDR,
    MIN_COUNT,
    Metric,
    ModuleAudit,
    Section,
    lock_in_metrics,
)
from xinyong.companies.explain import COMPANY_EXPLAINER

SPILLOVER_LIST = "consumption_restricted"  # the person list with a child-directed sanction
LOCK_IN_LIST = "company_blacklist"
COMPANIES = "Companies"
TABLES = ("companies",)
SPELLS = ("company_spells", "companies")


def _m(name: str, definition: str, meaning: str, law: Any, *tables: str) -> Metric:
    return Metric(f"company.{name}", COMPANIES, definition, meaning, law, tables)


LIST_SHARE = _m(
    "list_share.{list}", "companies on the list at T", "companies on {list} at T", CONTEXT,
    *TABLES,
)  # fmt: skip
WRONGLY_LISTED_SHARE = _m(
    "wrongly_listed_share.{list}",
    "companies wrongly on the list at T",
    "companies on {list} at T whose correct records alone would not put them there ({kind})",
    AEQUITAS,
    *TABLES,
)
WRONGLY_LISTED_OF_LISTED = _m(
    "wrongly_listed_of_listed.{list}",
    "of the companies on the list at T, the share wrongly on it",
    "of the companies on {list} at T, the share listed only through wrong records",
    FDR,
    *TABLES,
)
EVER_WRONGLY_LISTED_SHARE = _m(
    "ever_wrongly_listed_share.{list}",
    "companies wrongly on the list on at least one day",
    "companies wrongly on {list} on at least one day ({kind})",
    AEQUITAS,
    *SPELLS,
)
WRONGLY_BY_SIZE = _m(
    "wrongly_listed_share_by_size.{list}.{size}",
    "companies of a size class wrongly on the list at T (count per size)",
    "{size} companies wrongly on {list} at T, of all {size} companies",
    AEQUITAS,
    *TABLES,
)
EVER_WRONGLY_BY_SIZE = _m(
    "ever_wrongly_listed_share_by_size.{list}.{size}",
    "companies of a size class wrongly on the list on at least one day (count per size)",
    "{size} companies wrongly on {list} on at least one day, of all {size} companies (micro "
    "firms draw more same-name misattributions: the market_regulator channel's size weights)",
    AEQUITAS,
    *SPELLS,
)
RATED_SHARE = _m(
    "rated_{grade}_share.{world}.{year}.{size}",
    "companies of a size class rated A (`a`) or D (`d`) in a tax year, in the recorded or the "
    "shadow world, of those rated",
    "{size} companies rated {letter} in tax year {year} ({world} world), of the {size} "
    "companies rated",
    AEQUITAS,
    "company_ratings",
    "companies",
)
LOCK_IN = lock_in_metrics("company.", "companies", "company_spells", COMPANIES)
LEGAL_REPRESENTATIVES = _m(
    "legal_representatives",
    "adults who represent at least one company",
    "adults who represent at least one company",
    CONTEXT,
    *TABLES,
)
PERSON_LISTED = _m(
    "person_listed.{list}",
    "legal representatives on a person list at T because a company they represent is on the "
    "company list it follows",
    "legal representatives on {list} at T because a company they represent is on {follows}",
    ART_5_C_I,
    "persons",
    "companies",
)
PERSON_WRONGLY_OF_LISTED = _m(
    "person_wrongly_listed_of_listed.{list}",
    "of the adults on the person list at T, those whose companies' correct records alone would "
    "not put them there",
    "of the adults on {list} at T, those whose companies' correct records alone would not put "
    "them there",
    FDR,
    "persons",
)
PERSON_EVER_LISTED = _m(
    "person_ever_listed.{list}",
    "legal representatives on the person list on at least one day because of a company",
    "legal representatives on {list} on at least one day because a company they represent is "
    "on {follows}",
    ART_5_C_I,
    "spells",
    "companies",
)
PERSON_EVER_WRONGLY = _m(
    "person_ever_wrongly_listed_of_ever_listed.{list}",
    "of the adults ever on the person list, those wrongly on it on at least one day",
    "of the adults ever on {list}, those wrongly on it on at least one day (their companies' "
    "correct records alone would not have listed them)",
    FDR,
    "spells",
)
PERSON_WRONGLY_DAYS = _m(
    "person_wrongly_listed_days.{list}",
    "person-days on the person list that the shadow world would not have spent there",
    "person-days on {list} that the shadow world would not have spent there",
    ART_5_C_II,
    "spells",
)
CHILDREN_PARENT = _m(
    "children_parent_restricted",
    f"children with a parent on {SPILLOVER_LIST} at T",
    f"children with a parent on {SPILLOVER_LIST} at T (a parent's company is a corporate "
    "defaulter)",
    ART_5_C_I,
    "children",
    "persons",
)
CHILDREN_ONLY = _m(
    "children_restricted_only_by_company",
    f"children restricted at T only through a parent on {SPILLOVER_LIST}",
    f"children restricted at T only through a parent on {SPILLOVER_LIST} (no parent on "
    "another child-sanctioning list): a sanction for a company's debts",
    ART_5_C_I,
    "children",
    "persons",
)
CHILDREN_ONLY_WRONGLY = _m(
    "children_restricted_only_by_company_wrongly",
    "of those children, the ones whose parents the shadow world has off the list",
    f"of those children, the ones whose parents the shadow world has off {SPILLOVER_LIST}",
    ART_5_C_I,
    "children",
    "persons",
)
CHILDREN_EVER_ONLY = _m(
    "children_ever_restricted_only_by_company",
    f"children restricted on at least one day only through a parent on {SPILLOVER_LIST}",
    f"children restricted on at least one day only through a parent on {SPILLOVER_LIST}",
    ART_5_C_I,
    "children",
    "spells",
)
CHILDREN_ONLY_DAYS = _m(
    "children_restricted_only_by_company_days",
    f"child-days restricted only through a parent on {SPILLOVER_LIST}",
    f"child-days restricted only through a parent on {SPILLOVER_LIST}",
    ART_5_C_I,
    "children",
    "spells",
)
METRICS = (
    LIST_SHARE,
    WRONGLY_LISTED_SHARE,
    WRONGLY_LISTED_OF_LISTED,
    EVER_WRONGLY_LISTED_SHARE,
    WRONGLY_BY_SIZE,
    EVER_WRONGLY_BY_SIZE,
    RATED_SHARE,
    *LOCK_IN,
    LEGAL_REPRESENTATIVES,
    PERSON_LISTED,
    PERSON_WRONGLY_OF_LISTED,
    PERSON_EVER_LISTED,
    PERSON_EVER_WRONGLY,
    PERSON_WRONGLY_DAYS,
    CHILDREN_PARENT,
    CHILDREN_ONLY,
    CHILDREN_ONLY_WRONGLY,
    CHILDREN_EVER_ONLY,
    CHILDREN_ONLY_DAYS,
)


def _company_spells_sql(T: int) -> str:
    return f'SELECT company, list, world, start, coalesce("end", {T}) AS stop FROM company_spells'


def company_audit(con, out: dict[str, Any], meta: dict[str, Any], T: int) -> None:
    """Add the company metrics to `out["metrics"]` and their tables to `out["company"]`."""
    cm = meta["companies"]
    m = out["metrics"]
    section: dict[str, Any] = {
        "lists": cm["lists"],
        "sizes": cm["sizes"],
        "list_kinds": cm.get("list_kinds", {}),
        "earliest_day": cm.get("earliest_day", {}),
        "wrongly_listed": [],
        "ratings": [],
        "survival": {},
        "persons": [],
        "children": {},
    }
    out["company"] = section
    _wrongly_listed(con, m, section, cm, T)
    _ratings(con, m, section, cm)
    survival(con, m, section["survival"], cm["lists"], T, "company_spells", LOCK_IN)
    _persons(con, m, section, cm, T)
    _children(con, m, section, meta, T)


def _wrongly_listed(con, m: dict, section: dict, cm: dict, T: int) -> None:
    """Per company list and size: companies on it at T, wrongly on it at T (recorded on,
    shadow off), ever on it and ever wrongly on it (from company_spells), with company-days."""
    sizes = {
        r["size"]: r["n"]
        for r in rows(con, "SELECT size, count(*) AS n FROM companies GROUP BY ALL")
    }
    total = sum(sizes.values())
    seg = segments_sql(_company_spells_sql(T), "company, list")
    ever = {
        (r["list"], r["size"]): r
        for r in rows(
            con,
            f"""
        WITH rec AS (SELECT DISTINCT company, list FROM company_spells WHERE world = 'recorded'),
        w AS (SELECT company, list, sum(stop - start) AS days FROM ({seg})
              WHERE rec > 0 AND sh = 0 GROUP BY ALL),
        both_ AS (SELECT coalesce(rec.company, w.company) AS company,
                         coalesce(rec.list, w.list) AS list, rec.company IS NOT NULL AS ever,
                         w.company IS NOT NULL AS wrong, coalesce(w.days, 0) AS days
                  FROM rec FULL JOIN w USING (company, list))
        SELECT b.list, c.size, count(*) FILTER (WHERE b.ever) AS ever,
               count(*) FILTER (WHERE b.wrong) AS wrong, sum(b.days) AS days
        FROM both_ b JOIN companies c USING (company) GROUP BY ALL""",
        )
    }
    kinds = cm.get("list_kinds", {})
    for lst in cm["lists"]:
        on, wrong = f'"on.{lst}"', f'("on.{lst}" AND NOT "shadow_on.{lst}")'
        now = {
            r["size"]: r
            for r in rows(
                con,
                f"""SELECT size, count(*) FILTER (WHERE {on}) AS listed,
                       count(*) FILTER (WHERE {wrong}) AS wrong FROM companies GROUP BY ALL""",
            )
        }
        what = (
            "an undeserved privilege" if kinds.get(lst) == "privilege" else "an undeserved sanction"
        )
        listed_all = sum(r["listed"] for r in now.values())
        wrong_all = sum(r["wrong"] for r in now.values())
        LIST_SHARE.fraction(m, listed_all, total, list=lst)
        WRONGLY_LISTED_SHARE.fraction(m, wrong_all, total, list=lst, kind=what)
        WRONGLY_LISTED_OF_LISTED.fraction(m, wrong_all, listed_all, list=lst)
        ever_wrong_all = sum(ever.get((lst, s), {}).get("wrong", 0) for s in sizes)
        EVER_WRONGLY_LISTED_SHARE.fraction(m, ever_wrong_all, total, list=lst, kind=what)
        for size in cm["sizes"]:
            n = sizes.get(size, 0)
            r, e = now.get(size, {}), ever.get((lst, size), {})
            row = {
                "list": lst,
                "size": size,
                "companies": n,
                "listed": int(r.get("listed", 0)),
                "wrong": int(r.get("wrong", 0)),
                "ever_listed": int(e.get("ever", 0)),
                "ever_wrong": int(e.get("wrong", 0)),
                "wrong_company_days": int(e.get("days") or 0),
            }
            for key in ("wrong", "ever_wrong"):
                _, lo, hi = stats.wilson(row[key], n)
                row[f"{key}_share"] = row[key] / n if n else None
                row[f"{key}_low"], row[f"{key}_high"] = lo, hi
            section["wrongly_listed"].append(row)
            WRONGLY_BY_SIZE.fraction(m, row["wrong"], n, list=lst, size=size)
            EVER_WRONGLY_BY_SIZE.fraction(m, row["ever_wrong"], n, list=lst, size=size)


def _ratings(con, m: dict, section: dict, cm: dict) -> None:
    """Share rated A and share rated D per size, year and world, of the companies rated."""
    found = rows(
        con,
        """SELECT r.year, r.world, c.size, count(*) FILTER (WHERE r.grade <> 'unrated') AS rated,
                  count(*) FILTER (WHERE r.grade = 'A') AS a,
                  count(*) FILTER (WHERE r.grade = 'D') AS d
           FROM company_ratings r JOIN companies c USING (company)
           GROUP BY ALL ORDER BY r.year, r.world""",
    )
    got = {(r["year"], r["world"], r["size"]): r for r in found}
    years = sorted({r["year"] for r in found})
    for year in years:
        for world in ("recorded", "shadow"):
            for size in cm["sizes"]:
                r = got.get((year, world, size), {"rated": 0, "a": 0, "d": 0})
                n = int(r["rated"])
                entry = {"year": year, "world": world, "size": size, "rated": n}
                for grade, key in (("A", "a"), ("D", "d")):
                    k = int(r[key])
                    share, lo, hi = stats.wilson(k, n)
                    entry |= {key: k, f"{key}_share": share, f"{key}_low": lo, f"{key}_high": hi}
                    RATED_SHARE.fraction(
                        m, k, n, grade=key, letter=grade, world=world, year=year, size=size
                    )
                section["ratings"].append(entry)


def _persons(con, m: dict, section: dict, cm: dict, T: int) -> None:
    """Adults on a person list because a company they represent is on the company list it
    follows (companies.legal_rep): at T and ever, and how many of them wrongly."""
    reps = one(con, "SELECT count(DISTINCT legal_rep) FROM companies")
    LEGAL_REPRESENTATIVES.put(m, reps)
    for plist, clist in cm.get("person_lists", {}).items():
        on, wrong = f'"on.{plist}"', f'("on.{plist}" AND NOT "shadow_on.{plist}")'
        now = rows(
            con,
            f"""SELECT count(*) FILTER (WHERE {on}) AS listed,
                       count(*) FILTER (WHERE {wrong}) AS wrong FROM persons""",
        )[0]
        ever = one(
            con,
            f"SELECT count(DISTINCT person) FROM spells WHERE list = '{plist}' "
            "AND world = 'recorded'",
        )
        seg = segments_sql(spells_sql(T, [plist]), "person, list")
        ever_wrong, days = rows(
            con,
            f"""SELECT count(DISTINCT person) AS n, coalesce(sum(stop - start), 0) AS days
                FROM ({seg}) WHERE rec > 0 AND sh = 0""",
        )[0].values()
        row = {
            "list": plist,
            "follows": clist,
            "legal_representatives": reps,
            "listed": int(now["listed"]),
            "wrong": int(now["wrong"]),
            "ever_listed": int(ever),
            "ever_wrong": int(ever_wrong),
            "wrong_person_days": int(days),
        }
        section["persons"].append(row)
        PERSON_LISTED.fraction(m, row["listed"], reps, list=plist, follows=clist)
        PERSON_WRONGLY_OF_LISTED.fraction(m, row["wrong"], row["listed"], list=plist)
        PERSON_EVER_LISTED.fraction(m, row["ever_listed"], reps, list=plist, follows=clist)
        PERSON_EVER_WRONGLY.fraction(m, row["ever_wrong"], row["ever_listed"], list=plist)
        PERSON_WRONGLY_DAYS.put(m, row["wrong_person_days"], list=plist)


def _children(con, m: dict, section: dict, meta: dict, T: int) -> None:
    """Children restricted only through a parent on consumption_restricted (no parent on
    another child-sanctioning list of their city at the same time): at T and ever."""
    by_city = child_lists(meta)
    n = one(con, "SELECT count(*) FROM children")
    pairs = [(c, lst) for c, lists in by_city.items() for lst in lists if lst != SPILLOVER_LIST]
    cities = [c for c, lists in by_city.items() if SPILLOVER_LIST in lists]
    if not cities:
        return
    parents = """parents AS (SELECT child, city, parent1 AS person FROM children
                             UNION ALL
                             SELECT child, city, parent2 FROM children
                             WHERE parent2 IS NOT NULL)"""
    other_on = (
        " OR ".join(f'(p.city = {quote([c])} AND q."on.{lst}")' for c, lst in pairs) or "false"
    )
    now = rows(
        con,
        f"""WITH {parents},
            per AS (SELECT p.child, bool_or(q."on.{SPILLOVER_LIST}") AS cr,
                           bool_or({other_on}) AS other,
                           bool_or(q."on.{SPILLOVER_LIST}" AND NOT q."shadow_on.{SPILLOVER_LIST}")
                           AS cr_wrong,
                           bool_or(q."shadow_on.{SPILLOVER_LIST}") AS cr_shadow
                    FROM parents p JOIN persons q USING (person)
                    WHERE p.city IN ({quote(cities)}) GROUP BY p.child)
            SELECT count(*) FILTER (WHERE cr) AS cr,
                   count(*) FILTER (WHERE cr AND NOT other) AS only,
                   count(*) FILTER (WHERE cr AND NOT other AND NOT cr_shadow) AS only_wrong
            FROM per""",
    )[0]
    # Ever: per child, the days a parent is on consumption_restricted ('recorded' below)
    # while no parent is on another child-sanctioning list ('shadow' below).
    values = ", ".join(f"({quote([c])}, {quote([lst])})" for c, lst in pairs)
    others = (
        f"""UNION ALL
            SELECT p.child, 'shadow' AS world, s.start, coalesce(s."end", {T}) AS stop
            FROM parents p JOIN (VALUES {values}) cl(city, list) USING (city)
                 JOIN spells s ON s.person = p.person AND s.list = cl.list
            WHERE s.world = 'recorded'"""
        if pairs
        else ""
    )
    source = f"""
        WITH {parents}
        SELECT p.child, 'recorded' AS world, s.start, coalesce(s."end", {T}) AS stop
        FROM parents p JOIN spells s ON s.person = p.person AND s.list = '{SPILLOVER_LIST}'
        WHERE s.world = 'recorded' AND p.city IN ({quote(cities)})
        {others}"""
    ever = rows(
        con,
        f"""WITH seg AS ({segments_sql(source, "child")})
            SELECT count(DISTINCT child) FILTER (WHERE rec > 0) AS ever,
                   count(DISTINCT child) FILTER (WHERE rec > 0 AND sh = 0) AS only,
                   coalesce(sum(stop - start) FILTER (WHERE rec > 0 AND sh = 0), 0) AS days
            FROM seg""",
    )[0]
    section["children"] = {
        "children": n,
        "restricted_at_T": one(con, "SELECT count(*) FROM children WHERE restricted"),
        "parent_restricted_at_T": int(now["cr"] or 0),
        "only_at_T": int(now["only"] or 0),
        "only_wrong_at_T": int(now["only_wrong"] or 0),
        "parent_ever_restricted": int(ever["ever"] or 0),
        "only_ever": int(ever["only"] or 0),
        "only_child_days": int(ever["days"] or 0),
    }
    c = section["children"]
    CHILDREN_PARENT.fraction(m, c["parent_restricted_at_T"], n)
    CHILDREN_ONLY.fraction(m, c["only_at_T"], n)
    CHILDREN_ONLY_WRONGLY.fraction(m, c["only_wrong_at_T"], c["only_at_T"])
    CHILDREN_EVER_ONLY.fraction(m, c["only_ever"], n)
    CHILDREN_ONLY_DAYS.put(m, c["only_child_days"])


SUMMARY_MEANINGS = {
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
        out[f"company.rating_share.{g}"] = stats.ratio(grades.get(g, 0), n)
    by_size = {
        size: (total, a)
        for size, total, a in con.sql(
            "SELECT size, count(*), count(*) FILTER (grade = 'A') FROM companies GROUP BY ALL"
        ).fetchall()
    }
    for size in meta["sizes"]:
        total, a = by_size.get(size, (0, 0))
        out[f"company.a_share_by_size.{size}"] = stats.ratio(a, total)
    for name in meta["lists"]:
        out[f"company.list_share.{name}"] = stats.ratio(
            one(f'SELECT count(*) FROM companies WHERE "on.{name}"'), n
        )
    records, wrong = con.sql(
        "SELECT count(*), count(*) FILTER (truth <> 'correct') FROM company_records"
    ).fetchall()[0]
    out["company.neg_records_per_company_year"] = stats.ratio(records, n * days / 365)
    out["company.wrong_record_share"] = stats.ratio(wrong, records)
    for name in meta["lists"]:
        wrong, shares = wrongly_listed(con, "companies", "size", name)
        out[f"company.wrongly_listed_share.{name}"] = stats.ratio(wrong, n)
        for size in meta["sizes"]:
            out[f"company.wrongly_listed_share_by_size.{name}.{size}"] = shares.get(size)
    restricted = "consumption_restricted"
    if restricted in meta.get("person_lists", {}):
        on = f'"on.{restricted}"'
        out["legal_rep_restricted_share"] = stats.ratio(
            one(f"SELECT count(*) FROM persons WHERE {on}"), adults
        )
        out["legal_rep_wrongly_restricted_share"] = stats.ratio(
            one(f'SELECT count(*) FROM persons WHERE {on} AND NOT "shadow_on.{restricted}"'),
            adults,
        )
    return out


# The report: the section's key findings and its charts.


def company_findings(doc: dict) -> list[str]:
    """The Companies section's key findings in plain language (counts where they are small),
    from the metrics: in a replicate set, means per run over its seeds. The list with the most
    companies ever wrongly on it comes first."""
    co = doc.get("company")
    if not co:
        return []
    m = doc.get("metrics") or {}
    k = max(1, int(doc.get("replicates") or 1))
    per_run = f" per run over {k} seeds" if k > 1 else ""
    days = (doc.get("run") or {}).get("days")
    out, ranked = [], []
    for lst in co.get("lists") or []:
        ever = fmt.row(m, f"company.ever_wrongly_listed_share.{lst}").get("count")
        if not ever:
            continue
        parts = []
        for size in co.get("sizes") or []:
            r = fmt.row(m, f"company.ever_wrongly_listed_share_by_size.{lst}.{size}")
            if r.get("count"):
                parts.append(f"{count(r.get('count'))} of {count(r.get('of'))} {text(size)}")
        now = fmt.row(m, f"company.wrongly_listed_share.{lst}").get("count")
        ranked.append(
            (
                ever,
                f"{count(ever)} companies were wrongly on the {text(lst)} at some point"
                f"{per_run}: {', '.join(parts)}; {count(now)} still at the end.",
            )
        )
    ranked.sort(key=lambda e: (e[0] >= MIN_COUNT, e[0]), reverse=True)
    out += [sentence for _, sentence in ranked]
    if not out and co.get("wrongly_listed"):
        out.append("No company was ever wrongly on a company list.")
    out += _unreachable(co, days)
    out += _ratings_found(doc, m, co, per_run)
    median = fmt.row(m, "company.median_stay_days.company_blacklist").get("value")
    spells = fmt.row(m, "company.spells.company_blacklist").get("value")
    if spells:
        mean = fmt.row(m, "company.mean_stay_days_restricted.company_blacklist").get("value")
        out.append(
            f"Half of the {count(spells)} company_blacklist listings{per_run} lasted "
            f"{num(median)} days or more."
            if median is not None
            else f"More than half of the {count(spells)} company_blacklist listings{per_run} "
            f"were still running at the end (restricted mean {num(mean)} days)."
        )
    for p in co.get("persons") or []:
        lst = p.get("list")
        ever = fmt.row(m, f"company.person_ever_listed.{lst}").get("count")
        if not ever:
            continue
        wrong = fmt.row(m, f"company.person_ever_wrongly_listed_of_ever_listed.{lst}")
        now = fmt.row(m, f"company.person_wrongly_listed_of_listed.{lst}")
        out.append(
            f"{count(ever)} legal representatives were put on {text(lst)} because a company of "
            f"theirs was on {text(p.get('follows'))}{per_run} ({count(wrong.get('count'))} of "
            f"them wrongly at some point); {count(now.get('of'))} at the end, "
            f"{count(now.get('count'))} wrongly."
        )
    only = fmt.row(m, "company.children_ever_restricted_only_by_company").get("count")
    if only:
        at_t = fmt.row(m, "company.children_restricted_only_by_company").get("count")
        out.append(
            f"{count(only)} children were restricted at some point only because a parent's "
            f"company defaulted{per_run} ({count(at_t)} at the end)."
        )
    return out


def _unreachable(co: dict, days: Any) -> list[str]:
    """Lists no company (or legal representative) can reach within the run's days: a route
    that needs longer than the run is said so, not shown as 0."""
    earliest = co.get("earliest_day") or {}
    if not isinstance(days, int | float):
        return []
    out = []
    follows = {p.get("follows"): p.get("list") for p in co.get("persons") or []}
    for lst, (day, route) in earliest.items():
        if day is None or day <= days:
            continue
        person = follows.get(lst)
        who = f" (and so no legal representative on {text(person)})" if person else ""
        out.append(
            f"No company{who} can be on the {text(lst)} within this run: it takes "
            f"{text(route)} first, and the run lasts {num(days)} days."
        )
    return out


def _ratings_found(doc: dict, m: dict, co: dict, per_run: str) -> list[str]:
    """The last tax year's A shares by size, and the published rating shares beside the
    simulated ones (from the built-in calibration target sets, with their documents)."""
    ratings = co.get("ratings") or []
    if not ratings:
        return []
    last = max(r.get("year") or 0 for r in ratings)
    parts = []
    for size in co.get("sizes") or []:
        r = fmt.row(m, f"company.rated_a_share.recorded.{last}.{size}")
        if r.get("of") is None:
            continue
        pooled = r.get("count_total", r.get("count")) or 0  # the rule reads the counts seen
        share = f" ({pct(r.get('value'))})" if pooled >= MIN_COUNT else ""
        parts.append(f"{text(size)} {count(r.get('count'))} of {count(r.get('of'))}{share}")
    out = [f"Rated A in tax year {num(last)}{per_run}: {', '.join(parts)}."] if parts else []
    out += published_ratings(doc.get("run") or {})
    return out


def published_ratings(summary: dict) -> list[str]:
    """The published tax rating shares the built-in target sets hold (year and document),
    and the run's simulated shares of the same grades beside them (the summary metrics the
    calibration compares; in a replicate set with their across-seed intervals)."""
    from xinyong.calibration.targets import builtin_target_sets, load_targets

    published, simulated = [], {}
    per_seed = summary.get("per_seed") or {}
    for name in builtin_target_sets():
        if not name.startswith("tax-rating"):
            continue
        shares, source = [], None
        for t in load_targets(name):
            values = [summary.get(metric) for metric in t.metric]
            if not all(isinstance(v, int | float) for v in values):
                continue
            grades = "+".join(metric.rsplit(".", 1)[-1] for metric in t.metric)
            shares.append(f"{grades} {pct(t.value)}")
            source, year = t.source, t.year
            simulated[grades] = pct(sum(values))
            seeds = [per_seed.get(metric) or [None] for metric in t.metric]
            if None not in (v for vs in seeds for v in vs):  # a replicate set: its t interval
                sums = [sum(v) for v in zip(*seeds, strict=True)]
                low, high = stats.clip(*stats.mean_interval(sums)[1:], 0.0, 1.0)
                simulated[grades] += f" ({pct(low)} to {pct(high)} across seeds)"
        if source is not None:
            published.append(
                f"{', '.join(shares)} in the {year} rating ({text(source.publisher)}, "
                f"\u201c{text(source.document)}\u201d)"
            )
    if not published:
        return []
    return [
        "Published tax rating shares: "
        + "; ".join(published)
        + ". Simulated at the end of the run: "
        + ", ".join(f"{g} {v}" for g, v in simulated.items())
        + "."
    ]


def _section(page: Any, doc: dict) -> dict | None:
    """The report's Companies section: its findings, charts and the person lists' table."""
    # Plotly only here: a run's summary reads this module too, and needs no charts.
    import plotly.graph_objects as go

    from xinyong.audit.figures import (
        FLAG,
        GOOD,
        OK,
        PALETTE,
        alpha,
        curve_rows,
        errors,
        layout,
        legend_of,
    )

    co, metrics = doc.get("company"), doc.get("metrics") or {}
    if not co:
        return None
    k = max(1, int(doc.get("replicates") or 1))
    seed = f" per run over {k} seeds" if k > 1 else ""
    figs = []
    rows = _from_metrics(metrics, co.get("wrongly_listed") or [], WRONGFUL_KEYS)
    sizes = co.get("sizes") or []
    lists = [
        lst
        for lst in co.get("lists") or []
        if any(r.get("list") == lst and r.get("ever_listed") for r in rows)
    ]
    if rows and lists:
        traces = []
        for i, size in enumerate(sizes):
            mine = [next((r for r in rows if r["list"] == lst and r["size"] == size), {})
                    for lst in lists]  # fmt: skip
            traces.append(
                go.Bar(  # one row a list: the names never crowd at 390 px
                    y=[html.escape(lst) for lst in lists],
                    x=[r.get("ever_wrong_share") for r in mine],
                    orientation="h",
                    name=html.escape(str(size)),
                    marker={"color": PALETTE[i % len(PALETTE)]},
                    error_x=errors(mine, "ever_wrong_share", "ever_wrong_low", "ever_wrong_high"),
                    hovertext=[
                        f"{text(size)}: {count(r.get('ever_wrong'))} of "
                        f"{count(r.get('companies'))} companies ever wrongly listed{seed}"
                        for r in mine
                    ],
                    hoverinfo="text",
                )
            )

        def over(key: str, size: str, pooled: bool) -> float:
            """A size's listings over the lists (per run, or pooled over the seeds)."""
            mine = [r for r in rows if r["size"] == size]
            got = [r.get(f"{key}_total", r.get(key)) if pooled else r.get(key) for r in mine]
            return sum(x or 0 for x in got) if key == "ever_wrong" else (got or [0])[0] or 0

        by_size = {size: over("ever_wrong", size, False) for size in sizes}
        n_size = {size: over("companies", size, False) for size in sizes}
        # Surely the highest: read on the counts seen, over all the seeds.
        seen = {size: (over("ever_wrong", size, True), over("companies", size, True))
                for size in sizes}  # fmt: skip
        worst = _ahead({s: (min(k1, n), n) for s, (k1, n) in seen.items()})
        heading = "Companies ever wrongly listed by size" + seed
        if worst is not None:
            heading = (
                f"{worst} firms are the most often wrongly listed: {count(by_size[worst])} "
                f"listings of {count(n_size[worst])} {worst} firms{seed}"
            )
        lay = layout(
            heading,
            100 + 14 * len(lists) * (len(sizes) + 1),
            legend=legend_of(traces),
            legend_rows=len(sizes),  # beside the lists' names: one a row on a phone
            barmode="group",
            yaxis={"title": {"text": "company list"}, "autorange": "reversed"},
            xaxis={
                "title": {"text": "share of the size class ever wrongly on it"},
                "tickformat": ".1%",
                "rangemode": "tozero",
            },
        )
        figs.append(page.figure("company-wrongly-listed", traces, lay, rows))
    ratings = _from_metrics(metrics, co.get("ratings") or [], RATING_KEYS)
    if ratings:
        traces = []
        for world in ("recorded", "shadow"):
            for j, grade in enumerate(("a", "d")):
                mine = [r for r in ratings if r.get("world") == world]
                traces.append(
                    go.Bar(
                        y=[f"{text(r.get('size'))}, year {num(r.get('year'))}" for r in mine],
                        x=[r.get(f"{grade}_share") for r in mine],
                        orientation="h",
                        name=f"rated {grade.upper()} ({world})",
                        marker={
                            "color": (GOOD, FLAG)[j],
                            "opacity": 1.0 if world == "recorded" else 0.45,
                        },
                        error_x=errors(mine, f"{grade}_share", f"{grade}_low", f"{grade}_high"),
                        hovertext=[
                            f"{text(r.get('size'))}, year {num(r.get('year'))} ({world}): "
                            f"{count(r.get(grade))} of {count(r.get('rated'))} rated "
                            f"{grade.upper()}{seed}"
                            for r in mine
                        ],
                        hoverinfo="text",
                    )
                )
        rec = [r for r in ratings if r.get("world") == "recorded" and r.get("rated")]
        heading = "Share rated A and D by size and tax year" + seed
        if rec:
            last = max(r["year"] for r in rec)
            mine = {r["size"]: r for r in rec if r["year"] == last}
            top = _ahead(
                {
                    size: (r.get("a_total", r.get("a")) or 0, r.get("rated_total", r["rated"]))
                    for size, r in mine.items()
                }
            )
            if top is not None:
                heading = (
                    f"In tax year {last}, {top} firms are the most often rated A "
                    f"({count(mine[top].get('a'))} of {count(mine[top].get('rated'))}){seed}"
                )
        groups = len(ratings) // 2  # a row per size and year, recorded and shadow side by side
        lay = layout(
            heading,
            100 + 10 * groups * 5,
            legend=legend_of(traces),
            legend_rows=len(traces),
            barmode="group",
            yaxis={"title": {"text": "size class, tax year"}, "autorange": "reversed"},
            xaxis={
                "title": {"text": "share of the rated companies"},
                "tickformat": ".0%",
                "rangemode": "tozero",
            },
        )
        figs.append(page.figure("company-ratings", traces, lay, ratings))
    curve = (co.get("survival") or {}).get("company_blacklist")
    if curve:
        t = curve.get("t") or []
        traces = [
            go.Scatter(
                x=t,
                y=curve.get(bound) or [],
                line={"shape": "hv", "width": 0, "color": OK},
                fill="tonexty" if bound == "low" else None,
                fillcolor=alpha(OK, 0.15),
                showlegend=False,
                hoverinfo="skip",
            )
            for bound in ("high", "low")
        ]
        traces.append(
            go.Scatter(
                x=t,
                y=curve.get("s") or [],
                name="company_blacklist",
                line={"shape": "hv", "width": 2, "color": OK},
            )
        )
        median = fmt.row(metrics, "company.median_stay_days.company_blacklist").get("value")
        heading = (
            f"company_blacklist: half of the listings last {num(median)} days or more{seed}"
            if median is not None
            else "company_blacklist: more than half of the listings are still running at the end"
        ) + (f" (curve: mean of {k} seeds)" if k > 1 else "")
        lay = layout(
            heading,
            380,
            xaxis={"title": {"text": "days since listing"}, "rangemode": "tozero"},
            yaxis={
                "title": {"text": "share of spells still listed"},
                "tickformat": ".0%",
                "range": [0, 1.03],
            },
        )
        figs.append(page.figure("company-survival", traces, lay, curve_rows(curve)))
    return {
        "findings": company_findings(doc),
        "figures": figs,
        "persons": [_person_row(metrics, p) for p in co.get("persons") or []],
        "seeds": k,
    }


# A table row's fields and the metric each is read from: (metric name, {field: metric key}).
WRONGFUL_KEYS = (
    (
        "company.wrongly_listed_share_by_size.{list}.{size}",
        {"wrong": "count", "wrong_share": "value", "wrong_low": "low", "wrong_high": "high",
         "companies": "of"},
    ),
    (
        "company.ever_wrongly_listed_share_by_size.{list}.{size}",
        {"ever_wrong": "count", "ever_wrong_share": "value", "ever_wrong_low": "low",
         "ever_wrong_high": "high"},
    ),
)  # fmt: skip
RATING_KEYS = tuple(
    (
        f"company.rated_{g}_share.{{world}}.{{year}}.{{size}}",
        {g: "count", f"{g}_share": "value", f"{g}_low": "low", f"{g}_high": "high", "rated": "of"},
    )
    for g in ("a", "d")
)


def _from_metrics(metrics: dict, rows: list[dict], keys: tuple) -> list[dict]:
    """The section's table rows (its first seed's in a replicate set) with their numbers read
    from the metrics: per run over the seeds, with across-seed intervals, and each count's
    total over the seeds as FIELD_total; in one run the same numbers as the rows'."""
    out = []
    for r in rows:
        mine = dict(r)
        for name, fields in keys:
            got = fmt.row(metrics, name.format(**r))
            for field, key in fields.items():
                if key in got:
                    mine[field] = got[key]
                if f"{key}_total" in got:
                    mine[f"{field}_total"] = got[f"{key}_total"]
        out.append(mine)
    return out


def _person_row(m: dict, p: dict) -> dict:
    """A person list's table row from the metrics: in a replicate set, means per run over its
    seeds (the section's own rows are its first seed's)."""
    lst = p.get("list")

    def got(name: str, key: str = "count") -> Any:
        return fmt.row(m, f"company.{name}").get(key)

    return {
        **p,
        "legal_representatives": got("legal_representatives", "value"),
        "listed": got(f"person_listed.{lst}"),
        "wrong": got(f"person_wrongly_listed_of_listed.{lst}"),
        "ever_listed": got(f"person_ever_listed.{lst}"),
        "ever_wrong": got(f"person_ever_wrongly_listed_of_ever_listed.{lst}"),
        "wrong_person_days": got(f"person_wrongly_listed_days.{lst}", "value"),
    }


def _ahead(counts: dict[str, tuple[int, int]]) -> str | None:
    """The class whose share (k of n) is surely the highest: at least MIN_COUNT cases and a
    Wilson interval wholly above every other class's; None when no class is."""
    bounds = {c: stats.wilson(k, n) for c, (k, n) in counts.items() if n}
    for c, (_, low, _) in bounds.items():
        others = [high for o, (_, _, high) in bounds.items() if o != c]
        if counts[c][0] >= MIN_COUNT and others and all(low > high for high in others):
            return c
    return None


def _headline(doc: dict) -> list[str]:
    """The findings that open the report: the largest wrongful listing, the lists no company
    can reach within the run, and the published rating shares beside the simulated ones."""
    found = company_findings(doc)
    co = doc.get("company") or {}
    unreachable = _unreachable(co, (doc.get("run") or {}).get("days"))
    return found[:1] + unreachable + published_ratings(doc.get("run") or {})


def _summary(con: duckdb.DuckDBPyConnection, meta: dict[str, Any], days: int, adults: int) -> dict:
    return company_metrics(con, meta["companies"], days, adults)


AUDIT = ModuleAudit(
    package="xinyong.companies",
    applies=lambda meta: "companies" in meta,
    compute=company_audit,
    metrics=METRICS,
    summary=_summary,
    summary_meanings=SUMMARY_MEANINGS,
    section=Section("companies", "company_section.html", _section),
    headline=_headline,
    explainers=(COMPANY_EXPLAINER,),
)
