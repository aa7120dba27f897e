"""One adult's story and timeline, read back from a run directory (`xinyong explain RUN ID`).

The story comes first: a one-line verdict (for instance "wrongly on the blacklist since day
24 because of a misattributed drug_use record (camera) that belonged to adult 84656; never
appealed"), then the records that mattered (negative, wrong or list-changing ones), with the
routine positive records summarised in one line. Causes are found through the shadow world:
a listing the shadow world does not share is blamed on the wrong records live when it began.
`--all` prints the full listing below; `--html` writes a timeline page.

For journalists and auditors, the full listing has: every record against the person (and
records that blamed others for what they did), the score path rebuilt from the records
(points on their day, given back at expiry or on an upheld appeal), grade changes, list spells
with why each began and ended, the sanctions and privileges those spells switched on for the
person and their children, and the appeals they filed. Everything comes from the run's tables
and its resolved scenario.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
from rich import box
from rich.console import Console
from rich.table import Table

from xinyong.audit.registry import EntityExplainer, adult_lines
from xinyong.errors import XinyongError
from xinyong.scenario import Scenario, validate_scenario
from xinyong.scheme.schema import ListDef, Pack
from xinyong.store import RunDir
from xinyong.words import label, listing, plural
from xinyong.yamlio import load_yaml

Row = dict[str, Any]

RECORD_SQL = """
SELECT r.record_id, r.day, r.person, r.behaviour, r.channel, r.truth, r.actor, r.points,
       r.shadow_points, r.expiry_day, r.appealed, a.filed_day, a.decision_day, a.upheld
FROM records r LEFT JOIN appeals a USING (record_id)
WHERE r.person = $p OR r.actor = $p
ORDER BY r.day, r.record_id
"""


@dataclass(frozen=True)
class CityRules:
    """What governs one city: its municipal pack (points, tiers, caps) and its lists."""

    pack: Pack
    lists: dict[str, ListDef]
    direct: dict[str, dict[str, int | None]]  # behaviour -> list -> days (None: until left)

    @classmethod
    def of(cls, sc: Scenario, city: str) -> CityRules:
        municipal = sc.packs[next(c.pack for c in sc.cities if c.name == city)]
        lists: dict[str, ListDef] = {}
        direct: dict[str, dict[str, int | None]] = {}
        for pack in [municipal, *sc.national()]:
            for b, rule in pack.rules.items():
                for eff in rule.effects:
                    if eff.list is not None:
                        direct.setdefault(b, {})[eff.list] = eff.days
            for name, lst in pack.lists.items():
                lists[name] = lst
                if lst.entry is not None and lst.entry.record is not None:
                    direct.setdefault(lst.entry.record, {})[name] = lst.entry.days
        return cls(municipal, lists, direct)

    def tier_of(self, score: int) -> int:
        """Index of the grade (best first) a score reaches."""
        for k, tier in enumerate(self.pack.tiers):
            if tier.min_score is None or score >= tier.min_score:
                return k
        return len(self.pack.tiers) - 1

    def cap_of(self, behaviour: str) -> int | None:
        """Grade index a live record of this behaviour caps the tier at (None: no cap)."""
        rule = self.pack.rules.get(behaviour)
        if rule is None or not rule.expiry_days:
            return None
        caps = [self.pack.tier_names.index(e.tier_at_most) for e in rule.effects if e.tier_at_most]
        return max(caps) if caps else None


@dataclass
class Change:
    """One day's event that moved a score or a tier cap."""

    day: int
    record: Row
    event: str  # recorded, expired, appeal upheld, cap on, cap off
    points: int = 0
    shadow_points: int = 0
    cap: int | None = None  # grade index, for cap events
    world: int = 0  # cap events only: 0 recorded, 1 shadow

    def text(self) -> str:
        rec = self.record
        what = f"record {rec['record_id']} ({rec['behaviour']}, {rec['truth']})"
        return {
            "recorded": what,
            "expired": f"expiry of {what}",
            "appeal upheld": f"upheld appeal of {what}",
            "cap on": f"tier cap from {what}",
            "cap off": f"end of the tier cap from {what}",
            "bonus": "clean-period bonus",
            "bonus expired": "expiry of a clean-period bonus",
        }[self.event]


# The order of a day's changes (docs/model.md): expiries and the end of caps at step 1, the
# clean-period bonus after them, upheld appeals at step 2, the day's records at step 7.
PHASE = {"expired": 0, "bonus expired": 0, "cap off": 0, "bonus": 1, "appeal upheld": 2,
         "recorded": 3, "cap on": 3}  # fmt: skip
BONUS = {"record_id": -1, "behaviour": "clean-period bonus", "truth": "-"}  # not a record


