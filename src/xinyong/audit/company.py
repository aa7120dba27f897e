"""Audit metrics over a run's companies (docs/model.md, "Audit metrics", "Companies").

Wrongful company listing by size class, the tax rating's disparity by size, the lock-in of the
company lists (Kaplan-Meier), the adults restricted because of a company they represent, and
the spillover of those restrictions onto their children. Every metric row goes into
`metrics` under `company.`; the tables behind them (for the report) go into `company`.
Shares keep their counts (`count` of `of`); a zero denominator gives null.
"""

from __future__ import annotations

from typing import Any

from xinyong.audit import metrics as am
from xinyong.audit.metrics import (
    AEQUITAS,
    ART_5_C_I,
    ART_5_C_II,
    COUNT,
    FDR,
    fraction,
    metric,
)

SPILLOVER_LIST = "consumption_restricted"  # the person list with a child-directed sanction
LOCK_IN_LIST = "company_blacklist"


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
        "wrongly_listed": [],
        "ratings": [],
        "survival": {},
        "persons": [],
        "children": {},
    }
    out["company"] = section
    _wrongly_listed(con, m, section, cm, T)
    _ratings(con, m, section, cm)
    am._survival(
        con, m, section["survival"], cm["lists"], T, table="company_spells", prefix="company."
    )
    _persons(con, m, section, cm, T)
    _children(con, m, section, meta, T)


