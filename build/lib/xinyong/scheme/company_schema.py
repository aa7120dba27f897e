"""The schema of company packs (data, never code): the tax credit rating and the company
lists, and the person lists that follow a company's lists (docs/model.md, "Companies")."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict, model_validator

from xinyong.scheme.schema import (
    DAYS_LIMIT,
    ILLUSTRATIVE,
    MEMBER,
    Consequence,
    Days,
    Flag,
    ListDef,
    Model,
    Name,
    Source,
    Sourced,
)

# The rating's grades, best first. M (no business income) sits between B and C in the
# published order; `unrated` is a company's grade before its first rating.
GRADES = ("A", "B", "M", "C", "D")
UNRATED = "unrated"
THRESHOLD_GRADES = ("A", "B", "C")  # each with a minimum score; D is below C's
Points = Annotated[int, Strict(), Field(ge=0, le=1_000_000)]


class Start(Sourced):
    """The evaluation's start: with a full set of indicators, or a partial one."""

    full: Points
    partial: Points


class Threshold(Sourced):
    min_score: Points


class RatingRule(Sourced):
    """A behaviour's part in the yearly rating: a deduction per record (with a yearly cap),
    a direct D, or no A."""

    deduction: Points = 0
    cap: Points | None = None
    direct_d: Flag = False
    no_a: Flag = False

    @model_validator(mode="after")
    def _does_something(self) -> RatingRule:
        if not (self.deduction or self.direct_d or self.no_a):
            raise ValueError("a rating rule sets a deduction, direct_d or no_a")
        if self.cap is not None and not self.deduction:
            raise ValueError("'cap' limits a deduction")
        return self


class Rating(Model):
    """The yearly tax credit rating (docs/model.md, "Tax credit rating")."""

    start: Start
    grades: dict[Literal["A", "B", "C"], Threshold]
    rules: dict[Name, RatingRule] = Field(default_factory=dict)
    # Company lists whose members, as they stood after the day before the rating, are rated
    # D directly (the "abnormal household" of Art. 20).
    direct_d_lists: tuple[Name, ...] = ()

    @model_validator(mode="after")
    def _thresholds(self) -> Rating:
        missing = [g for g in THRESHOLD_GRADES if g not in self.grades]
        if missing:
            raise ValueError(f"grades needs a min_score for each of A, B, C (missing {missing})")
        a, b, c = (self.grades[g].min_score for g in THRESHOLD_GRADES)
        if not a > b > c:
            raise ValueError("grade thresholds must fall strictly from A to B to C")
        return self


class RecordEntry(Model):
    """A listing entered by a record: for `days` (extended by a new record), or until left."""

    record: Name
    days: Days | None = None


class Ground(Model):
    """A condition a company list holds on: a grade, or membership of another list."""

    rated: Literal["A", "B", "M", "C", "D"] | None = None
    list: Name | None = None

    @model_validator(mode="after")
    def _one(self) -> Ground:
        if (self.rated is None) == (self.list is None):
            raise ValueError("a ground sets exactly one of 'rated' or 'list'")
        return self


class Escalation(Sourced):
    """After `after_days` on the list without a break, the company leaves it for list `to`."""

    after_days: Days
    to: Name