class Timeline:
    """Score and grade of both worlds after each day on which either could change."""

    def __init__(self, rules: CityRules, start: int, changes: list[Change]) -> None:
        self.rules, self.start, self.changes = rules, start, changes
        self.by_day: dict[int, list[Change]] = {}
        for c in changes:
            self.by_day.setdefault(c.day, []).append(c)
        self.days = sorted({0, *self.by_day})
        self.score: list[tuple[int, int]] = []
        self.tier: list[tuple[int, int]] = []
        s = [start, start]
        bounds = rules.pack.score_bounds
        lo = bounds.min if bounds is not None and bounds.min is not None else -(1 << 62)
        hi = bounds.max if bounds is not None and bounds.max is not None else 1 << 62
        caps: dict[tuple[int, int], int] = {}  # (record, world) -> capping grade, while live
        for d in self.days:
            for c in self.by_day.get(d, []):
                # As the engine: every change within the bounds, so giving back what a record
                # took may stop at the top (and the order of a day's changes matters).
                s[0] = min(max(s[0] + c.points, lo), hi)
                s[1] = min(max(s[1] + c.shadow_points, lo), hi)
                key = (c.record["record_id"], c.world)
                if c.event == "cap on" and c.cap is not None:
                    caps[key] = c.cap
                elif c.event == "cap off":
                    caps.pop(key, None)
            tiers = [rules.tier_of(s[0]), rules.tier_of(s[1])]
            for (_, w), cap in caps.items():
                tiers[w] = max(tiers[w], cap)
            self.score.append((s[0], s[1]))
            self.tier.append((tiers[0], tiers[1]))

    def at(self, day: int) -> int:
        """Index into `days` of the state after `day`."""
        return bisect_right(self.days, day) - 1

    def grade(self, day: int, world: int) -> str:
        return self.rules.pack.tier_names[self.tier[self.at(day)][world]]

    def cause(self, day: int, world: int) -> str:
        """What moved this world's score or tier cap on this day."""
        return ", ".join(
            c.text()
            for c in self.by_day.get(day, [])
            if (c.world == world if c.cap is not None else (c.points, c.shadow_points)[world])
        )