def _wrongly_listed(con, m: dict, section: dict, cm: dict, T: int) -> None:
    """Per company list and size: companies on it at T, wrongly on it at T (recorded on,
    shadow off), ever on it and ever wrongly on it (from company_spells), with company-days."""
    sizes = {
        r["size"]: r["n"]
        for r in am._rows(con, "SELECT size, count(*) AS n FROM companies GROUP BY ALL")
    }
    total = sum(sizes.values())
    seg = am._segments_sql(_company_spells_sql(T), "company, list")
    ever = {
        (r["list"], r["size"]): r
        for r in am._rows(
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
            for r in am._rows(
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
        m[f"company.list_share.{lst}"] = fraction(
            listed_all, total, meaning=f"companies on {lst} at T", maps_to=COUNT
        )
        m[f"company.wrongly_listed_share.{lst}"] = fraction(
            wrong_all,
            total,
            maps_to=AEQUITAS,
            meaning=f"companies on {lst} at T whose correct records alone would not put them "
            f"there ({what})",
        )
        m[f"company.wrongly_listed_of_listed.{lst}"] = fraction(
            wrong_all,
            listed_all,
            maps_to=FDR,
            meaning=f"of the companies on {lst} at T, the share listed only through wrong records",
        )
        ever_wrong_all = sum(ever.get((lst, s), {}).get("wrong", 0) for s in sizes)
        m[f"company.ever_wrongly_listed_share.{lst}"] = fraction(
            ever_wrong_all,
            total,
            maps_to=AEQUITAS,
            meaning=f"companies wrongly on {lst} on at least one day ({what})",
        )
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
                _, lo, hi = am.stats.wilson(row[key], n)
                row[f"{key}_share"] = row[key] / n if n else None
                row[f"{key}_low"], row[f"{key}_high"] = lo, hi
            section["wrongly_listed"].append(row)
            m[f"company.wrongly_listed_share_by_size.{lst}.{size}"] = fraction(
                row["wrong"],
                n,
                maps_to=AEQUITAS,
                meaning=f"{size} companies wrongly on {lst} at T, of all {size} companies",
            )
            m[f"company.ever_wrongly_listed_share_by_size.{lst}.{size}"] = fraction(
                row["ever_wrong"],
                n,
                maps_to=AEQUITAS,
                meaning=f"{size} companies wrongly on {lst} on at least one day, of all {size} "
                "companies (micro firms draw more same-name misattributions: the "
                "market_regulator channel's size weights)",
            )


def _ratings(con, m: dict, section: dict, cm: dict) -> None:
    """Share rated A and share rated D per size, year and world, of the companies rated."""
    rows = am._rows(
        con,
        """SELECT r.year, r.world, c.size, count(*) FILTER (WHERE r.grade <> 'unrated') AS rated,
                  count(*) FILTER (WHERE r.grade = 'A') AS a,
                  count(*) FILTER (WHERE r.grade = 'D') AS d
           FROM company_ratings r JOIN companies c USING (company)
           GROUP BY ALL ORDER BY r.year, r.world""",
    )
    got = {(r["year"], r["world"], r["size"]): r for r in rows}
    years = sorted({r["year"] for r in rows})
    for year in years:
        for world in ("recorded", "shadow"):
            for size in cm["sizes"]:
                r = got.get((year, world, size), {"rated": 0, "a": 0, "d": 0})
                n = int(r["rated"])
                entry = {"year": year, "world": world, "size": size, "rated": n}
                for grade, key in (("A", "a"), ("D", "d")):
                    k = int(r[key])
                    share, lo, hi = am.stats.wilson(k, n)
                    entry |= {key: k, f"{key}_share": share, f"{key}_low": lo, f"{key}_high": hi}
                    m[f"company.rated_{key}_share.{world}.{year}.{size}"] = fraction(
                        k,
                        n,
                        maps_to=AEQUITAS,
                        meaning=f"{size} companies rated {grade} in tax year {year} ({world} "
                        f"world), of the {size} companies rated",
                    )
                section["ratings"].append(entry)


def _persons(con, m: dict, section: dict, cm: dict, T: int) -> None:
    """Adults on a person list because a company they represent is on the company list it
    follows (companies.legal_rep): at T and ever, and how many of them wrongly."""
    reps = am._one(con, "SELECT count(DISTINCT legal_rep) FROM companies")
    m["company.legal_representatives"] = metric(
        reps, meaning="adults who represent at least one company", maps_to=COUNT
    )
    for plist, clist in cm.get("person_lists", {}).items():
        on, wrong = f'"on.{plist}"', f'("on.{plist}" AND NOT "shadow_on.{plist}")'
        now = am._rows(
            con,
            f"""SELECT count(*) FILTER (WHERE {on}) AS listed,
                       count(*) FILTER (WHERE {wrong}) AS wrong FROM persons""",
        )[0]
        ever = am._one(
            con,
            f"SELECT count(DISTINCT person) FROM spells WHERE list = '{plist}' "
            "AND world = 'recorded'",
        )
        seg = am._segments_sql(am._spells_sql(T, [plist]), "person, list")
        ever_wrong, days = am._rows(
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
        because = f"because a company they represent is on {clist}"
        m[f"company.person_listed.{plist}"] = fraction(
            row["listed"],
            reps,
            maps_to=ART_5_C_I,
            meaning=f"legal representatives on {plist} at T {because}",
        )
        m[f"company.person_wrongly_listed_of_listed.{plist}"] = fraction(
            row["wrong"],
            row["listed"],
            maps_to=FDR,
            meaning=f"of the adults on {plist} at T, those whose companies' correct records "
            "alone would not put them there",
        )
        m[f"company.person_ever_listed.{plist}"] = fraction(
            row["ever_listed"],
            reps,
            maps_to=ART_5_C_I,
            meaning=f"legal representatives on {plist} on at least one day {because}",
        )
        m[f"company.person_ever_wrongly_listed_of_ever_listed.{plist}"] = fraction(
            row["ever_wrong"],
            row["ever_listed"],
            maps_to=FDR,
            meaning=f"of the adults ever on {plist}, those wrongly on it on at least one day "
            "(their companies' correct records alone would not have listed them)",
        )
        m[f"company.person_wrongly_listed_days.{plist}"] = metric(
            row["wrong_person_days"],
            maps_to=ART_5_C_II,
            meaning=f"person-days on {plist} that the shadow world would not have spent there",
        )


def _children(con, m: dict, section: dict, meta: dict, T: int) -> None:
    """Children restricted only through a parent on consumption_restricted (no parent on
    another child-sanctioning list of their city at the same time): at T and ever."""
    child_lists = am._child_lists(meta)
    n = am._one(con, "SELECT count(*) FROM children")
    pairs = [(c, lst) for c, lists in child_lists.items() for lst in lists if lst != SPILLOVER_LIST]
    cities = [c for c, lists in child_lists.items() if SPILLOVER_LIST in lists]
    if not cities:
        return
    parents = """parents AS (SELECT child, city, parent1 AS person FROM children
                             UNION ALL
                             SELECT child, city, parent2 FROM children
                             WHERE parent2 IS NOT NULL)"""
    other_on = (
        " OR ".join(f'(p.city = {am._quote([c])} AND q."on.{lst}")' for c, lst in pairs) or "false"
    )
    now = am._rows(
        con,
        f"""WITH {parents},
            per AS (SELECT p.child, bool_or(q."on.{SPILLOVER_LIST}") AS cr,
                           bool_or({other_on}) AS other,
                           bool_or(q."on.{SPILLOVER_LIST}" AND NOT q."shadow_on.{SPILLOVER_LIST}")
                           AS cr_wrong,
                           bool_or(q."shadow_on.{SPILLOVER_LIST}") AS cr_shadow
                    FROM parents p JOIN persons q USING (person)
                    WHERE p.city IN ({am._quote(cities)}) GROUP BY p.child)
            SELECT count(*) FILTER (WHERE cr) AS cr,
                   count(*) FILTER (WHERE cr AND NOT other) AS only,
                   count(*) FILTER (WHERE cr AND NOT other AND NOT cr_shadow) AS only_wrong
            FROM per""",
    )[0]
    # Ever: per child, the days a parent is on consumption_restricted ('recorded' below)
    # while no parent is on another child-sanctioning list ('shadow' below).
    values = ", ".join(f"({am._quote([c])}, {am._quote([lst])})" for c, lst in pairs)
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
        WHERE s.world = 'recorded' AND p.city IN ({am._quote(cities)})
        {others}"""
    ever = am._rows(
        con,
        f"""WITH seg AS ({am._segments_sql(source, "child")})
            SELECT count(DISTINCT child) FILTER (WHERE rec > 0) AS ever,
                   count(DISTINCT child) FILTER (WHERE rec > 0 AND sh = 0) AS only,
                   coalesce(sum(stop - start) FILTER (WHERE rec > 0 AND sh = 0), 0) AS days
            FROM seg""",
    )[0]
    section["children"] = {
        "children": n,
        "restricted_at_T": am._one(con, "SELECT count(*) FROM children WHERE restricted"),
        "parent_restricted_at_T": int(now["cr"] or 0),
        "only_at_T": int(now["only"] or 0),
        "only_wrong_at_T": int(now["only_wrong"] or 0),
        "parent_ever_restricted": int(ever["ever"] or 0),
        "only_ever": int(ever["only"] or 0),
        "only_child_days": int(ever["days"] or 0),
    }
    c = section["children"]
    m["company.children_parent_restricted"] = fraction(
        c["parent_restricted_at_T"],
        n,
        maps_to=ART_5_C_I,
        meaning=f"children with a parent on {SPILLOVER_LIST} at T (a parent's company is a "
        "corporate defaulter)",
    )
    m["company.children_restricted_only_by_company"] = fraction(
        c["only_at_T"],
        n,
        maps_to=ART_5_C_I,
        meaning=f"children restricted at T only through a parent on {SPILLOVER_LIST} (no "
        "parent on another child-sanctioning list): a sanction for a company's debts",
    )
    m["company.children_restricted_only_by_company_wrongly"] = fraction(
        c["only_wrong_at_T"],
        c["only_at_T"],
        maps_to=ART_5_C_I,
        meaning=f"of those children, the ones whose parents the shadow world has off "
        f"{SPILLOVER_LIST}",
    )
    m["company.children_ever_restricted_only_by_company"] = fraction(
        c["only_ever"],
        n,
        maps_to=ART_5_C_I,
        meaning=f"children restricted on at least one day only through a parent on "
        f"{SPILLOVER_LIST}",
    )
    m["company.children_restricted_only_by_company_days"] = metric(
        c["only_child_days"],
        maps_to=ART_5_C_I,
        meaning=f"child-days restricted only through a parent on {SPILLOVER_LIST}",
    )