class CompanyList(Sourced):
    """A company list: the union of a record-entered part (`entry`; untimed ones are left by
    `exit` draws, an escalation or an appeal), a part entered by escalation (`stay_days`),
    and a part on while any of `while_any` holds (kept at least `min_stay_days`)."""

    kind: Literal["sanction", "privilege"]
    description: str | None = None
    entry: RecordEntry | None = None
    exit: Literal["late_filing", "settlement"] | None = None
    escalate: Escalation | None = None
    stay_days: Days | None = None
    while_any: tuple[Ground, ...] = ()
    min_stay_days: Annotated[int, Strict(), Field(ge=0, le=DAYS_LIMIT)] = 0
    consequences: tuple[Consequence, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> CompanyList:
        untimed = self.entry is not None and self.entry.days is None
        if self.exit is not None and not untimed:
            raise ValueError("'exit' leaves an untimed record-entered listing")
        if self.escalate is not None and not untimed:
            raise ValueError("'escalate' moves an untimed record-entered listing")
        if self.min_stay_days and not self.while_any:
            raise ValueError("min_stay_days applies to the 'while_any' part")
        if self.entry is None and self.stay_days is None and not self.while_any:
            raise ValueError(
                "a list needs an entry, stay_days (entered by escalation) or while_any"
            )
        for c in self.consequences:
            if c.target != MEMBER:
                raise ValueError("a company list's consequences act on the company itself")
        return self


class CompanyPack(Model):
    id: Name
    kind: Literal["company"]
    title: str
    description: str | None = None
    sources: dict[str, Source] = Field(default_factory=dict)
    rating: Rating | None = None
    lists: dict[Name, CompanyList] = Field(default_factory=dict)
    # Lists of adults that follow the lists of the companies they represent (entry:
    # {represents: LIST}); otherwise as any pack's lists.
    person_lists: dict[Name, ListDef] = Field(default_factory=dict)

    def check(
        self,
        behaviours: set[str] | None = None,
        company_lists: set[str] | None = None,
        relations: tuple[str, ...] | None = None,
    ) -> list[tuple[str, tuple]]:
        """Cross-field checks, as schema.Pack.check; `company_lists`: every company list of
        the scenario (a ground or a person list may name another pack's)."""
        problems: list[tuple[str, tuple]] = []
        known = company_lists  # None: the pack alone, whose lists may name another pack's

        def source_ok(obj: Sourced, loc: tuple) -> None:
            if obj.source != ILLUSTRATIVE and obj.source not in self.sources:
                problems.append((f"unknown source '{obj.source}'", (*loc, "source")))

        def behaviour_ok(name: str, loc: tuple) -> None:
            if behaviours is not None and name not in behaviours:
                problems.append((f"unknown company behaviour '{name}'", loc))

        def list_ok(name: str, loc: tuple) -> None:
            if known is not None and name not in known:
                names = ", ".join(sorted(known)) or "none"
                problems.append((f"unknown company list '{name}' (lists: {names})", loc))

        if self.rating is not None:
            source_ok(self.rating.start, ("rating", "start"))
            for g, th in self.rating.grades.items():
                source_ok(th, ("rating", "grades", g))
            for b, rule in self.rating.rules.items():
                source_ok(rule, ("rating", "rules", b))
                behaviour_ok(b, ("rating", "rules", b))
            for j, name in enumerate(self.rating.direct_d_lists):
                list_ok(name, ("rating", "direct_d_lists", j))
        for name, lst in self.lists.items():
            loc = ("lists", name)
            source_ok(lst, loc)
            if lst.entry is not None:
                behaviour_ok(lst.entry.record, (*loc, "entry", "record"))
            if lst.escalate is not None:
                source_ok(lst.escalate, (*loc, "escalate"))
                list_ok(lst.escalate.to, (*loc, "escalate", "to"))
                target = self.lists.get(lst.escalate.to)
                if target is not None and target.stay_days is None:
                    problems.append(
                        (f"list '{lst.escalate.to}' needs stay_days", (*loc, "escalate", "to"))
                    )
            for j, ground in enumerate(lst.while_any):
                if ground.list is not None:
                    list_ok(ground.list, (*loc, "while_any", j, "list"))
                    if ground.list == name:
                        problems.append(("a list cannot hold on itself", (*loc, "while_any", j)))
            for j, c in enumerate(lst.consequences):
                for e, eff in enumerate(c.effects):
                    source_ok(eff, (*loc, "consequences", j, "effects", e))
        for name, lst in self.person_lists.items():
            loc = ("person_lists", name)
            source_ok(lst, loc)
            entry = lst.entry
            if entry is None or entry.represents is None:
                problems.append(("a person list is entered by {represents: LIST}", (*loc, "entry")))
            else:
                list_ok(entry.represents, (*loc, "entry", "represents"))
            if lst.exit is not None or lst.permanent or lst.min_stay_days:
                problems.append(
                    ("a person list holds exactly while the company list does", (*loc, "exit"))
                )
            for j, c in enumerate(lst.consequences):
                cloc = (*loc, "consequences", j)
                if relations is not None and c.target not in (MEMBER, *relations):
                    targets = ", ".join((MEMBER, *relations))
                    problems.append((f"unknown target '{c.target}' ({targets})", (*cloc, "target")))
                if c.effects:
                    problems.append(("a person list carries no behaviour effects", cloc))
        return problems
