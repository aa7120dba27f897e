"""Audit metrics over one run: wrongful listing, disparity, lock-in, spillover,
proportionality, collateral, redress and the effect on behaviour.

Every metric is a row {value, low, high, meaning, maps_to}: the value, its 95% interval where
one is defined, one line on what it means, and the legal test or toolkit convention it maps to.
"""

from __future__ import annotations

from typing import Any

import duckdb

from xinyong.audit import registry as reg
from xinyong.audit import stats
from xinyong.audit.hooks import module_audits
from xinyong.audit.queries import (
    child_lists,
    one,
    quote,
    rows,
    segments_sql,
    spells_sql,
    survival,
    wrongful_duration,
    wrongful_spells_sql,
)
from xinyong.audit.registry import (
    ACROSS_SEEDS,
    FOUR_FIFTHS,
    FOUR_FIFTHS_RULE,
    INTERVAL_KINDS,
    MIN_COUNT,
    MINOR_GRAVITY,
    NO_INTERVAL,
    PAIRED_SEEDS,
    WITHIN_RUN,
    Metric,
)
from xinyong.scenario import Scenario

__all__ = [
    "ACROSS_SEEDS",
    "FOUR_FIFTHS",
    "INTERVAL_KINDS",
    "MIN_COUNT",
    "PAIRED_SEEDS",
    "WITHIN_RUN",
    "audit_metrics",
    "baseline_scenario",
    "disparity_row",
]


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
    adults = one(con, "SELECT count(*) FROM persons")
    groups = {
        r["group"]: r["n"]
        for r in rows(con, 'SELECT "group", count(*) AS n FROM persons GROUP BY ALL')
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
            for r in rows(
                con,
                f"""
            SELECT "group", count(*) FILTER (WHERE {wrong}) AS wrong,
                   count(*) FILTER (WHERE {on}) AS listed FROM persons GROUP BY ALL""",
            )
        }
        k = sum(r["wrong"] for r in by.values())
        listed = sum(r["listed"] for r in by.values())
        kind = "an undeserved sanction" if lst in sanction_lists else "an undeserved privilege"
        e = ever.get(lst, {})
        reg.LIST_SHARE.fraction(m, listed, adults, list=lst)
        reg.WRONGLY_LISTED_SHARE.fraction(m, k, adults, list=lst, kind=kind)
        reg.WRONGLY_LISTED_OF_LISTED.fraction(m, k, listed, list=lst)
        reg.EVER_LISTED_SHARE.fraction(m, sum(e.get("listed", {}).values()), adults, list=lst)
        wrong_ever = sum(e.get("wrong", {}).values())
        reg.EVER_WRONGLY_LISTED_SHARE.fraction(m, wrong_ever, adults, list=lst, kind=kind)
        for g in sorted(groups, reverse=True):  # minority first
            reg.EVER_WRONGLY_BY_GROUP.fraction(
                m,
                e.get("wrong", {}).get(g, 0),
                groups[g],
                list=lst,
                group=g,
            )
        reg.WRONGLY_LISTED_PERSON_DAYS.put(
            m,
            e.get("wrong_days", 0),
            maps_to=reg.ART_5_C_II if lst in sanction_lists else reg.CONTEXT,
            list=lst,
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
    reg.UNDESERVED_SANCTION_PERSON_DAYS.put(m, _undeserved_person_days(con, sanction_lists, T))

    # False records by channel; detection bias by group.
    neg = quote([b for b, n in zip(meta["behaviours"], meta["negative"], strict=True) if n])
    for r in rows(
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
        reg.FALSE_RECORD_SHARE.fraction(m, r["wrong"], r["n"], channel=r["channel"])
    det = {
        r["group"]: r
        for r in rows(
            con,
            f"""
        SELECT "group", sum(true_events) AS true_events, sum(records) AS records
        FROM behaviour_daily WHERE behaviour IN ({neg}) GROUP BY ALL""",
        )
    }
    for g, r in det.items():
        reg.DETECTION_RATIO.put(
            m,
            r["records"] / r["true_events"] if r["true_events"] else None,
            group=g,
        )
    _disparity(
        out,
        "detection_ratio",
        {g: (r["records"], r["true_events"]) for g, r in det.items()},
        ref_group,
        stats.ratio_of_rates,
    )

    lock_in = (reg.MEDIAN_STAY, reg.MEAN_STAY, reg.STILL_LISTED_1Y, reg.SPELLS)
    survival(con, m, out["survival"], meta["lists"], T, "spells", lock_in)
    _wrongful_duration(con, out, meta["lists"], sorted(groups, reverse=True), T)
    for mod in module_audits():
        if mod.compute is not None and mod.applies(meta):
            mod.compute(con, out, meta, T)
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
    rates: bool = False,
) -> dict:
    """A group against the reference: ratio and difference with the counts behind them
    (`rates`: a ratio of Poisson rates, else of shares).

    `outside_band`: the ratio lies outside the four-fifths band. `excludes_one`: its interval
    excludes 1. `flag` (the small-number rule): outside the band, excluding 1, and at least
    MIN_COUNT people (or records) in each side's numerator; otherwise the row is shown greyed
    with its counts (`status` says why). `significant`: only across seeds, excluding 1 with
    enough people; one run's rows are not tested (None)."""
    outside = ratio is not None and not (FOUR_FIFTHS[0] <= ratio <= FOUR_FIFTHS[1])
    excludes_one = lo is not None and hi is not None and (lo > 1 or hi < 1)
    known = numerator is not None and reference_numerator is not None
    enough = known and min(numerator, reference_numerator) >= MIN_COUNT
    if ratio is None:
        status = "undefined"
    elif not outside:
        status = "within band"
    elif known and not enough:
        status = f"too few people: under {MIN_COUNT} in a numerator"
    elif not excludes_one:
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
        "excludes_one": excludes_one,
        "significant": excludes_one and enough if interval == ACROSS_SEEDS else None,
        "rates": rates,
        "flag": status == "flagged",
        "status": status,
        "maps_to": FOUR_FIFTHS_RULE.full,
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
                rates=ratio_of is stats.ratio_of_rates,
            )
        )