class Explainer:
    """Reads a run directory once; `person(i)` explains one adult."""

    def __init__(self, path: str | Path) -> None:
        self.run = RunDir(path)  # its damage check: meta.json and every table are there
        data, lines = load_yaml(self.run.path / "scenario.yaml")
        self.sc = validate_scenario(data, self.run.path / "scenario.yaml", lines)
        self.days = self.sc.days
        self.con = self.run.connect()
        self.rules = {c.name: CityRules.of(self.sc, c.name) for c in self.sc.cities}

    def _rows(self, sql: str, **params: int) -> list[Row]:
        try:
            rel = self.con.execute(sql, params or None)
            columns = [d[0] for d in rel.description]
            return [dict(zip(columns, row, strict=True)) for row in rel.fetchall()]
        except duckdb.Error as exc:
            raise XinyongError(str(exc).splitlines()[0], file=self.run.path) from None

    def _spells_of(
        self, table: str, member: str, ident: int
    ) -> tuple[list[Row], dict[str, list[tuple[int, int]]]]:
        """A member's spells in both worlds (by start), and its shadow spells per list as
        (start, end) pairs: the adults' `spells` or a module's spells table."""
        rows = self._rows(
            f'SELECT list, world, start, "end" FROM {table} WHERE {member} = $m '
            "ORDER BY start, list, world",
            m=ident,
        )
        shadow: dict[str, list[tuple[int, int]]] = {}
        for s in rows:
            if s["world"] == "shadow":
                shadow.setdefault(s["list"], []).append((s["start"], spell_end(s, self.days)))
        return rows, shadow

    def person(self, person: int) -> dict[str, Any]:
        """Everything `explain` shows for one adult, as one JSON-ready document."""
        found = self._rows("SELECT * FROM persons WHERE person = $p", p=person)
        if not found:
            count = self._rows("SELECT count(*) AS n FROM persons")[0]["n"]
            raise XinyongError(
                f"no adult {person} in this run (adults are 0..{count - 1})",
                file=self.run.path,
                field="person",
            )
        row = found[0]
        rules = self.rules[row["city"]]
        rows = self._rows(RECORD_SQL, p=person)
        own = [r for r in rows if r["person"] == person]
        timeline = Timeline(rules, rules.pack.start_score.value, self._changes(own, rules))
        spells = self._spells(person, own, rules, timeline)
        lists = [name for name in rules.lists if row.get(f"on.{name}")]
        return {
            "person": {
                "person": person,
                "city": row["city"],
                "group": row["group"],
                "risk": row["risk"],
                "civic": row["civic"],
                "start_score": timeline.start,
                "score": row["score"],
                "shadow_score": row["shadow_score"],
                "tier": row["tier"],
                "shadow_tier": row["shadow_tier"],
                "lists": lists,
                "shadow_lists": [n for n in rules.lists if row.get(f"shadow_on.{n}")],
                "deter": row["deter"],
                "partner": row["partner"] if row["partner"] >= 0 else None,
                "degree": row["degree"],
                "days": self.days,
            },
            "records": [_record(r) for r in own],
            "blamed_others": [_blamed(r) for r in rows if r["person"] != person],
            "score_path": _score_path(timeline),
            "grade_changes": _grade_changes(timeline),
            "spells": spells,
            "sanctions": _sanctions(spells, rules),
            "children": self._children(person, spells, rules),
            "appeals": [_appeal(r) for r in own if r["filed_day"] is not None],
            # What each module of the run says about this adult (module.Module.audit).
            "modules": adult_lines(self.con, self.run.meta(), person),
        }

    def _changes(self, own: list[Row], rules: CityRules) -> list[Change]:
        """Point changes (record, expiry, upheld appeal) and tier-cap spans, in day order."""
        out: list[Change] = []
        T = self.days
        for r in own:
            pts, shadow, expiry = r["points"], r["shadow_points"], r["expiry_day"]
            upheld_on = r["decision_day"] if r["upheld"] else None
            live_until = expiry if expiry is not None else 1 << 30
            if upheld_on is not None and upheld_on < live_until:
                out.append(Change(upheld_on, r, "appeal upheld", -pts, 0))
            out.append(Change(r["day"], r, "recorded", pts, shadow))
            if expiry is not None and expiry < T and (upheld_on is None or upheld_on >= expiry):
                out.append(Change(expiry, r, "expired", -pts, -shadow))
            cap = rules.cap_of(r["behaviour"])
            if cap is None:
                continue
            ends = [(live_until if upheld_on is None else min(live_until, upheld_on), 0)]
            if r["truth"] == "correct":
                ends.append((live_until, 1))
            for end, world in ends:
                out.append(Change(r["day"], r, "cap on", cap=cap, world=world))
                if end < T:
                    out.append(Change(end, r, "cap off", cap=cap, world=world))
        out += _bonuses(own, rules, T)
        out = [c for c in out if c.points or c.shadow_points or c.cap is not None]
        recalculation = rules.pack.recalculation
        if recalculation is not None:
            out = _published(out, recalculation.every_days, T)
        return sorted(out, key=lambda c: (c.day, PHASE[c.event], c.record["record_id"]))

    def _spells(
        self, person: int, own: list[Row], rules: CityRules, timeline: Timeline
    ) -> list[Row]:
        rows, shadow = self._spells_of("spells", "person", person)
        out = []
        for s in rows:
            world = 0 if s["world"] == "recorded" else 1
            lst = rules.lists.get(s["list"])
            end = spell_end(s, self.days)
            entering = [
                r
                for r in own
                if s["list"] in rules.direct.get(r["behaviour"], {})
                and s["start"] <= r["day"] < end
                and (world == 0 or r["truth"] == "correct")
            ]
            spell: Row = {
                "list": s["list"],
                "world": s["world"],
                "start": s["start"],
                "end": s["end"],
                "days": end - s["start"],
                "began": _began(s, world, entering, timeline),
                "ended": _ended(s, world, lst, entering, timeline),
                "records": [r["record_id"] for r in entering],
            }
            if world == 0:
                cover = shadow.get(s["list"], [])
                covered = sum(max(0, min(end, e) - max(s["start"], b)) for b, e in cover)
                spell["wrong_days"] = spell["days"] - covered
                spell["wrongly_listed"] = spell["wrong_days"] > 0
                first = first_uncovered(s["start"], end, cover)
                spell["first_wrong_day"] = first
                spell["wrong_intervals"] = uncovered(s["start"], end, cover)
                sign = 1 if lst is not None and lst.kind == "privilege" else -1
                # Still wrongly listed at the end: what keeps them there now; otherwise what
                # put them there wrongly.
                at = end - 1 if s["end"] is None and spell["wrong_days"] else first
                spell["cause"] = _cause(first, at, s["start"], own, entering, sign)
            out.append(spell)
        return out

    def _children(self, person: int, spells: list[Row], rules: CityRules) -> list[Row]:
        rows = self._rows(
            "SELECT * FROM children WHERE parent1 = $p OR parent2 = $p ORDER BY child", p=person
        )
        carried = [
            {
                "list": s["list"],
                "name": c.name,
                "context": c.context,
                "kind": rules.lists[s["list"]].kind,
                "start": s["start"],
                "end": s["end"],
                "days": s["days"],
            }
            for s in spells
            if s["world"] == "recorded" and s["list"] in rules.lists
            for c in rules.lists[s["list"]].consequences
            if c.target == "children"
        ]
        out = []
        for r in rows:
            other = r["parent2"] if r["parent1"] == person else r["parent1"]
            out.append(
                {
                    "child": r["child"],
                    "group": r["group"],
                    "other_parent": other,
                    "restricted": r["restricted"],
                    "privileged": r["privileged"],
                    "consequences": carried,
                    "anyway": None
                    if other is None or other < 0
                    else self._anyway(spells, other, rules),
                }
            )
        return out

    def _anyway(self, spells: list[Row], other: int, rules: CityRules) -> Row | None:
        """Whether a child restricted through this parent's wrongful listing would be
        restricted anyway: the days of it on which the other parent is on a list that
        restricts children too, and whether rightly (the shadow world lists them as well).
        None when this parent was never wrongly on such a list."""
        wrong = [
            tuple(days)
            for s in spells
            if s["world"] == "recorded" and s.get("wrongly_listed")
            and s["list"] in rules.lists and restricts_children(rules.lists[s["list"]])
            for days in s["wrong_intervals"]
        ]  # fmt: skip
        if not wrong:
            return None
        city = self._rows("SELECT city FROM persons WHERE person = $p", p=other)[0]["city"]
        restricting = {
            name for name, lst in self.rules[city].lists.items() if restricts_children(lst)
        }
        theirs, shadow = self._spells_of("spells", "person", other)
        listed = [
            (s["list"], s["start"], spell_end(s, self.days))
            for s in theirs
            if s["world"] == "recorded" and s["list"] in restricting
        ]
        rightly = [(b, e) for lst, spans in shadow.items() if lst in restricting for b, e in spans]
        covered = _days_in(wrong, [(b, e) for _, b, e in listed])
        both = _days_in(wrong, [(b, e) for _, b, e in listed], rightly)
        return {
            "parent": other,
            "lists": sorted({lst for lst, b, e in listed if _days_in(wrong, [(b, e)])}),
            "days": covered,
            "of": sum(e - b for b, e in wrong),
            "rightly": both,
        }


