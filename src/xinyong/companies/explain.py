"""One company's story, read back from a run directory (`xinyong explain RUN company=ID`):
its records and their appeals, its tax ratings with why, its list spells in both worlds (a
spell the shadow world does not share is blamed on the wrong records live when it began), and
what its legal representative suffered because of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from xinyong.audit.explain import (
    Explainer,
    Row,
    console_section,
    first_uncovered,
    spell_end,
    truth_words,
)
from xinyong.audit.registry import EntityExplainer, member_lines
from xinyong.errors import XinyongError

COMPANY_RECORD_SQL = """
SELECT r.record_id, r.day, r.behaviour, r.channel, r.truth, r.actor,
       a.filed_day, a.decision_day, a.upheld
FROM company_records r LEFT JOIN company_appeals a USING (record_id)
WHERE r.company = $c ORDER BY r.day, r.record_id
"""
RATING_REASONS = {
    "direct_record": "a record that rates D directly",
    "abnormal_listed": "on a list whose members are rated D",
    "carried_over": "D carried over from the year before",
    "related_d": "its legal representative's other firm is D by a direct record",
    "no_a": "barred from A (partial indicators, a no-A record, or D two years ago)",
    "no_income": "no income reported (rated M)",
}


class CompanyExplainer(Explainer):
    """`company(i)` explains one company: its records, ratings, spells in both worlds and what
    its legal representative suffered because of it."""

    def company(self, company: int) -> dict[str, Any]:
        if not self.run.has("companies"):
            raise XinyongError("this run has no companies", file=self.run.path, field="company")
        found = self._rows("SELECT * FROM companies WHERE company = $c", c=company)
        if not found:
            count = self._rows("SELECT count(*) AS n FROM companies")[0]["n"]
            raise XinyongError(
                f"no company {company} in this run (companies are 0..{count - 1})",
                file=self.run.path,
                field="company",
            )
        row = found[0]
        meta = self.run.meta().get("companies", {})
        lists = meta.get("lists", [])
        records = [
            {**r, "appealed": r["filed_day"] is not None, "outcome": _company_outcome(r)}
            for r in self._rows(COMPANY_RECORD_SQL, c=company)
        ]
        ratings = []
        for r in self._rows(
            "SELECT * FROM company_ratings WHERE company = $c ORDER BY year, world", c=company
        ):
            reasons = [k for k in RATING_REASONS if r.get(k)]
            ratings.append(
                {
                    "year": r["year"],
                    "world": r["world"],
                    "score": r["score"],
                    "grade": r["grade"],
                    "reasons": reasons,
                    "why": "; ".join(RATING_REASONS[k] for k in reasons) or f"score {r['score']}",
                }
            )
        spells = self._company_spells(company, records)
        rep = row["legal_rep"]
        return {
            "company": {
                "company": company,
                "city": row["city"],
                "size": row["size"],
                "full_indicators": row["full_indicators"],
                "risk": row["risk"],
                "legal_rep": rep,
                "grade": row["grade"],
                "shadow_grade": row["shadow_grade"],
                "deter": row["deter"],
                "lists": [n for n in lists if row.get(f"on.{n}")],
                "shadow_lists": [n for n in lists if row.get(f"shadow_on.{n}")],
                "days": self.days,
            },
            "records": records,
            "ratings": ratings,
            "spells": spells,
            "legal_rep": self._legal_rep(rep, company, spells, meta.get("person_lists", {})),
            # What the run's other modules say about it (a lender's decisions, ...).
            "modules": member_lines(self.con, self.run.meta(), "company", company),
        }

    def _company_spells(self, company: int, records: list[Row]) -> list[Row]:
        rows, shadow = self._spells_of("company_spells", "company", company)
        out = []
        for s in rows:
            end = spell_end(s, self.days)
            spell: Row = {**s, "days": end - s["start"]}
            started = [r["record_id"] for r in records if r["day"] == s["start"]]
            if s["world"] == "shadow":
                started = [
                    r["record_id"]
                    for r in records
                    if r["day"] == s["start"] and r["truth"] == "correct"
                ]
            spell["records_that_day"] = started
            if s["world"] == "recorded":
                cover = shadow.get(s["list"], [])
                covered = sum(max(0, min(end, e) - max(s["start"], b)) for b, e in cover)
                spell["wrong_days"] = spell["days"] - covered
                spell["wrongly_listed"] = spell["wrong_days"] > 0
                spell["first_wrong_day"] = first_uncovered(s["start"], end, cover)
            out.append(spell)
        return out

    def _legal_rep(
        self, rep: int, company: int, spells: list[Row], person_lists: dict[str, str]
    ) -> Row:
        """The representative's spells on the person lists that follow this company's lists,
        those that overlap a spell of this company there (same world), and their children."""
        firms = [
            r["company"]
            for r in self._rows(
                "SELECT company FROM companies WHERE legal_rep = $p ORDER BY company", p=rep
            )
        ]
        out_spells = []
        for s in self._rows(
            'SELECT list, world, start, "end" FROM spells WHERE person = $p ORDER BY start, list',
            p=rep,
        ):
            follows = person_lists.get(s["list"])
            if follows is None:
                continue
            end = spell_end(s, self.days)
            mine = [
                c
                for c in spells
                if c["list"] == follows
                and c["world"] == s["world"]
                and c["start"] < end
                and spell_end(c, self.days) > s["start"]
            ]
            out_spells.append(
                {
                    **s,
                    "days": end - s["start"],
                    "follows": follows,
                    "because_of_this_company": bool(mine),
                }
            )
        restricted = [
            r["child"]
            for r in self._rows(
                "SELECT child FROM children WHERE (parent1 = $p OR parent2 = $p) AND restricted "
                "ORDER BY child",
                p=rep,
            )
        ]
        return {
            "person": rep,
            "companies": firms,
            "spells": out_spells,
            "children_restricted_at_T": restricted,
        }


def _company_outcome(r: Row) -> str:
    if r["filed_day"] is None:
        return "never appealed"
    return {True: "appeal upheld", False: "appeal rejected", None: "appeal undecided at T"}[
        r["upheld"]
    ] + (f" (day {r['decision_day']})" if r["upheld"] is not None else "")


def company_story(report: dict[str, Any]) -> dict[str, Any]:
    """The verdict for one company and one line per recorded spell."""
    c, records = report["company"], report["records"]
    by_id = {r["record_id"]: r for r in records}
    recorded = [s for s in report["spells"] if s["world"] == "recorded"]
    wrong = [s for s in recorded if s.get("wrongly_listed")]
    bad = [r for r in records if r["truth"] != "correct"]

    def because(s: Row) -> str:
        live = [r for r in bad if r["day"] <= (s["first_wrong_day"] or s["start"])]
        if not live:
            return "because of wrong records"
        main = by_id[live[-1]["record_id"]]
        what = f"a {main['truth'].replace('_', ' ')} {main['behaviour']} record ({main['channel']})"
        if main["truth"] == "misattributed" and main["actor"] is not None:
            what += f" that belonged to company {main['actor']}"
        return f"because of {what}; {main['outcome']}"

    if wrong:
        s = max(wrong, key=lambda s: s["wrong_days"])
        now = "Wrongly on" if s["end"] is None else "Was wrongly on"
        verdict = (
            f"{now} the {s['list']} for {s['wrong_days']} days from day {s['first_wrong_day']} "
            f"{because(s)}."
        )
    elif c["lists"]:
        verdict = (
            f"On {', '.join('the ' + n for n in c['lists'])} at the end on its own records: "
            "the shadow world (correct records only) lists it too."
        )
    else:
        verdict = "On no company list at the end" + (
            f"; {len(bad)} wrong record{'s' * (len(bad) != 1)} against it changed no list."
            if bad
            else "; no wrong record against it."
        )
    rep = report["legal_rep"]
    hit = [s for s in rep["spells"] if s["because_of_this_company"] and s["world"] == "recorded"]
    if hit:
        verdict += (
            f" Its legal representative, adult {rep['person']}, was put on "
            + ", ".join(sorted({s["list"] for s in hit}))
            + " because of it."
        )
    return {
        "verdict": verdict,
        "mattered": [r["record_id"] for r in records],
        "spells": [
            {
                "list": s["list"],
                "start": s["start"],
                "end": s["end"],
                "days": s["days"],
                "wrong_days": s.get("wrong_days", 0),
                "why": because(s) if s.get("wrongly_listed") else "on its own records",
            }
            for s in recorded
        ],
        "days": c["days"],
    }


def explain_company(path: str | Path, company: int) -> dict[str, Any]:
    """One company's story from a run directory."""
    report = CompanyExplainer(path).company(company)
    report["story"] = company_story(report)
    return report