def _ever_listed(con, T: int) -> dict[str, dict[str, Any]]:
    """Per list: adults ever on it and adults ever wrongly on it, by group, and the
    person-days spent there wrongly (recorded world on, shadow world off)."""
    out: dict[str, dict[str, Any]] = {}
    for lst, g, n in con.sql(
        """SELECT s.list, p."group", count(DISTINCT s.person) FROM spells s
           JOIN persons p USING (person) WHERE s.world = 'recorded' GROUP BY ALL"""
    ).fetchall():
        out.setdefault(lst, {}).setdefault("listed", {})[g] = n
    seg = segments_sql(spells_sql(T), "person, list")
    for lst, g, n, days in con.sql(
        f"""WITH w AS (SELECT * FROM ({seg}) WHERE rec > 0 AND sh = 0)
            SELECT w.list, p."group", count(DISTINCT w.person), sum(w.stop - w.start)
            FROM w JOIN persons p USING (person) GROUP BY ALL"""
    ).fetchall():
        e = out.setdefault(lst, {})
        e.setdefault("wrong", {})[g] = n
        e["wrong_days"] = e.get("wrong_days", 0) + int(days)
    return out


def _wrongful_duration(con, out: dict, lists: list[str], groups: list[str], T: int) -> None:
    """How long wrongful spells last, per list and per list and group (Kaplan-Meier, spells
    still wrongful at T censored); the curves go to `wrongful_survival`."""
    m = out["metrics"]
    found: dict[tuple[str, str], list[tuple[int, bool]]] = {}
    for lst, g, days, still in con.sql(
        f"""WITH w AS ({wrongful_spells_sql(spells_sql(T), "person, list")})
            SELECT w.list, p."group", w.stop - w.start, w.stop >= {T}
            FROM w JOIN persons p USING (person) ORDER BY ALL"""
    ).fetchall():
        found.setdefault((lst, g), []).append((int(days), bool(still)))
    out["wrongful_survival"] = {}
    for lst in lists:
        spells = [s for g in groups for s in found.get((lst, g), [])]
        reg.WRONGFUL_SPELLS.put(m, len(spells), list=lst)
        if not spells:
            continue
        reg.WRONGFUL_OPEN.fraction(m, sum(s for _, s in spells), len(spells), list=lst)
        by = {None: spells, **{g: found[(lst, g)] for g in groups if (lst, g) in found}}
        for g, mine in by.items():
            curve, d = wrongful_duration(mine, T)
            if g is None:
                out["wrongful_survival"][lst] = curve
                specs = (reg.WRONGFUL_MEDIAN, reg.WRONGFUL_Q1, reg.WRONGFUL_Q3, reg.WRONGFUL_MEAN)
                parts: dict[str, Any] = {"list": lst}
            else:
                specs = (
                    reg.WRONGFUL_MEDIAN_BY_GROUP,
                    reg.WRONGFUL_Q1_BY_GROUP,
                    reg.WRONGFUL_Q3_BY_GROUP,
                    reg.WRONGFUL_MEAN_BY_GROUP,
                )
                parts = {"list": lst, "group": g}
            for spec, key in zip(specs, ("median", "q1", "q3", "mean"), strict=True):
                spec.put(m, d[key], tau=d["tau"], **parts)