def explain(path: str | Path, person: int) -> dict[str, Any]:
    """One adult's story and timeline from a run directory (see the module docstring)."""
    report = Explainer(path).person(person)
    report["story"] = story(report)
    return report


def restricts_children(lst: ListDef) -> bool:
    """A sanction list whose membership restricts the member's children."""
    return lst.kind == "sanction" and any(c.target == "children" for c in lst.consequences)


def _days_in(
    spans: list[tuple[int, int]], *covers: list[tuple[int, int]]
) -> int:  # fmt: skip
    """Days of `spans` inside every one of `covers` (each a list of [b, e) intervals)."""
    days = set()
    for b, e in spans:
        days.update(range(b, e))
    for cover in covers:
        days &= {d for b, e in cover for d in range(b, e)}
    return len(days)


def first_uncovered(start: int, end: int, cover: list[tuple[int, int]]) -> int | None:
    """The first day of [start, end) outside every (b, e) interval of `cover`."""
    day = start
    for b, e in sorted(cover):
        if b > day:
            break
        day = max(day, e)
    return day if day < end else None


def uncovered(start: int, end: int, cover: list[tuple[int, int]]) -> list[list[int]]:
    """The runs of days of [start, end) outside every (b, e) interval of `cover`."""
    out, day = [], start
    for b, e in sorted(cover):
        if b > day:
            out.append([day, min(b, end)])
        day = max(day, e)
        if day >= end:
            break
    if day < end:
        out.append([day, end])
    return [r for r in out if r[0] < r[1]]


def _live(r: Row, day: int) -> bool:
    """Whether record r counts on `day` (made, not expired, not removed on appeal)."""
    if r["day"] > day or (r["expiry_day"] is not None and r["expiry_day"] <= day):
        return False
    return not (r["upheld"] and r["decision_day"] is not None and r["decision_day"] <= day)


def _cause(
    first_wrong: int | None, at: int | None, start: int, own: list[Row], entering: list[Row],
    sign: int,
) -> Row:  # fmt: skip
    """Why a recorded spell happened, through the shadow world: if the shadow world shares
    it, the person's own records; otherwise the wrong records that entered it directly, where
    any did, or else the wrong records pushing towards the list (negative points for a sanction
    list, positive for a privilege) live on day `at` (the last day for a listing still wrongful
    at the end, else its first wrong day). A listing that outlasts those records (expired or
    removed on appeal: the list's minimum stay or exit rule keeps the person on) is blamed on
    those live on its first wrong day, or when it began (`held`: True)."""
    if first_wrong is None:
        return {"kind": "own records", "records": [r["record_id"] for r in entering]}
    wrong = [r for r in entering if r["truth"] != "correct"]
    held = False
    if not wrong:
        towards = [r for r in own if r["truth"] != "correct" and r["points"] * sign > 0]
        for day in dict.fromkeys(d for d in (at, first_wrong, start) if d is not None):
            wrong = [r for r in towards if _live(r, day)]
            if wrong:
                held = day != at  # gone by `at`: the list's stay or exit rule keeps them on
                break
        else:
            wrong = [r for r in towards if r["day"] <= first_wrong][-1:]
            held = bool(wrong)
    wrong.sort(key=lambda r: (-abs(r["points"]), r["day"]))  # the heaviest first
    return {"kind": "wrong records", "records": [r["record_id"] for r in wrong], "held": held}


def _gone(r: Row) -> int | None:
    """The day a record stopped counting (expiry, or an upheld appeal), if it did."""
    ends = [r["expiry_day"]] if r["expiry_day"] is not None else []
    if r["upheld"] and r["decision_day"] is not None:
        ends.append(r["decision_day"])
    return min(ends) if ends else None


def _describe(r: Row) -> str:
    """'a misattributed drug_use record (camera) that belonged to adult 84656'."""
    what = f"{label(r['behaviour'])} record ({label(r['channel'])}"
    if r["truth"] == "misattributed":
        return f"a misattributed {what}) that belonged to adult {r['actor']}"
    if r["truth"] == "false_report":
        return f"a false {label(r['behaviour'])} report ({label(r['channel'])}: nobody did it)"
    return f"a {what})"


def _appeal_story(r: Row) -> str:
    if not r.get("appealed"):
        return "never appealed"
    if r["upheld"] is None:
        return "appeal undecided at the end"
    return f"appeal {'upheld' if r['upheld'] else 'rejected'} on day {r['decision_day']}"


