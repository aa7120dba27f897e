"""Audit metrics over one run: wrongful listing, disparity, lock-in, spillover,
proportionality, collateral, redress and the effect on behaviour.

Every metric is a row {value, low, high, meaning, maps_to}: the value, its 95% interval where
one is defined, one line on what it means, and the legal test or toolkit convention it maps to.
"""

from __future__ import annotations

from typing import Any

import duckdb

from xinyong.audit import stats
from xinyong.scenario import Scenario

FOUR_FIFTHS = (0.8, 1.25)
MIN_COUNT = 10  # people behind each side of a disparity before it may be flagged
MINOR_GRAVITY = 2  # gravity 1-2: "minor" behaviour for the proportionality test

# Kinds of interval, stated on every metric row ("interval") and every figure.
WITHIN_RUN = "within-run"  # from one run (Wilson, Katz, Greenwood, Poisson): no run-to-run
ACROSS_SEEDS = "across-seeds"  # Student t over the means of K seeds: includes run-to-run
PAIRED_SEEDS = "paired-seeds"  # Student t over per-seed differences of a reform (compare)
NO_INTERVAL = "none"
INTERVAL_KINDS = {
    WITHIN_RUN: "95% interval from within one run: it ignores run-to-run variation",
    ACROSS_SEEDS: "95% Student t interval across seeds: includes run-to-run variation",
    PAIRED_SEEDS: "95% Student t interval of per-seed differences (paired by seed)",
    NO_INTERVAL: "no interval",
}

ART_5_C_I = "EU AI Act Art. 5(1)(c)(i): detrimental treatment in unrelated social contexts"
ART_5_C_II = "EU AI Act Art. 5(1)(c)(ii): treatment disproportionate to the behaviour's gravity"
GDPR_22 = "GDPR Art. 22: right to contest solely automated decisions"
FOUR_FIFTHS_RULE = "four-fifths rule (ratio within [0.8, 1.25] against the reference group)"
AEQUITAS = "Aequitas/Fairlearn: group rates as ratio and difference to a named reference"
FDR = "Aequitas: false discovery rate (share of those flagged who should not be)"
EFFECT = "necessity test: does the scheme change behaviour at all (EU Charter Art. 52(1))"
SPEECH = "chilling effect on expression (EU Charter Art. 11)"
COUNT = "count (context)"


def metric(
    value: Any,
    low: Any = None,
    high: Any = None,
    *,
    meaning: str,
    maps_to: str = "",
    count: int | None = None,
    of: int | None = None,
) -> dict:
    """A metric row; `count` people (or records) out of `of` where the value is a share."""
    row = {"value": value, "low": low, "high": high, "meaning": meaning, "maps_to": maps_to}
    row["interval"] = NO_INTERVAL if low is None and high is None else WITHIN_RUN
    if count is not None:
        row["count"], row["of"] = count, of
    return row