def _undeserved_person_days(con, sanction_lists: list[str], T: int) -> int:
    """Person-days wrongly on at least one sanction list (a day counts once per person)."""
    if not sanction_lists:
        return 0
    seg = segments_sql(spells_sql(T, sanction_lists), "person, list")
    wrong = f"SELECT person, 'recorded' AS world, start, stop FROM ({seg}) WHERE rec > 0 AND sh = 0"
    union = segments_sql(wrong, "person")
    return int(one(con, f"SELECT coalesce(sum(stop - start), 0) FROM ({union}) WHERE rec > 0"))


def _causes_sql(meta: dict, T: int, lst: str, direct: list[str]) -> str:
    """Causal records of each recorded spell on `lst`: for record-entered lists the entering
    record of the start day; otherwise every live negative record at the start day."""
    entering = (
        f"r.behaviour IN ({quote(direct)}) AND r.day = s.start"
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
        causes = rows(con, _causes_sql(meta, T, lst, direct))
        spells: dict[int, dict] = {}
        for r in causes:
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
        reg.SPILLOVER_SHARE.put(m, unrelated / total_days if total_days else None, list=lst)
    counts = {
        r["behaviour"]: r["n"]
        for r in rows(
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
    reg.GRAVITY_SEVERITY.put(m, stats.spearman(xs, ys))
    reg.MINOR_ONLY_SHARE.fraction(m, minor_only, severe_spells)


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
    listed = one(
        con,
        "SELECT count(*) FROM persons WHERE "
        + (" OR ".join(f'"on.{lst}"' for lst in child_lists) or "false"),
    )
    restricted = one(con, "SELECT count(*) FROM children WHERE restricted")
    reg.CHILDREN_PER_LISTED.put(m, restricted / listed if listed else None)
    kids = _children_over_run(con, meta, scenario.days)
    n = kids["children"]
    reg.CHILDREN_RESTRICTED.fraction(m, restricted, n)
    reg.CHILDREN_EVER.fraction(m, kids["ever"], n)
    reg.CHILDREN_WRONGLY.fraction(m, kids["wrong"], n)
    reg.CHILDREN_ONLY_WRONG.fraction(m, kids["only_wrong"], n)
    assoc_b = meta["association_behaviour"]
    assoc_list = scenario.consequences.association_list
    penalised = one(
        con, f"SELECT count(DISTINCT person) FROM records WHERE behaviour = '{assoc_b}'"
    )
    ever = one(
        con,
        f"""SELECT count(DISTINCT person) FROM spells
                         WHERE list = '{assoc_list}' AND world = 'recorded'""",
    )
    reg.ASSOCIATES.put(m, penalised / ever if ever else None, list=assoc_list)


def _children_over_run(con, meta: dict, T: int) -> dict[str, int]:
    """Children ever restricted (a parent on a child-sanctioning list of their city), and
    those restricted on a day the shadow world would not restrict them, or never would."""
    pairs = [(c, lst) for c, lists in child_lists(meta).items() for lst in lists]
    n = one(con, "SELECT count(*) FROM children")
    if not pairs or not n:
        return {"children": n, "ever": 0, "wrong": 0, "only_wrong": 0}
    values = ", ".join(f"({quote([c])}, {quote([lst])})" for c, lst in pairs)
    source = f"""
        WITH cl(city, list) AS (VALUES {values}),
        parents AS (SELECT child, city, parent1 AS person FROM children
                    UNION ALL
                    SELECT child, city, parent2 FROM children WHERE parent2 IS NOT NULL)
        SELECT p.child, s.world, s.start, coalesce(s."end", {T}) AS stop
        FROM parents p JOIN cl USING (city) JOIN spells s ON s.person = p.person
             AND s.list = cl.list"""
    row = rows(
        con,
        f"""WITH seg AS ({segments_sql(source, "child")}),
            per AS (SELECT child, bool_or(rec > 0) AS ever, bool_or(sh > 0) AS shadow,
                           bool_or(rec > 0 AND sh = 0) AS wrong FROM seg GROUP BY child)
            SELECT count(*) FILTER (WHERE ever) AS ever,
                   count(*) FILTER (WHERE wrong) AS wrong,
                   count(*) FILTER (WHERE ever AND NOT shadow) AS only_wrong FROM per""",
    )[0]
    return {"children": n, **{k: int(v or 0) for k, v in row.items()}}


def _redress(con, out, neg: str, adults: int) -> None:
    m = out["metrics"]
    a = rows(
        con,
        """SELECT count(*) AS filed, count(upheld) AS decided,
                             count(*) FILTER (WHERE upheld) AS upheld,
                             avg(decision_day - filed_day) FILTER (WHERE upheld) AS days
                      FROM appeals""",
    )[0]
    reg.APPEALS_FILED.put(m, a["filed"] * 1000 / adults if adults else None)
    reg.APPEALS_UPHELD.fraction(m, a["upheld"], a["decided"])
    reg.DAYS_TO_REMEDY.put(m, a["days"])
    w = rows(
        con,
        f"""
        SELECT count(*) AS wrong, count(*) FILTER (WHERE NOT coalesce(a.upheld, false)) AS left
        FROM records r LEFT JOIN appeals a USING (record_id)
        WHERE r.truth <> 'correct' AND r.behaviour IN ({neg})""",
    )[0]
    reg.NEVER_CORRECTED.fraction(m, w["left"], w["wrong"])


def _behaviour_change(con, baseline, out, scenario: Scenario, meta, sanction_lists) -> None:
    m = out["metrics"]
    sql = "SELECT behaviour, sum(true_events) AS n FROM behaviour_daily GROUP BY ALL"
    run = {r["behaviour"]: r["n"] for r in rows(con, sql)}
    base = {r["behaviour"]: r["n"] for r in rows(baseline, sql)}
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
    _change(m, reg.NEGATIVE_EVENTS_CHANGE, neg_run, neg_base)
    _change(m, reg.SPEECH_CHANGE, speech_run, speech_base)
    wrongly = one(
        con,
        "SELECT count(*) FROM persons WHERE "
        + (
            " OR ".join(f'("on.{lst}" AND NOT "shadow_on.{lst}")' for lst in sanction_lists)
            or "false"
        ),
    )
    reg.PREVENTED_PER_WRONGLY.put(m, prevented / wrongly if wrongly else None)


def _change(m: dict, spec: Metric, events: int, baseline_events: int) -> None:
    """Relative change of an event count against the baseline, with a Poisson interval."""
    ratio, lo, hi = stats.ratio_of_rates(events, 1, baseline_events, 1)
    spec.put(m, *(None if v is None else v - 1 for v in (ratio, lo, hi)))


def baseline_scenario(scenario: Scenario) -> Scenario:
    """The same world with the scheme switched off: no deterrence, behaviour effects
    (distress) or association."""
    off = {"eta": 0.0, "behaviour_effects": False, "rho": 0.0}
    return scenario.with_(**{f"consequences.{key}": value for key, value in off.items()})