def _spell_words(lst: str) -> str:
    return f"on the {label(lst)}"


def story(report: dict[str, Any]) -> dict[str, Any]:
    """The verdict, the records that mattered and one line for the routine ones."""
    p, records = report["person"], report["records"]
    by_id = {r["record_id"]: r for r in records}
    recorded = [s for s in report["spells"] if s["world"] == "recorded"]
    wrong_spells = [s for s in recorded if s.get("wrongly_listed")]
    T = p["days"]

    def because(s: Row) -> str:
        ids = s["cause"]["records"]
        if not ids:
            return "because of wrong records no longer in the run's tables"
        main = by_id[ids[0]]
        more = (
            f" and {len(ids) - 1} more wrong record{'s' * (len(ids) > 2)}" if len(ids) > 1 else ""
        )
        held = (
            f" (gone since day {_gone(main)}; the list's minimum stay or exit rule kept them on)"
            if s["cause"].get("held") and _gone(main) is not None
            else ""
        )
        return f"because of {_describe(main)}{more}{held}; {_appeal_story(main)}"

    now_wrong = [s for s in wrong_spells if s["end"] is None]
    if now_wrong:
        s = max(now_wrong, key=lambda s: s["wrong_days"])
        verdict = (
            f"Wrongly {_spell_words(s['list'])} since day {s['first_wrong_day']} {because(s)}."
        )
    elif wrong_spells:
        s = max(wrong_spells, key=lambda s: s["wrong_days"])
        verdict = (
            f"Was wrongly {_spell_words(s['list'])} for {s['wrong_days']} days (from day "
            f"{s['first_wrong_day']} to day {s['end']}) {because(s)}."
        )
    elif p["lists"]:
        names = ", ".join(f"the {label(name)}" for name in p["lists"])
        verdict = (
            f"On {names} at the end on their own records: the shadow world (correct records "
            "only) puts them there too."
        )
    else:
        wrong = [r for r in records if r["truth"] != "correct"]
        verdict = "On no list at the end" + (
            f"; {len(wrong)} wrong record{'s' * (len(wrong) != 1)} against them changed no list."
            if wrong
            else "; no wrong record against them."
        )
    if len(wrong_spells) > 1:
        verdict += f" Wrongly listed in {len(wrong_spells)} spells in all."
    changing = {i for s in report["spells"] for i in s["records"]}
    changing |= {i for s in recorded for i in s.get("cause", {}).get("records", [])}
    mattered = [
        r
        for r in records
        if r["points"] < 0 or r["truth"] != "correct" or r["record_id"] in changing
    ]
    routine = [r for r in records if r not in mattered]
    counts: dict[str, int] = {}
    for r in routine:
        counts[r["behaviour"]] = counts.get(r["behaviour"], 0) + 1
    top = ", ".join(f"{label(b)} {n}" for b, n in sorted(counts.items(), key=lambda x: -x[1])[:4])
    points = sum(r["points"] for r in routine)
    summary = (
        f"{plural(len(routine), 'routine positive record')} "
        f"({top}{', ...' if len(counts) > 4 else ''}), {points:+d} points in all"
        if routine
        else "no routine positive records"
    )
    spells = [
        {
            "list": s["list"],
            "start": s["start"],
            "end": s["end"],
            "days": s["days"],
            "wrong_days": s.get("wrong_days", 0),
            "wrong_intervals": s.get("wrong_intervals", []),
            "why": (
                because(s)
                if s.get("wrongly_listed")
                else "on their own records (the shadow world is listed too)"
            ),
        }
        for s in recorded
    ]
    return {
        "verdict": verdict,
        "mattered": [r["record_id"] for r in mattered],
        "routine": summary,
        "spells": spells,
        "children": [_child_words(c) for c in report["children"] if c.get("anyway")],
        "days": T,
    }


def _child_words(c: Row) -> str:
    """Whether a child's restriction through this adult's wrongful listing would hold anyway,
    the other parent being on a list that restricts children on the same days."""
    a, child = c["anyway"], c["child"]
    lists = listing(f"the {label(name)}" for name in a["lists"])
    if not a["days"]:
        return (
            f"Child {child} was restricted for {plural(a['of'], 'day')} only through the wrong "
            f"record: their other parent, adult {a['parent']}, was on no list that restricts "
            "children on those days."
        )
    how = (
        "rightly"
        if a["rightly"] == a["days"]
        else "wrongly"
        if not a["rightly"]
        else "partly wrongly"
    )
    part = "" if a["days"] == a["of"] else f" on {a['days']:,} of its {plural(a['of'], 'day')}"
    return (
        f"Child {child}'s other parent, adult {a['parent']}, was on {lists} on those days too "
        f"({how}), so the restriction would hold without the wrong record{part}."
    )


def spell_end(spell: Row, days: int) -> int:
    return spell["end"] if spell["end"] is not None else days


def truth_words(r: Row) -> str:
    if r["truth"] == "misattributed":
        return f"misattributed (true actor {r['actor']})"
    return label(str(r["truth"]))


def _outcome(r: Row) -> str:
    return {True: "upheld", False: "rejected", None: "undecided at T"}[r["upheld"]]


