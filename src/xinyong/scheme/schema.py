"""The rule-pack schema (data, never code), its loader and its cross-checks."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    model_validator,
)

from xinyong.errors import XinyongError
from xinyong.words import did_you_mean, plural
from xinyong.yamlio import Lines, line_of, load_yaml, resolve

PACKS_DIR = Path(__file__).resolve().parent.parent / "packs"
ILLUSTRATIVE = "illustrative"
M = TypeVar("M", bound=BaseModel)

# Numbers are checked against what stores them. Scores and points are 32-bit in the state
# and the records: each within a billion, so that a score plus a rule's points (or minus
# what expires) cannot pass 2**31 before the bounds clamp it. Day counts are added to day
# numbers (32-bit). Yearly caps count points used in 16 bits.
SCORE_LIMIT = 1_000_000_000
DAYS_LIMIT = 1_000_000
CAP_LIMIT = 32_767
NAME = re.compile(r"[\w+-]{1,64}")


def _name(value: str) -> str:
    # Names become dotted keys (--set), column names and SQL literals: no dots, quotes,
    # spaces or brackets.
    if not NAME.fullmatch(value):
        raise ValueError(
            f"'{value}' is not a name: use letters, digits, '_', '-' or '+' (at most 64)"
        )
    return value


# Booleans and integers are not taken for each other: `days: true` is an error, not 1.
Int = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]
Name = Annotated[str, AfterValidator(_name)]
Score = Annotated[int, Strict(), Field(ge=-SCORE_LIMIT, le=SCORE_LIMIT)]
Days = Annotated[int, Strict(), Field(ge=1, le=DAYS_LIMIT)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Model):
    """A document: its title, who published it and when, and where to read it (the document
    itself: a site's home page is not a source)."""

    title: str
    publisher: str | None = None
    date: str | None = None
    url: str | None = None
    unverified: Flag = False
    note: str | None = None

    @model_validator(mode="after")
    def _not_a_home_page(self) -> Source:
        if self.url is not None and urlsplit(self.url).path.strip("/") == "":
            raise ValueError(
                f"'{self.url}' is a home page, not a document: name the page that says it, "
                "or give the title, publisher and date without a url"
            )
        return self


class Sourced(Model):
    """Anything carrying a documented number names its source, or says it is illustrative."""

    source: str
    note: str | None = None

    @model_validator(mode="after")
    def _illustrative_needs_reason(self) -> Sourced:
        if self.source == ILLUSTRATIVE and not (self.note and self.note.strip()):
            raise ValueError("an illustrative value needs a 'note' giving the reasoning")
        return self


class StartScore(Sourced):
    value: Score


class ScoreBounds(Sourced):
    min: Score | None = None
    max: Score | None = None


class Tier(Sourced):
    name: Name
    min_score: Score | None = None


class Effect(Model):
    """A rule's direct effect: put on a list (for `days`, or until it is left) or cap the tier."""

    list: str | None = None
    days: Days | None = None
    tier_at_most: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Effect:
        if (self.list is None) == (self.tier_at_most is None):
            raise ValueError("an effect sets exactly one of 'list' or 'tier_at_most'")
        if self.tier_at_most is not None and self.days is not None:
            raise ValueError("a tier cap lasts while its record is live; 'days' is not allowed")
        return self


MAX_STEPS = 8  # bands of a diminishing scale


class Step(Model):
    """A band of a diminishing scale: one point per `units_per_point` units, up to `up_to`
    units counted in the window (the last band has no `up_to`)."""

    up_to: Annotated[int, Strict(), Field(ge=1, le=CAP_LIMIT)] | None = None
    units_per_point: Annotated[int, Strict(), Field(ge=1, le=CAP_LIMIT)]


class Diminishing(Sourced):
    """Points that shrink as a person's units (hours of volunteering) add up within the yearly
    window: each record counts `units_per_record` units; the points of u units are the sum
    over bands of whole points earned in each band, and a record adds what its units add to
    that sum."""

    units_per_record: Annotated[int, Strict(), Field(ge=1, le=CAP_LIMIT)] = 1
    steps: tuple[Step, ...] = Field(min_length=1, max_length=MAX_STEPS)

    @model_validator(mode="after")
    def _bands_rise(self) -> Diminishing:
        *inner, last = self.steps
        if any(s.up_to is None for s in inner) or last.up_to is not None:
            raise ValueError("every band but the last has 'up_to'; the last has none")
        bounds = [s.up_to for s in inner]
        if bounds != sorted(set(bounds)):
            raise ValueError("the bands' 'up_to' must rise strictly")
        return self


class Rule(Sourced):
    points: Score = 0
    expiry_days: Days | None = None
    yearly_cap: Annotated[int, Strict(), Field(ge=1, le=CAP_LIMIT)] | None = None
    effects: tuple[Effect, ...] = ()
    # Points by a diminishing scale instead of `points` (Weihai's hours of volunteering).
    diminishing: Diminishing | None = None
    # A record leaves its member's score below this value: the deduction is `points` or what
    # it takes to get there, whichever is more (Wuxi's court defaulters, below 650).
    push_below: Score | None = None

    @model_validator(mode="after")
    def _points_need_expiry(self) -> Rule:
        scored = self.points != 0 or self.diminishing or self.push_below is not None
        if scored and self.expiry_days is None:
            raise ValueError("a rule with points needs 'expiry_days'")
        if self.expiry_days is None and any(e.tier_at_most for e in self.effects):
            raise ValueError("a tier cap lasts while its record is live: it needs 'expiry_days'")
        if self.diminishing is not None and (self.points != 0 or self.yearly_cap is not None):
            raise ValueError("a diminishing scale replaces 'points' and 'yearly_cap'")
        if self.push_below is not None and self.points > 0:
            raise ValueError("'push_below' belongs to a deduction (points <= 0)")
        return self


class CleanYearBonus(Sourced):
    """Points for every member with no negative record in the last `every_days` days, given
    on each day t > 0 with t % every_days == 0 (Fuzhou's yearly bonus for a clean year)."""

    points: Annotated[int, Strict(), Field(ge=1, le=CAP_LIMIT)]
    every_days: Days = 365
    expiry_days: Days


class Recalculation(Sourced):
    """The published score is recalculated every `every_days` days: records, expiries and
    upheld appeals change it only then (Suqian's monthly recalculation)."""

    every_days: Days


class Condition(Model):
    tier_at_most: str | None = None
    tier_at_least: str | None = None
    record: str | None = None
    days: Days | None = None
    # A person list of another entity kind's pack (a module's): on while a member of that
    # kind whom the person represents is on this list of the kind's.
    represents: Name | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Condition:
        kinds = [
            k for k in ("tier_at_most", "tier_at_least", "record", "represents") if getattr(self, k)
        ]
        if len(kinds) != 1:
            raise ValueError(
                "a condition sets exactly one of tier_at_most, tier_at_least, record, represents"
            )
        if self.days is not None and self.record is None:
            raise ValueError("'days' belongs to a record condition")
        return self


MEMBER = "person"  # a consequence's target: the list's member, or a relation of the member's


class BehaviourEffect(Sourced):
    """What a sanction or privilege does to its holder's behaviour: every negative behaviour
    of `context` happens `multiplier` times as often (a loan ban's distress spiral)."""

    context: Name
    multiplier: float = Field(gt=0.0)


class Consequence(Model):
    name: Name
    context: Name
    target: Name = MEMBER  # or a relation of the member's entity kind, e.g. children
    effects: tuple[BehaviourEffect, ...] = ()


class ListDef(Sourced):
    kind: Literal["sanction", "privilege"]
    description: str | None = None
    entry: Condition | None = None
    min_stay_days: Annotated[int, Strict(), Field(ge=0, le=DAYS_LIMIT)] = 0
    exit: Condition | Literal["settlement"] | None = None
    permanent: Flag = False
    consequences: tuple[Consequence, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> ListDef:
        if self.permanent and self.exit is not None:
            raise ValueError("a permanent list has no 'exit'")
        if isinstance(self.exit, Condition) and self.exit.record is not None:
            raise ValueError("an exit condition is a tier condition or 'settlement'")
        return self


class Pack(Model):
    id: Name
    kind: Literal["municipal", "national"]
    title: str
    description: str | None = None
    sources: dict[str, Source] = {}
    start_score: StartScore | None = None
    score_bounds: ScoreBounds | None = None
    tiers: tuple[Tier, ...] = ()
    rules: dict[Name, Rule] = {}
    lists: dict[Name, ListDef] = {}
    clean_year_bonus: CleanYearBonus | None = None
    recalculation: Recalculation | None = None

    @property
    def tier_names(self) -> list[str]:
        return [t.name for t in self.tiers]

    def check(
        self, behaviours: set[str] | None = None, relations: tuple[str, ...] | None = None
    ) -> list[tuple[str, tuple]]:
        """Cross-field checks; returns (message, location) pairs. `relations`: the targets a
        consequence may have besides the member (entities.ADULT.relations)."""
        problems: list[tuple[str, tuple]] = []
        names = self.tier_names

        def source_ok(obj: Sourced, loc: tuple) -> None:
            if obj.source != ILLUSTRATIVE and obj.source not in self.sources:
                problems.append((f"unknown source '{obj.source}'", (*loc, "source")))

        if self.kind == "municipal":
            if self.start_score is None:
                problems.append(("a municipal pack needs 'start_score'", ("start_score",)))
            if len(self.tiers) < 1:
                problems.append(("a municipal pack needs at least one tier", ("tiers",)))
        else:
            for key in ("start_score", "score_bounds", "clean_year_bonus", "recalculation"):
                if getattr(self, key) is not None:
                    problems.append((f"a national pack has no {key}", (key,)))
            if self.tiers:
                problems.append(("a national pack has no tiers", ("tiers",)))
            for b, rule in self.rules.items():
                if rule.points or rule.diminishing or rule.push_below is not None:
                    problems.append(("a national pack's rules carry no points", ("rules", b)))
        for key in ("start_score", "clean_year_bonus", "recalculation"):
            if getattr(self, key) is not None:
                source_ok(getattr(self, key), (key,))
        if self.score_bounds is not None:
            source_ok(self.score_bounds, ("score_bounds",))
            lo, hi = self.score_bounds.min, self.score_bounds.max
            if lo is not None and hi is not None and lo > hi:
                problems.append(("min is above max", ("score_bounds", "min")))
        if len(set(names)) != len(names):
            problems.append(("tier names repeat", ("tiers",)))
        previous = None
        for i, tier in enumerate(self.tiers):
            source_ok(tier, ("tiers", i))
            last = i == len(self.tiers) - 1
            if last and tier.min_score is not None:
                problems.append(
                    ("the last (lowest) tier has no min_score", ("tiers", i, "min_score"))
                )
            if not last and tier.min_score is None:
                problems.append(("every tier but the last needs min_score", ("tiers", i)))
            if tier.min_score is not None:
                if previous is not None and tier.min_score >= previous:
                    problems.append(
                        (
                            "tier thresholds must fall strictly from best to worst "
                            f"({tier.min_score} after {previous})",
                            ("tiers", i, "min_score"),
                        )
                    )
                previous = tier.min_score

        def tier_ok(name: str | None, loc: tuple) -> None:
            if name is not None and name not in names:
                problems.append(
                    (f"unknown tier '{name}' (tiers: {', '.join(names) or 'none'})", loc)
                )

        def behaviour_ok(name: str, loc: tuple) -> None:
            if behaviours is not None and name not in behaviours:
                problems.append((f"unknown behaviour '{name}'", loc))

        for b, rule in self.rules.items():
            source_ok(rule, ("rules", b))
            behaviour_ok(b, ("rules", b))
            if rule.diminishing is not None:
                source_ok(rule.diminishing, ("rules", b, "diminishing"))
            if self.recalculation is not None and rule.push_below is not None:
                # The push reads the day's score, which a recalculated pack does not publish.
                problems.append(
                    ("'push_below' needs a daily score (no 'recalculation')", ("rules", b))
                )
            for j, eff in enumerate(rule.effects):
                loc = ("rules", b, "effects", j)
                if eff.list is not None and eff.list not in self.lists:
                    problems.append((f"unknown list '{eff.list}'", (*loc, "list")))
                tier_ok(eff.tier_at_most, (*loc, "tier_at_most"))
        for name, lst in self.lists.items():
            source_ok(lst, ("lists", name))
            for part in ("entry", "exit"):
                cond = getattr(lst, part)
                if isinstance(cond, Condition):
                    tier_ok(cond.tier_at_most, ("lists", name, part, "tier_at_most"))
                    tier_ok(cond.tier_at_least, ("lists", name, part, "tier_at_least"))
                    if cond.record is not None:
                        behaviour_ok(cond.record, ("lists", name, part, "record"))
            tier_entry = (
                lst.entry is not None and lst.entry.record is None and lst.entry.represents is None
            )
            if lst.entry is not None and lst.entry.represents is not None:
                problems.append(
                    (
                        "a list that follows another kind's list (represents) belongs in that "
                        "kind's pack",
                        ("lists", name),
                    )
                )
            if lst.exit == "settlement" and tier_entry:
                problems.append(
                    ("settlement exits a record-entered list only", ("lists", name, "exit"))
                )
            if lst.min_stay_days and not tier_entry:
                problems.append(("min_stay_days applies to tier-entered lists", ("lists", name)))
            for j, c in enumerate(lst.consequences):
                loc = ("lists", name, "consequences", j)
                if relations is not None and c.target not in (MEMBER, *relations):
                    known = ", ".join((MEMBER, *relations))
                    problems.append((f"unknown target '{c.target}' ({known})", (*loc, "target")))
                if c.effects and c.target != MEMBER:
                    problems.append(("behaviour effects act on the member only", (*loc, "effects")))
                for e, eff in enumerate(c.effects):
                    source_ok(eff, (*loc, "effects", e))
        return problems


def pydantic_problems(
    exc: ValidationError, model: type[BaseModel] | None = None
) -> list[tuple[str, tuple]]:
    """Pydantic's errors as (message, location); an unknown key names the keys allowed there
    and the closest one (`misattrib` -> did you mean 'misattribute'?)."""
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # Union branches add their type name to the location: drop those parts.
        loc = tuple(p for p in loc if p not in ("Condition", "literal['settlement']", "[key]"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
            allowed = allowed_keys(model, loc[:-1]) if model is not None else []
            msg = f"unknown key '{loc[-1]}'" + (
                did_you_mean(loc[-1], allowed) or f" (known: {', '.join(allowed)})"
                if allowed
                else ""
            )
        out.append((msg, loc))
    return out


def allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys a mapping at `loc` inside `model` may hold ([] when it is not a model)."""
    kinds: list[Any] = [model]
    for part in loc:
        nxt: list[Any] = []
        for kind in _branches(kinds):
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                field = kind.model_fields.get(str(part))
                if field is not None:
                    nxt.append(field.annotation)
            elif get_origin(kind) in (dict, list, tuple):  # tuple[X, ...]: X
                nxt += [arg for arg in get_args(kind)[-2:] if arg is not Ellipsis][-1:]
        kinds = nxt
    keys: list[str] = []
    for kind in _branches(kinds):
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            keys += [k for k in kind.model_fields if k not in keys]
    return keys


def _branches(kinds: list[Any]) -> list[Any]:
    """Types with Annotated, Optional and unions unpacked."""
    out: list[Any] = []
    for kind in kinds:
        origin = get_origin(kind)
        if origin is Annotated:
            out += _branches([get_args(kind)[0]])
        elif origin in (Union, types.UnionType):
            out += _branches(list(get_args(kind)))
        else:
            out.append(kind)
    return out


def raise_first(problems: list[tuple[str, tuple]], file: str | Path, lines: Lines) -> None:
    if problems:
        msg, loc = problems[0]
        more = f" (and {plural(len(problems) - 1, 'more problem')})" if len(problems) > 1 else ""
        field = ".".join(str(p) for p in loc) or None
        raise XinyongError(msg + more, file=file, line=line_of(lines, loc), field=field)


def validated(
    model: type[M], data: object, file: str | Path, lines: Lines, what: str, *check_args: Any
) -> M:
    """Validate YAML data as `model`, then its cross-checks; the first problem is raised with
    its file, line and field."""
    if not isinstance(data, dict):
        raise XinyongError(f"{what} is a YAML mapping", file=file, line=1)
    try:
        obj = model.model_validate(data)
    except ValidationError as exc:
        raise_first(pydantic_problems(exc, model), file, lines)
        raise  # pragma: no cover - raise_first always raises here
    raise_first(obj.check(*check_args), file, lines)
    return obj


def parse_pack(
    data: object, file: str | Path, lines: Lines, behaviours: set[str] | None = None
) -> Pack:
    return validated(Pack, data, file, lines, "a rule pack", behaviours)


def pack_path(ref: str, relative_to: Path | None = None) -> Path:
    """A pack reference is a built-in id (`rongcheng`) or a path to a YAML file."""
    return resolve(ref, PACKS_DIR, relative_to)


def builtin_packs(kind: str = "person") -> list[str]:
    """The built-in packs of adults (`person`: municipal and national), or of another kind (a
    module's packs), told apart by their `kind:` line."""
    kinds = {"municipal", "national"} if kind == "person" else {kind}
    return sorted(p.stem for p in PACKS_DIR.glob("*.yaml") if _kind_line(p) in kinds)


def _kind_line(path: Path) -> str | None:
    found = re.search(r"^kind:\s*([\w-]+)", path.read_text(encoding="utf-8"), re.MULTILINE)
    return found.group(1) if found else None


def load_pack(ref: str | Path, behaviours: set[str] | None = None) -> Pack:
    path = pack_path(str(ref))
    if not path.exists() and not str(ref).endswith((".yaml", ".yml")):
        raise XinyongError(
            f"unknown pack '{ref}'{did_you_mean(str(ref), builtin_packs())} "
            f"(built-in: {', '.join(builtin_packs())})",
            field="pack",
        )
    data, lines = load_yaml(path)
    return parse_pack(data, path, lines, behaviours)