def fraction(k: int, n: int, *, meaning: str, maps_to: str = "") -> dict:
    """k of n as a share with its Wilson interval, keeping both counts."""
    return metric(*stats.wilson(k, n), meaning=meaning, maps_to=maps_to, count=k, of=n)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    rel = con.sql(sql)
    cols = rel.columns
    return [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    return con.sql(sql).fetchall()[0][0]


def _quote(names: list[str]) -> str:
    return ", ".join("'" + n.replace("'", "''") + "'" for n in names) or "''"


def audit_metrics(
    con: duckdb.DuckDBPyConnection,
    scenario: Scenario,
    meta: dict[str, Any],
    baseline: duckdb.DuckDBPyConnection | None = None,
) -> dict[str, Any]:
    """All audit metrics of one run. `baseline` is the same world with the scheme off."""
    T = scenario.days
    out: dict[str, Any] = {
        "metrics": {},
        "disparity": [],
        "survival": {},
        "spillover": {},
        "channels": [],
        "behaviour": [],
        "proportionality": [],
    }
    m = out["metrics"]
    ref_group = scenario.audit.reference_group
    adults = _one(con, "SELECT count(*) FROM persons")
    groups = {
        r["group"]: r["n"]
        for r in _rows(con, 'SELECT "group", count(*) AS n FROM persons GROUP BY ALL')
    }
    sanction_lists = [
        name
        for name, cons in meta["consequences"].items()
        if any(c["kind"] == "sanction" for c in cons)
    ]
    out["sanction_lists"] = sanction_lists

    # Wrongful listing (shadow truth) per list, overall and by group: at T and over the run.
    ever = _ever_listed(con, T)
    for lst in meta["lists"]:
        on, wrong = f'"on.{lst}"', f'("on.{lst}" AND NOT "shadow_on.{lst}")'
        by = {
            r["group"]: r
            for r in _rows(
                con,
                f"""
            SELECT "group", count(*) FILTER (WHERE {wrong}) AS wrong,
                   count(*) FILTER (WHERE {on}) AS listed FROM persons GROUP BY ALL""",
            )
        }
        k = sum(r["wrong"] for r in by.values())
        listed = sum(r["listed"] for r in by.values())
        kind = "an undeserved sanction" if lst in sanction_lists else "an undeserved privilege"
        m[f"list_share.{lst}"] = fraction(
            listed, adults, meaning=f"adults on {lst} at T", maps_to=COUNT
        )
        m[f"wrongly_listed_share.{lst}"] = fraction(
            k,
            adults,
            maps_to=AEQUITAS,
            meaning=f"adults on {lst} at T whose correct records alone would not put them there "
            f"({kind})",
        )
        m[f"wrongly_listed_of_listed.{lst}"] = fraction(
            k,
            listed,
            meaning=f"of the adults on {lst} at T, the share listed only through wrong records",
            maps_to=FDR,
        )
        e = ever.get(lst, {})
        m[f"ever_listed_share.{lst}"] = fraction(
            sum(e.get("listed", {}).values()),
            adults,
            meaning=f"adults on {lst} on at least one day",
            maps_to=COUNT,
        )
        m[f"ever_wrongly_listed_share.{lst}"] = fraction(
            sum(e.get("wrong", {}).values()),
            adults,
            maps_to=AEQUITAS,
            meaning=f"adults wrongly on {lst} on at least one day: listed while their correct "
            f"records alone would not have listed them ({kind})",
        )
        for g in sorted(groups, reverse=True):  # minority first
            m[f"ever_wrongly_listed_share_by_group.{lst}.{g}"] = fraction(
                e.get("wrong", {}).get(g, 0),
                groups[g],
                maps_to=AEQUITAS,
                meaning=f"{g} adults wrongly on {lst} on at least one day, of all {g} adults",
            )
        m[f"wrongly_listed_person_days.{lst}"] = metric(
            e.get("wrong_days", 0),
            maps_to=ART_5_C_II if lst in sanction_lists else COUNT,
            meaning=f"person-days on {lst} that the shadow world would not have spent there "
            "(each adult's days wrongly listed, added up)",
        )
        for key, col in (("wrongly_listed_share", "wrong"), ("list_share", "listed")):
            _disparity(
                out,
                f"{key}.{lst}",
                {g: (by.get(g, {}).get(col, 0), groups.get(g, 0)) for g in groups},
                ref_group,
            )
        _disparity(
            out,
            f"ever_wrongly_listed_share.{lst}",
            {g: (e.get("wrong", {}).get(g, 0), groups.get(g, 0)) for g in groups},
            ref_group,
        )
    m["undeserved_sanction_person_days"] = metric(
        _undeserved_person_days(con, sanction_lists, T),
        maps_to=ART_5_C_II,
        meaning="person-days on which an adult was on at least one sanction list that their "
        "correct records alone would not have put them on",
    )

    # False records by channel; detection bias by group.
    neg = _quote([b for b, n in zip(meta["behaviours"], meta["negative"], strict=True) if n])
    for r in _rows(
        con,
        f"""
            SELECT channel, count(*) AS n, count(*) FILTER (WHERE truth <> 'correct') AS wrong
            FROM records WHERE behaviour IN ({neg}) GROUP BY ALL ORDER BY channel""",
    ):
        v, lo, hi = stats.wilson(r["wrong"], r["n"])
        out["channels"].append(
            {
                "channel": r["channel"],
                "records": r["n"],
                "wrong": r["wrong"],
                "share": v,
                "low": lo,
                "high": hi,
            }
        )
        m[f"false_record_share.{r['channel']}"] = fraction(
            r["wrong"],
            r["n"],
            meaning=f"negative records from {r['channel']} that are misattributed or false reports",
            maps_to=GDPR_22,
        )
    det = {
        r["group"]: r
        for r in _rows(
            con,
            f"""
        SELECT "group", sum(true_events) AS true_events, sum(records) AS records
        FROM behaviour_daily WHERE behaviour IN ({neg}) GROUP BY ALL""",
        )
    }
    for g, r in det.items():
        m[f"detection_ratio.{g}"] = metric(
            r["records"] / r["true_events"] if r["true_events"] else None,
            meaning=f"negative records against {g} adults per true negative event by them "
            "(above the detection rate means they carry others' records)",
            maps_to=AEQUITAS,
        )
    _disparity(
        out,
        "detection_ratio",
        {g: (r["records"], r["true_events"]) for g, r in det.items()},
        ref_group,
        stats.ratio_of_rates,
    )

    _lock_in(con, out, meta, T)
    if "companies" in meta:
        from xinyong.audit.company import company_audit

        company_audit(con, out, meta, T)
    _spillover_and_proportionality(con, out, scenario, meta, sanction_lists, T)
    _collateral(con, out, meta, sanction_lists, scenario)
    _redress(con, out, neg, adults)
    if baseline is not None:
        _behaviour_change(con, baseline, out, scenario, meta, sanction_lists)
    return out


def disparity_row(
    name: str,
    group: str,
    reference: str,
    value,
    ref_value,
    ratio,
    lo,
    hi,
    *,
    numerator: int | None = None,
    denominator: int | None = None,
    reference_numerator: int | None = None,
    reference_denominator: int | None = None,
    interval: str = WITHIN_RUN,
) -> dict:
    """A group against the reference: ratio and difference with the counts behind them.

    `outside_band`: the ratio lies outside the four-fifths band. `significant`: its interval
    excludes 1. `flag` (the small-number rule): outside the band, significant, and at least
    MIN_COUNT people (or records) in each side's numerator; otherwise the row is shown greyed
    with its counts (`status` says why)."""
    outside = ratio is not None and not (FOUR_FIFTHS[0] <= ratio <= FOUR_FIFTHS[1])
    significant = lo is not None and hi is not None and (lo > 1 or hi < 1)
    known = numerator is not None and reference_numerator is not None
    enough = known and min(numerator, reference_numerator) >= MIN_COUNT
    if ratio is None:
        status = "undefined"
    elif not outside:
        status = "within band"
    elif known and not enough:
        status = f"too few people: under {MIN_COUNT} in a numerator"
    elif not significant:
        status = "interval includes 1"
    else:
        status = "flagged"
    return {
        "metric": name,
        "group": group,
        "reference": reference,
        "value": value,
        "reference_value": ref_value,
        "ratio": ratio,
        "ratio_low": lo,
        "ratio_high": hi,
        "interval": NO_INTERVAL if lo is None else interval,
        "difference": None if value is None or ref_value is None else value - ref_value,
        "numerator": numerator,
        "denominator": denominator,
        "reference_numerator": reference_numerator,
        "reference_denominator": reference_denominator,
        "outside_band": outside,
        "significant": significant,
        "flag": status == "flagged",
        "status": status,
        "maps_to": FOUR_FIFTHS_RULE,
    }


def _disparity(
    out: dict,
    name: str,
    counts: dict[str, tuple[float, float]],
    reference: str,
    ratio_of=stats.ratio_of_shares,
) -> None:
    """Rows for every group against `reference`, from (count, denominator) per group."""
    if reference not in counts:
        return
    k0, n0 = counts[reference]
    for g, (k, n) in counts.items():
        if g == reference:
            continue
        ratio, lo, hi = ratio_of(k, n, k0, n0)
        out["disparity"].append(
            disparity_row(
                name,
                g,
                reference,
                k / n if n else None,
                k0 / n0 if n0 else None,
                ratio,
                lo,
                hi,
                numerator=int(k),
                denominator=int(n),
                reference_numerator=int(k0),
                reference_denominator=int(n0),
            )
        )


def _segments_sql(source: str, keys: str) -> str:
    """Cut the intervals of `source` (keys..., world, start, stop: days start .. stop-1) into
    pieces over which the number of recorded (`rec`) and shadow (`sh`) intervals is constant."""
    return f"""
        WITH src AS ({source}),
        ev AS (SELECT {keys}, start AS day, (world = 'recorded')::INT AS dr,
                      (world = 'shadow')::INT AS ds FROM src
               UNION ALL
               SELECT {keys}, stop, -(world = 'recorded')::INT, -(world = 'shadow')::INT
               FROM src),
        agg AS (SELECT {keys}, day, sum(dr) AS dr, sum(ds) AS ds FROM ev GROUP BY ALL),
        st AS (SELECT {keys}, day,
                      sum(dr) OVER (PARTITION BY {keys} ORDER BY day
                                    ROWS UNBOUNDED PRECEDING) AS rec,
                      sum(ds) OVER (PARTITION BY {keys} ORDER BY day
                                    ROWS UNBOUNDED PRECEDING) AS sh,
                      lead(day) OVER (PARTITION BY {keys} ORDER BY day) AS next
               FROM agg)
        SELECT {keys}, day AS start, next AS stop, rec, sh FROM st WHERE next > day"""


def _spells_sql(T: int, lists: list[str] | None = None) -> str:
    where = "" if lists is None else f"WHERE list IN ({_quote(lists)})"
    return f'SELECT person, list, world, start, coalesce("end", {T}) AS stop FROM spells {where}'


def _ever_listed(con, T: int) -> dict[str, dict[str, Any]]:
    """Per list: adults ever on it and adults ever wrongly on it, by group, and the
    person-days spent there wrongly (recorded world on, shadow world off)."""
    out: dict[str, dict[str, Any]] = {}
    for lst, g, n in con.sql(
        """SELECT s.list, p."group", count(DISTINCT s.person) FROM spells s
           JOIN persons p USING (person) WHERE s.world = 'recorded' GROUP BY ALL"""
    ).fetchall():
        out.setdefault(lst, {}).setdefault("listed", {})[g] = n
    seg = _segments_sql(_spells_sql(T), "person, list")
    for lst, g, n, days in con.sql(
        f"""WITH w AS (SELECT * FROM ({seg}) WHERE rec > 0 AND sh = 0)
            SELECT w.list, p."group", count(DISTINCT w.person), sum(w.stop - w.start)
            FROM w JOIN persons p USING (person) GROUP BY ALL"""
    ).fetchall():
        e = out.setdefault(lst, {})
        e.setdefault("wrong", {})[g] = n
        e["wrong_days"] = e.get("wrong_days", 0) + int(days)
    return out


def _undeserved_person_days(con, sanction_lists: list[str], T: int) -> int:
    """Person-days wrongly on at least one sanction list (a day counts once per person)."""
    if not sanction_lists:
        return 0
    seg = _segments_sql(_spells_sql(T, sanction_lists), "person, list")
    wrong = f"SELECT person, 'recorded' AS world, start, stop FROM ({seg}) WHERE rec > 0 AND sh = 0"
    union = _segments_sql(wrong, "person")
    return int(_one(con, f"SELECT coalesce(sum(stop - start), 0) FROM ({union}) WHERE rec > 0"))


def _lock_in(con, out: dict, meta: dict, T: int) -> None:
    _survival(con, out["metrics"], out["survival"], meta["lists"], T)


def _survival(
    con, m: dict, survival: dict, lists: list[str], T: int, table: str = "spells", prefix: str = ""
) -> None:
    """Kaplan-Meier curves of the recorded spells of each list in `table`, and their median,
    restricted mean, share still listed after a year and count, as metrics PREFIX...."""
    for lst in lists:
        rows = con.sql(f"""
            SELECT coalesce("end", {T}) - start, "end" IS NOT NULL FROM {table}
            WHERE list = '{lst}' AND world = 'recorded'""").fetchall()
        if not rows:
            continue
        curve = stats.kaplan_meier([r[0] for r in rows], [r[1] for r in rows])
        survival[lst] = curve
        m[f"{prefix}median_stay_days.{lst}"] = metric(
            stats.median_time(curve),
            meaning=f"median time on {lst} (Kaplan-Meier, censored at T);"
            " null when more than half are still listed",
            maps_to=ART_5_C_II,
        )
        tau = max(r[0] for r in rows)
        m[f"{prefix}mean_stay_days_restricted.{lst}"] = metric(
            stats.restricted_mean(curve, tau),
            meaning=f"restricted mean time on {lst}: the mean of min(stay, {tau} days, the "
            "longest stay seen) from the Kaplan-Meier curve; defined when the median is not",
            maps_to=ART_5_C_II,
        )
        if T > 365:
            m[f"{prefix}still_listed_after_1y.{lst}"] = metric(
                *stats.survival_at(curve, 365),
                meaning=f"share of {lst} spells lasting more than 365 days (Kaplan-Meier)",
                maps_to=ART_5_C_II,
            )
        m[f"{prefix}spells.{lst}"] = metric(
            len(rows), meaning=f"spells on {lst} (recorded world)", maps_to=COUNT
        )


def _causes_sql(meta: dict, T: int, lst: str, direct: list[str]) -> str:
    """Causal records of each recorded spell on `lst`: for record-entered lists the entering
    record of the start day; otherwise every live negative record at the start day."""
    entering = (
        f"r.behaviour IN ({_quote(direct)}) AND r.day = s.start"
        if direct
        else (
            f"r.day <= s.start AND coalesce(r.expiry_day, {T + 10**6}) > s.start AND r.points < 0"
        )
    )
    return f"""
        WITH s AS (SELECT row_number() OVER () AS spell, person, start,
                          coalesce("end", {T}) - start AS days
                   FROM spells WHERE list = '{lst}' AND world = 'recorded')
        SELECT s.spell, s.days, r.behaviour, abs(r.points) + (r.points = 0)::INT AS weight
        FROM s JOIN records r ON r.person = s.person AND {entering}"""


def _spillover_and_proportionality(con, out, scenario: Scenario, meta, sanction_lists, T) -> None:
    m = out["metrics"]
    context = {b: v.context for b, v in scenario.behaviours.items()}
    gravity = {b: v.gravity for b, v in scenario.behaviours.items() if v.gravity}
    per_behaviour_days: dict[str, float] = {}
    minor_only = severe_spells = 0
    for lst in sanction_lists:
        cons = [c for c in meta["consequences"][lst] if c["kind"] == "sanction"]
        direct = _entering_behaviours(scenario, lst)
        rows = _rows(con, _causes_sql(meta, T, lst, direct))
        spells: dict[int, dict] = {}
        for r in rows:
            sp = spells.setdefault(r["spell"], {"days": r["days"], "w": {}})
            sp["w"][r["behaviour"]] = sp["w"].get(r["behaviour"], 0) + r["weight"]
        if not spells:
            continue
        causes = sorted({context[b] for sp in spells.values() for b in sp["w"]})
        targets = sorted({c["context"] for c in cons})
        related = {c: {c, *scenario.audit.related_contexts.get(c, ())} for c in causes}
        matrix = {c: dict.fromkeys(targets, 0.0) for c in causes}
        for sp in spells.values():
            total = sum(sp["w"].values())
            for b, w in sp["w"].items():
                share = w / total
                per_behaviour_days[b] = per_behaviour_days.get(b, 0.0) + share * sp["days"] * len(
                    cons
                )
                for c in cons:
                    matrix[context[b]][c["context"]] += share * sp["days"]
            severe_spells += 1
            minor_only += all(gravity.get(b, 5) <= MINOR_GRAVITY for b in sp["w"])
        total_days = sum(sum(row.values()) for row in matrix.values())
        unrelated = sum(
            v for c, row in matrix.items() for t, v in row.items() if t not in related[c]
        )
        out["spillover"][lst] = {
            "causes": causes,
            "sanctions": targets,
            "sanction_days": [[matrix[c][t] for t in targets] for c in causes],
            "related": [[t in related[c] for t in targets] for c in causes],
        }
        m[f"spillover_share.{lst}"] = metric(
            unrelated / total_days if total_days else None,
            maps_to=ART_5_C_I,
            meaning=f"sanction-days of {lst} imposed in a context unrelated to that of the records "
            "that caused the listing (scenario audit.related_contexts)",
        )
    counts = {
        r["behaviour"]: r["n"]
        for r in _rows(
            con,
            """
        SELECT behaviour, count(*) AS n FROM records WHERE points < 0 GROUP BY ALL""",
        )
    }
    xs, ys = [], []
    for b, g in sorted(gravity.items()):
        if counts.get(b):
            severity = per_behaviour_days.get(b, 0.0) / counts[b]
            out["proportionality"].append(
                {
                    "behaviour": b,
                    "gravity": g,
                    "records": counts[b],
                    "sanction_days_per_record": severity,
                }
            )
            xs.append(g)
            ys.append(severity)
    m["gravity_severity_rank_correlation"] = metric(
        stats.spearman(xs, ys),
        maps_to=ART_5_C_II,
        meaning="Spearman correlation of a behaviour's gravity with the sanction-days its records "
        "bring (near 1: proportionate ordering)",
    )
    m["minor_only_share"] = fraction(
        minor_only,
        severe_spells,
        maps_to=ART_5_C_II,
        meaning=f"sanction-list spells caused only by minor behaviour (gravity <= {MINOR_GRAVITY})",
    )


def _entering_behaviours(scenario: Scenario, lst: str) -> list[str]:
    """Behaviours whose records put a person on `lst` directly (rule effect or record entry)."""
    out = set()
    for pack in scenario.packs.values():
        for b, rule in pack.rules.items():
            if any(e.list == lst for e in rule.effects):
                out.add(b)
        entry = pack.lists.get(lst).entry if lst in pack.lists else None
        if entry is not None and entry.record is not None:
            out.add(entry.record)
    return sorted(out)


def _collateral(con, out, meta, sanction_lists, scenario: Scenario) -> None:
    m = out["metrics"]
    child_lists = [
        lst
        for lst in sanction_lists
        if any(
            c["target"] == "children" and c["kind"] == "sanction" for c in meta["consequences"][lst]
        )
    ]
    listed = _one(
        con,
        "SELECT count(*) FROM persons WHERE "
        + (" OR ".join(f'"on.{lst}"' for lst in child_lists) or "false"),
    )
    restricted = _one(con, "SELECT count(*) FROM children WHERE restricted")
    m["children_restricted_per_listed_adult"] = metric(
        restricted / listed if listed else None,
        meaning="children under a child-directed sanction at T per adult on such a list",
        maps_to=ART_5_C_I,
    )
    kids = _children_over_run(con, meta, scenario.days)
    n = kids["children"]
    m["children_restricted_share"] = fraction(
        restricted, n, meaning="children under a child-directed sanction at T", maps_to=ART_5_C_I
    )
    m["children_ever_restricted_share"] = fraction(
        kids["ever"],
        n,
        meaning="children under a child-directed sanction on at least one day",
        maps_to=ART_5_C_I,
    )
    m["children_wrongly_restricted_share"] = fraction(
        kids["wrong"],
        n,
        meaning="children restricted on at least one day on which, with only their parents' "
        "correct records, they would not have been",
        maps_to=ART_5_C_I,
    )
    m["children_restricted_only_by_wrong_records_share"] = fraction(
        kids["only_wrong"],
        n,
        meaning="children restricted at some point who, with only their parents' correct "
        "records, would never have been restricted",
        maps_to=ART_5_C_I,
    )
    assoc_b = meta["association_behaviour"]
    assoc_list = scenario.consequences.association_list
    penalised = _one(
        con, f"SELECT count(DISTINCT person) FROM records WHERE behaviour = '{assoc_b}'"
    )
    ever = _one(
        con,
        f"""SELECT count(DISTINCT person) FROM spells
                         WHERE list = '{assoc_list}' AND world = 'recorded'""",
    )
    m["associates_penalised_per_listed_adult"] = metric(
        penalised / ever if ever else None,
        maps_to=ART_5_C_I,
        meaning=f"adults recorded for meeting someone on {assoc_list}, per adult ever on it",
    )


def _child_lists(meta: dict) -> dict[str, list[str]]:
    """Per city, the lists whose membership puts a sanction on a member's children (the
    city's municipal pack and every national pack)."""
    by_pack = meta.get("consequences_by_pack") or {}
    cities = meta.get("city_pack") or {}
    national = [p for p in by_pack if p not in set(cities.values())]
    out = {}
    for city, pack in cities.items():
        out[city] = sorted(
            {
                lst
                for p in [pack, *national]
                for lst, cons in by_pack.get(p, {}).items()
                if any(c["target"] == "children" and c["kind"] == "sanction" for c in cons)
            }
        )
    return out


def _children_over_run(con, meta: dict, T: int) -> dict[str, int]:
    """Children ever restricted (a parent on a child-sanctioning list of their city), and
    those restricted on a day the shadow world would not restrict them, or never would."""
    pairs = [(c, lst) for c, lists in _child_lists(meta).items() for lst in lists]
    n = _one(con, "SELECT count(*) FROM children")
    if not pairs or not n:
        return {"children": n, "ever": 0, "wrong": 0, "only_wrong": 0}
    values = ", ".join(f"({_quote([c])}, {_quote([lst])})" for c, lst in pairs)
    source = f"""
        WITH cl(city, list) AS (VALUES {values}),
        parents AS (SELECT child, city, parent1 AS person FROM children
                    UNION ALL
                    SELECT child, city, parent2 FROM children WHERE parent2 IS NOT NULL)
        SELECT p.child, s.world, s.start, coalesce(s."end", {T}) AS stop
        FROM parents p JOIN cl USING (city) JOIN spells s ON s.person = p.person
             AND s.list = cl.list"""
    row = _rows(
        con,
        f"""WITH seg AS ({_segments_sql(source, "child")}),
            per AS (SELECT child, bool_or(rec > 0) AS ever, bool_or(sh > 0) AS shadow,
                           bool_or(rec > 0 AND sh = 0) AS wrong FROM seg GROUP BY child)
            SELECT count(*) FILTER (WHERE ever) AS ever,
                   count(*) FILTER (WHERE wrong) AS wrong,
                   count(*) FILTER (WHERE ever AND NOT shadow) AS only_wrong FROM per""",
    )[0]
    return {"children": n, **{k: int(v or 0) for k, v in row.items()}}


def _redress(con, out, neg: str, adults: int) -> None:
    m = out["metrics"]
    a = _rows(
        con,
        """SELECT count(*) AS filed, count(upheld) AS decided,
                             count(*) FILTER (WHERE upheld) AS upheld,
                             avg(decision_day - filed_day) FILTER (WHERE upheld) AS days
                      FROM appeals""",
    )[0]
    m["appeals_filed_per_1000"] = metric(
        a["filed"] * 1000 / adults if adults else None,
        meaning="appeals filed per 1,000 adults",
        maps_to=GDPR_22,
    )
    m["appeals_upheld_share"] = fraction(
        a["upheld"],
        a["decided"],
        maps_to=GDPR_22,
        meaning="decided appeals that were upheld",
    )
    m["days_to_remedy"] = metric(
        a["days"],
        maps_to=GDPR_22,
        meaning="mean days a wrong record stood before an upheld appeal removed it (victims "
        "appeal the day the record is made, so this is the appeal's decision delay)",
    )
    w = _rows(
        con,
        f"""
        SELECT count(*) AS wrong, count(*) FILTER (WHERE NOT coalesce(a.upheld, false)) AS left
        FROM records r LEFT JOIN appeals a USING (record_id)
        WHERE r.truth <> 'correct' AND r.behaviour IN ({neg})""",
    )[0]
    m["wrong_records_never_corrected"] = fraction(
        w["left"],
        w["wrong"],
        maps_to=GDPR_22,
        meaning="wrong negative records not removed by an upheld appeal by T",
    )


def _behaviour_change(con, baseline, out, scenario: Scenario, meta, sanction_lists) -> None:
    m = out["metrics"]
    sql = "SELECT behaviour, sum(true_events) AS n FROM behaviour_daily GROUP BY ALL"
    run = {r["behaviour"]: r["n"] for r in _rows(con, sql)}
    base = {r["behaviour"]: r["n"] for r in _rows(baseline, sql)}
    assoc = meta["association_behaviour"]
    prevented = 0
    speech_run = speech_base = 0
    for b, beh in scenario.behaviours.items():
        if b == assoc:
            continue
        r, s = run.get(b, 0), base.get(b, 0)
        out["behaviour"].append(
            {
                "behaviour": b,
                "context": beh.context,
                "sign": beh.sign,
                "events": r,
                "baseline_events": s,
                "change": (r - s) / s if s else None,
            }
        )
        if beh.sign == "negative":
            prevented += s - r
            if beh.context == "online_speech":
                speech_run, speech_base = speech_run + r, speech_base + s
    neg_run = sum(x["events"] for x in out["behaviour"] if x["sign"] == "negative")
    neg_base = sum(x["baseline_events"] for x in out["behaviour"] if x["sign"] == "negative")
    m["negative_events_change"] = _change(
        neg_run,
        neg_base,
        "change in true negative events against the same world with the scheme off",
        EFFECT,
    )
    m["online_speech_change"] = _change(
        speech_run,
        speech_base,
        "chilling effect: change in online speech events against the scheme-off world",
        SPEECH,
    )
    wrongly = _one(
        con,
        "SELECT count(*) FROM persons WHERE "
        + (
            " OR ".join(f'("on.{lst}" AND NOT "shadow_on.{lst}")' for lst in sanction_lists)
            or "false"
        ),
    )
    m["events_prevented_per_wrongly_listed"] = metric(
        prevented / wrongly if wrongly else None,
        meaning="negative events prevented (against the scheme-off world) per adult wrongly on a "
        "sanction list at T: the behaviour change bought with each innocent listed",
        maps_to="proportionality stricto sensu: benefit weighed against harm (Art. 52(1))",
    )


def _change(events: int, baseline_events: int, meaning: str, maps_to: str) -> dict:
    """Relative change of an event count against the baseline, with a Poisson interval."""
    ratio, lo, hi = stats.ratio_of_rates(events, 1, baseline_events, 1)
    return metric(
        *(None if v is None else v - 1 for v in (ratio, lo, hi)), meaning=meaning, maps_to=maps_to
    )


def baseline_scenario(scenario: Scenario) -> Scenario:
    """The same world with the scheme switched off: no deterrence, behaviour effects
    (distress) or association."""
    off = {"eta": 0.0, "behaviour_effects": False, "rho": 0.0}
    return scenario.with_(**{f"consequences.{key}": value for key, value in off.items()})