def _record(r: Row) -> Row:
    keys = ("record_id", "day", "behaviour", "channel", "truth", "actor", "points")
    keys += ("shadow_points", "expiry_day", "appealed", "decision_day", "upheld")
    return {k: r[k] for k in keys}


def _blamed(r: Row) -> Row:
    keys = ("record_id", "day", "behaviour", "channel", "person", "points")
    keys += ("appealed", "decision_day", "upheld")
    return {k: r[k] for k in keys}


def _appeal(r: Row) -> Row:
    keys = ("record_id", "day", "behaviour", "filed_day", "decision_day", "upheld")
    return {k: r[k] for k in keys} | {"outcome": _outcome(r)}


def _bonuses(own: list[Row], rules: CityRules, T: int) -> list[Change]:
    """A clean-year bonus as the scheme gives it (scheme.layer.Scheme.clean_year_bonus): on
    each multiple t of `every_days`, in each world without a negative record in the period
    before (recorded: every record of the adult's; shadow: correct ones). The score bounds are
    not applied here (a bonus at the top of the range shows in full)."""
    pack = rules.pack
    bonus = pack.clean_year_bonus
    if bonus is None:
        return []
    bad = {b for b, rule in pack.rules.items() if rule.points < 0 or rule.push_below is not None}
    negative = [r for r in own if r["behaviour"] in bad]
    worlds = [[r["day"] for r in negative], [r["day"] for r in negative if r["truth"] == "correct"]]
    out = []
    for t in range(bonus.every_days, T, bonus.every_days):
        given = [
            0 if any(t - bonus.every_days <= d < t for d in days) else bonus.points
            for days in worlds
        ]
        out.append(Change(t, BONUS, "bonus", *given))
        if t + bonus.expiry_days < T:
            out.append(Change(t + bonus.expiry_days, BONUS, "bonus expired", -given[0], -given[1]))
    return out