def render_company(report: dict[str, Any], console: Console) -> None:
    """The company report as Rich tables."""
    c, st, rep = report["company"], report["story"], report["legal_rep"]
    console.print(
        f"[bold]company {c['company']}[/bold] ({c['size']}, {c['city']}): {st['verdict']}"
    )
    head = Table(show_header=False, title=f"company {c['company']}", title_justify="left")
    head.add_row("size", str(c["size"]))
    head.add_row("indicators", "full" if c["full_indicators"] else "partial")
    head.add_row("risk", f"{c['risk']:.3g}")
    head.add_row("legal representative", f"adult {c['legal_rep']}")
    head.add_row("grade (shadow)", f"{c['grade']} ({c['shadow_grade']})")
    head.add_row("lists at T", ", ".join(c["lists"]) or "none")
    head.add_row("shadow lists at T", ", ".join(c["shadow_lists"]) or "none")
    console.print(head)
    console_section(
        console,
        "records against this company",
        ["id", "day", "behaviour", "channel", "truth", "appeal"],
        [
            [r["record_id"], r["day"], r["behaviour"], r["channel"], truth_words(r), r["outcome"]]
            for r in report["records"]
        ],
    )
    console_section(
        console,
        "ratings",
        ["year", "world", "score", "grade", "why"],
        [[r["year"], r["world"], r["score"], r["grade"], r["why"]] for r in report["ratings"]],
    )
    console_section(
        console,
        "list spells",
        ["list", "world", "start", "end", "days", "wrongly listed"],
        [
            [
                s["list"],
                s["world"],
                s["start"],
                "listed at T" if s["end"] is None else s["end"],
                s["days"],
                f"{s['wrong_days']} days" if s.get("wrongly_listed") else "",
            ]
            for s in report["spells"]
        ],
    )
    console_section(
        console,
        f"legal representative, adult {rep['person']} (companies: "
        f"{', '.join(map(str, rep['companies']))})",
        ["list", "world", "start", "end", "days", "follows", "because of this company"],
        [
            [
                s["list"],
                s["world"],
                s["start"],
                "listed at T" if s["end"] is None else s["end"],
                s["days"],
                s["follows"],
                "yes" if s["because_of_this_company"] else "no",
            ]
            for s in rep["spells"]
        ],
    )
    if rep["children_restricted_at_T"]:
        console.print(
            "children restricted at T: " + ", ".join(map(str, rep["children_restricted_at_T"]))
        )
    for line in report.get("modules", ()):
        console.print(line)


@dataclass(frozen=True)
class CompanyExplanation:
    """One company's story: the verdict, its records, ratings and spells, and what its legal
    representative suffered because of it."""

    doc: dict[str, Any] = field(repr=False)

    @property
    def verdict(self) -> str:
        return str(self.doc["story"]["verdict"])

    @property
    def records(self) -> pd.DataFrame:
        """Every record against the company, with its truth and appeal outcome."""
        return pd.DataFrame(self.doc["records"])

    @property
    def ratings(self) -> pd.DataFrame:
        """Each year's rating in both worlds, with its reasons."""
        return pd.DataFrame(self.doc["ratings"])

    @property
    def spells(self) -> pd.DataFrame:
        """The company's list spells in both worlds (recorded ones with their wrong days)."""
        return pd.DataFrame(self.doc["spells"])

    @property
    def legal_rep(self) -> dict[str, Any]:
        """The legal representative: their companies, person-list spells and children."""
        return dict(self.doc["legal_rep"])


COMPANY_EXPLAINER = EntityExplainer(
    "company", explain_company, render_company, wrap=CompanyExplanation
)