def _published(changes: list[Change], every: int, T: int) -> list[Change]:
    """Point changes on the day a recalculated score publishes them: expiries at step 1 of a
    recalculation day count that same day; records and upheld appeals (later in the day) at
    the next one."""
    out = []
    for c in changes:
        if c.cap is None:
            first = c.day if c.event in ("expired", "bonus expired") else c.day + 1
            c = replace(c, day=-(-first // every) * every)
        if c.day < T:
            out.append(c)
    return out


def _score_path(tl: Timeline) -> list[Row]:
    out = []
    before = (tl.start, tl.start)
    for i, day in enumerate(tl.days):
        if tl.score[i] == before:
            continue
        before = tl.score[i]
        changes = [
            {
                "record_id": c.record["record_id"],
                "behaviour": c.record["behaviour"],
                "event": c.event,
                "points": c.points,
                "shadow_points": c.shadow_points,
            }
            for c in tl.by_day[day]
            if c.points or c.shadow_points
        ]
        out.append({"day": day, "score": before[0], "shadow_score": before[1], "changes": changes})
    return out


def _grade_changes(tl: Timeline) -> list[Row]:
    names = tl.rules.pack.tier_names
    start = tl.rules.tier_of(tl.start)
    before = (start, start)
    out = []
    for i, day in enumerate(tl.days):
        for w, world in enumerate(("recorded", "shadow")):
            if tl.tier[i][w] != before[w]:
                out.append(
                    {
                        "day": day,
                        "world": world,
                        "from": names[before[w]],
                        "to": names[tl.tier[i][w]],
                        "score": tl.score[i][w],
                        "cause": tl.cause(day, w),
                    }
                )
        before = tl.tier[i]
    return out


def _began(spell: Row, world: int, entering: list[Row], tl: Timeline) -> str:
    day = spell["start"]
    first = [r for r in entering if r["day"] == day]
    if first:
        return f"entered on day {day} by " + ", ".join(
            f"record {r['record_id']} ({r['behaviour']}, {r['truth']})" for r in first
        )
    grade, cause = tl.grade(day, world), tl.cause(day, world)
    if day == 0 and not cause:
        return f"tier {grade} at the start score"
    if not cause:
        return f"tier {grade} on day {day}"
    before = tl.tier[tl.at(day - 1)][world] if day > 0 else tl.rules.tier_of(tl.start)
    now = tl.tier[tl.at(day)][world]
    moved = "fell to" if now > before else "rose to" if now < before else "stayed at"
    return f"tier {moved} {grade} on day {day} after {cause}"


def _ended(
    spell: Row, world: int, lst: ListDef | None, entering: list[Row], tl: Timeline
) -> str | None:
    day = spell["end"]
    if day is None:
        return None
    if any(r["upheld"] and r["decision_day"] == day for r in entering):
        return f"appeal upheld on day {day}"
    if entering and lst is not None and lst.exit == "settlement":
        return f"settled on day {day}"
    if entering:
        return f"ban ran out on day {day}"
    text = f"grade {tl.grade(day, world)} on day {day}"
    cause = tl.cause(day, world)
    if cause:
        return f"{text} after {cause}"
    if lst is not None and lst.min_stay_days:
        return f"{text} (minimum stay of {lst.min_stay_days} days served)"
    return text


def _sanctions(spells: list[Row], rules: CityRules) -> list[Row]:
    """The consequences each recorded spell switched on, and for how many days."""
    out = []
    for s in spells:
        lst = rules.lists.get(s["list"])
        if s["world"] != "recorded" or lst is None:
            continue
        out.append(
            {
                "list": s["list"],
                "start": s["start"],
                "end": s["end"],
                "days": s["days"],
                "wrongly_listed": s["wrongly_listed"],
                "consequences": [c.model_dump() | {"kind": lst.kind} for c in lst.consequences],
            }
        )
    return out


def console_section(
    console: Console, title: str, columns: list[str], rows: list[list[Any]]
) -> None:
    """A titled table, or one dim line when there is nothing to show."""
    if not rows:
        console.print(f"[bold]{title}[/bold]: [dim]none[/dim]")
        return
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    longest = [
        max(len(word) for text in [name, *(row[i] for row in cells)] for word in text.split())
        for i, name in enumerate(columns)
    ]
    if sum(longest) + 2 * len(columns) > console.width:
        # Too narrow for a table whose cells wrap only between words: a line per row.
        console.print(f"[bold]{title}[/bold]")
        for row in cells:
            console.print("; ".join(f"{n} {v}" for n, v in zip(columns, row, strict=True) if v))
        return
    table = Table(
        title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
        show_edge=False, padding=(0, 1, 0, 0),
    )  # fmt: skip
    for name, width in zip(columns, longest, strict=True):  # cells wrap between words only
        table.add_column(name, overflow="fold", min_width=width)
    for row in cells:
        table.add_row(*row)
    console.print(table)


def render(report: dict[str, Any], console: Console) -> None:
    """The report as Rich tables, one section after another."""
    p = report["person"]
    head = Table(show_header=False, title=f"adult {p['person']}", title_justify="left")
    for key in ("city", "group", "risk", "civic", "partner", "degree", "deter"):
        value = p[key]
        head.add_row(key, f"{value:.3g}" if isinstance(value, float) else str(value))
    head.add_row("score (shadow)", f"{p['score']} ({p['shadow_score']}), start {p['start_score']}")
    head.add_row("grade (shadow)", f"{p['tier']} ({p['shadow_tier']})")
    head.add_row("lists at T", ", ".join(p["lists"]) or "none")
    head.add_row("shadow lists at T", ", ".join(p["shadow_lists"]) or "none")
    for line in report.get("modules", ()):
        head.add_row("module", line)
    console.print(head)
    console_section(
        console,
        "records against this adult",
        ["id", "day", "behaviour", "channel", "truth", "points", "shadow", "expires", "appeal"],
        [
            [
                r["record_id"],
                r["day"],
                label(r["behaviour"]),
                label(r["channel"]),
                truth_words(r),
                r["points"],
                r["shadow_points"],
                r["expiry_day"],
                _appeal_text(r),
            ]
            for r in report["records"]
        ],
    )
    console_section(
        console,
        "others were blamed for",
        ["id", "day", "behaviour", "channel", "recorded against", "points", "appeal"],
        [
            [r[k] for k in ("record_id", "day", "behaviour", "channel", "person", "points")]
            + [_appeal_text(r)]
            for r in report["blamed_others"]
        ],
    )
    console_section(
        console,
        "score path",
        ["day", "score", "shadow", "because of"],
        [
            [s["day"], s["score"], s["shadow_score"], _changes_text(s["changes"])]
            for s in report["score_path"]
        ],
    )
    console_section(
        console,
        "grade changes",
        ["day", "world", "from", "to", "score", "because of"],
        [
            [g[k] for k in ("day", "world", "from", "to", "score", "cause")]
            for g in report["grade_changes"]
        ],
    )
    console_section(
        console,
        "list spells",
        ["list", "world", "start", "end", "days", "began", "ended", "wrongly listed"],
        [
            [
                s["list"],
                s["world"],
                s["start"],
                "listed at T" if s["end"] is None else s["end"],
                s["days"],
                s["began"],
                s["ended"],
                f"{s['wrong_days']} days" if s.get("wrongly_listed") else "",
            ]
            for s in report["spells"]
        ],
    )
    console_section(
        console,
        "sanctions and privileges",
        ["list", "days in force", "on the person", "on children"],
        [
            [
                s["list"],
                f"{s['start']}..{'T' if s['end'] is None else s['end']} ({s['days']} d)",
                _names(s["consequences"], "person"),
                _names(s["consequences"], "children"),
            ]
            for s in report["sanctions"]
        ],
    )
    console_section(
        console,
        "children",
        ["child", "other parent", "carried while this parent was listed"],
        [
            [
                c["child"],
                c["other_parent"],
                ", ".join(f"{x['name']} ({x['days']} d)" for x in c["consequences"]),
            ]
            for c in report["children"]
        ],
    )
    console_section(
        console,
        "appeals filed",
        ["record", "behaviour", "filed", "decision day", "outcome"],
        [
            [a["record_id"], a["behaviour"], a["filed_day"], a["decision_day"], a["outcome"]]
            for a in report["appeals"]
        ],
    )


def _names(consequences: list[Row], target: str) -> str:
    return ", ".join(c["name"] for c in consequences if c["target"] == target)


def _appeal_text(r: Row) -> str:
    return f"{_outcome(r)} (day {r['decision_day']})" if r["appealed"] else ""


def _changes_text(changes: list[Row]) -> str:
    return ", ".join(
        f"{c['event']} (record {c['record_id']}, {c['behaviour']}) {c['points']:+d}"
        for c in changes
    )


def render_story(report: dict[str, Any], console: Console) -> None:
    """The story: the verdict, the records that mattered, one line for the rest."""
    p, st = report["person"], report["story"]
    console.print(f"[bold]adult {p['person']}[/bold] ({p['group']}, {p['city']}): {st['verdict']}")
    by_id = {r["record_id"]: r for r in report["records"]}
    console_section(
        console,
        "records that mattered (negative, wrong or list-changing)",
        ["id", "day", "behaviour", "channel", "truth", "points", "expires", "appeal"],
        [
            [
                r["record_id"],
                r["day"],
                label(r["behaviour"]),
                label(r["channel"]),
                truth_words(r),
                r["points"],
                r["expiry_day"],
                _appeal_text(r),
            ]
            for r in (by_id[i] for i in st["mattered"])
        ],
    )
    console.print(f"and {st['routine']}.")
    console_section(
        console,
        "list spells",
        ["list", "days", "wrongly", "why"],
        [
            [
                label(s["list"]),
                f"{s['start']}..{'end' if s['end'] is None else s['end']} ({s['days']} d)",
                f"{s['wrong_days']} d" if s["wrong_days"] else "",
                s["why"],
            ]
            for s in st["spells"]
        ],
    )
    restricted = [c for c in report["children"] if c["restricted"]]
    if report["children"]:
        console.print(
            f"children: {len(report['children'])}, {len(restricted)} restricted at the end"
        )
    for line in st.get("children", ()):
        console.print(line, markup=False)
    for line in report.get("modules", ()):  # what the run's modules say (credit, reviews, ...)
        console.print(line, markup=False)
    console.print("[dim]--all for the full listing, --html FILE for a timeline page[/dim]")


def render_html(report: dict[str, Any], path: str | Path) -> None:
    """A timeline page: the verdict, score in both worlds over time with the records that
    mattered and the list spells, and the tables (one offline file)."""
    import html as h

    import plotly.graph_objects as go

    from xinyong.audit.figures import Page, layout
    from xinyong.audit.render import write_page

    p, st = report["person"], report["story"]
    page = Page()
    path_rows = report["score_path"]
    days = [0] + [s["day"] for s in path_rows] + [p["days"]]
    score = [p["start_score"]] + [s["score"] for s in path_rows]
    shadow = [p["start_score"]] + [s["shadow_score"] for s in path_rows]
    score.append(score[-1])
    shadow.append(shadow[-1])
    by_id = {r["record_id"]: r for r in report["records"]}
    mattered = [by_id[i] for i in st["mattered"]]
    at = {d: sc for d, sc in zip(days, score, strict=True)}
    traces = [
        go.Scatter(x=days, y=score, name="recorded score", line={"shape": "hv", "width": 2}),
        go.Scatter(
            x=days,
            y=shadow,
            name="shadow score (correct records only)",
            line={"shape": "hv", "width": 2, "dash": "dash"},
        ),
        go.Scatter(
            x=[r["day"] for r in mattered],
            y=[at.get(r["day"], p["start_score"]) for r in mattered],
            mode="markers",
            name="records that mattered",
            marker={
                "size": 10,
                "symbol": "x",
                "color": ["#c0392b" if r["truth"] != "correct" else "#333" for r in mattered],
            },
            hovertext=[
                h.escape(f"record {r['record_id']}: {_describe(r)}, {r['points']:+d}")
                for r in mattered
            ],
            hoverinfo="text",
        ),
    ]
    spans = [(s["start"], p["days"] if s["end"] is None else s["end"], False) for s in st["spells"]]
    spans += [(b, e, True) for s in st["spells"] for b, e in s.get("wrong_intervals") or []]
    shapes = [
        {
            "type": "rect",
            "xref": "x",
            "yref": "paper",
            "x0": b,
            "x1": e,
            "y0": 0,
            "y1": 1,
            "fillcolor": "rgba(192,57,43,0.18)" if wrong else "rgba(31,95,153,0.10)",
            "line": {"width": 0},
            "layer": "below",
        }
        for b, e, wrong in spans
    ]
    lay = layout(
        f"Score of adult {p['person']}, recorded and shadow (shaded: list spells, red: the days "
        "wrongly listed)",
        420,
        xaxis={"title": {"text": "day of the run"}, "range": [0, p["days"]]},
        yaxis={"title": {"text": "score (points)"}},
        shapes=shapes,
    )
    records = [
        {**r, "truth_words": truth_words(r), "appeal_words": _appeal_text(r)} for r in mattered
    ]
    write_page(
        "explain.html",
        path,
        plotly=True,
        person=p,
        story=st,
        figure=page.figure("timeline", traces, lay),
        records=records,
    )


ADULT = EntityExplainer("adult", explain, render, render_html)
