"""Scenarios: population, cities and their packs, channels, behaviours, consequences.

A scenario file may `extends:` another (a built-in name or a path) and `set:` dotted keys,
the same overrides the command line takes with `--set key=value`. The resolved scenario embeds
its packs, so a run directory's `scenario.yaml` repeats the run exactly.
"""

from __future__ import annotations

import copy
import math
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    model_validator,
)

from xinyong.errors import XinyongError
from xinyong.scheme.company_schema import CompanyPack
from xinyong.scheme.schema import (
    Days,
    Flag,
    Int,
    Name,
    Pack,
    builtin_packs,
    pack_path,
    parse_pack,
    validated,
)
from xinyong.yamlio import Lines, line_of, load_yaml, parse_yaml, resolve

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"
GROUPS = ("majority", "minority")  # index 0 and 1 in every array
ADULT_RELATIONS = ("children",)  # whom an adult's consequences can reach (entities.ADULT)
SIZES = ("micro", "small", "medium", "large")  # companies' groups, index 0 .. 3


INT32_MAX = 2**31 - 1  # adults and children are numbered with 32-bit ids


def _fraction(v: Any) -> Any:
    """Accept '1/200' as well as 0.005: the spec writes rates as fractions. Not true/false."""
    if isinstance(v, bool):
        raise ValueError("a number is expected, not true/false")
    if isinstance(v, str) and "/" in v:
        try:
            return float(Fraction(v.replace(" ", "")))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"not a number or fraction: {v!r}") from None
    return v


def _no_bool(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError("a number is expected, not true/false")
    return v


Probability = Annotated[float, BeforeValidator(_fraction), Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, BeforeValidator(_fraction), Field(ge=0.0, allow_inf_nan=False)]
Real = Annotated[float, BeforeValidator(_fraction), Field(allow_inf_nan=False)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Population(Model):
    adults: Int = Field(ge=1, le=INT32_MAX)
    child_ratio: NonNegative = 0.25
    minority_share: Probability = 0.10
    risk_sigma: NonNegative = 1.0
    civic_sigma: NonNegative = 1.0
    trait_min: Real = Field(default=0.1, gt=0.0)
    trait_max: Real = Field(default=10.0, gt=0.0)
    two_parent_share: Probability = 0.8
    edges_per_adult: Int = Field(default=4, ge=0, le=1000)  # degrees are 16-bit
    cross_city_share: Probability = 0.0

    @model_validator(mode="after")
    def _bounds_reachable(self) -> Population:
        if self.trait_min >= self.trait_max:
            raise ValueError("trait_min must be below trait_max")
        for sigma in (self.risk_sigma, self.civic_sigma):
            if lognormal_mass(sigma, self.trait_min, self.trait_max) < 1e-6:
                raise ValueError("trait bounds hold almost none of the lognormal's mass")
        return self


def lognormal_mass(sigma: float, lo: float, hi: float) -> float:
    """P(lo <= X <= hi) for X lognormal with mean 1 (log-mean -sigma^2/2)."""
    if sigma == 0:
        return 1.0 if lo <= 1.0 <= hi else 0.0
    mu = -(sigma**2) / 2

    def cdf(x: float) -> float:
        return 0.5 * (1 + math.erf((math.log(x) - mu) / (sigma * math.sqrt(2))))

    return cdf(hi) - cdf(lo)


class City(Model):
    name: Name
    share: Probability
    pack: str


class Channel(Model):
    detect: Probability
    misattribute: Probability = 0.0
    # Victim weight per group (misattribution, false reports); a group not named weighs 1.
    weights: dict[str, Real] = {}


class Behaviour(Model):
    sign: Literal["negative", "positive"]
    context: Name
    gravity: Annotated[int, Strict(), Field(ge=1, le=5)] | None = None
    channel: str
    base: Probability

    @model_validator(mode="after")
    def _gravity(self) -> Behaviour:
        if self.sign == "negative" and self.gravity is None:
            raise ValueError("a negative behaviour needs a gravity from 1 to 5")
        return self


class Consequences(Model):
    rho: Probability = 0.2
    association_behaviour: str = "associating_with_blacklisted"
    association_list: str = "blacklist"
    pi: Probability = 1 / 200
    eta: Probability = 0.05
    deter_floor: Probability = 0.5
    # The packs' behaviour effects (a sanction's `effects`) on or off: off for the audit's
    # world without the scheme.
    behaviour_effects: Flag = True

    # Gone (now pack data); accepted here only to say so where they were written.
    distress_factor: Any = None
    distress_sanction: Any = None
    distress_context: Any = None


class Observation(Model):
    false_report_rate: Probability = 2e-5
    false_report_behaviours: tuple[str, ...] = ()
    false_report_channel: str = "informant"


class Appeals(Model):
    alpha: Probability = 0.3
    appeal_days: Days = 60
    upheld: Probability = 0.5


class CompanyBehaviour(Behaviour):
    # Drawn once a year, on day `annual_day` of each year, for every company (an annual report
    # due), with probability min(1, base * risk): no deterrence, no distress.
    annual: Flag = False


class CompanyConsequences(Model):
    eta: Probability = 0.05
    deter_floor: Probability = 0.5
    pi: Probability = 1 / 300  # settlement of company_defaulters, per listed company and day
    file_late: Probability = 1 / 120  # late filing off abnormal_operations, per company and day
    behaviour_effects: Flag = True


class CompanyObservation(Observation):
    false_report_rate: Probability = 5e-5  # competitors' false reports, per company and day
    false_report_channel: str = "complaints"


class Companies(Model):
    """The second entity kind (docs/model.md, "Companies")."""

    per_adult: NonNegative = Field(le=10.0)
    size_shares: dict[str, Probability]
    full_indicators: dict[str, Probability]
    risk_sigma: NonNegative = 0.7
    annual_day: Int = Field(default=180, ge=0, le=364)
    no_income_share: Probability = 0.05
    packs: tuple[str, ...] = Field(min_length=1)
    channels: dict[Name, Channel]
    behaviours: dict[Name, CompanyBehaviour]
    observation: CompanyObservation = CompanyObservation()
    consequences: CompanyConsequences = CompanyConsequences()
    # Hand-made true events: {day: [[company, behaviour], ...]} (teaching, tests).
    script: dict[Annotated[int, BeforeValidator(_no_bool)], tuple[tuple[Int, str], ...]] = {}

    def count(self, adults: int) -> int:
        """round(per_adult x adults), half to even."""
        return round(self.per_adult * adults)  # Python's round, as for children


class AuditSettings(Model):
    """Judgments the audit needs: which sanction contexts count as related to a behaviour's
    context (AI Act Art. 5(1)(c)(i) asks about unrelated ones). A context is always related
    to itself."""

    related_contexts: dict[str, tuple[str, ...]] = {}
    reference_group: Literal["majority", "minority"] = "majority"


class Scenario(Model):
    name: str
    description: str = ""
    days: Int = Field(ge=1, le=32_000)  # int16 day state
    seed: Int = Field(default=0, ge=0, le=2**63 - 1)
    population: Population
    cities: tuple[City, ...] = Field(min_length=1)
    national_packs: tuple[str, ...] = ()
    channels: dict[Name, Channel]
    behaviours: dict[Name, Behaviour]
    consequences: Consequences = Consequences()
    observation: Observation = Observation()
    appeals: Appeals = Appeals()
    audit: AuditSettings = AuditSettings()
    # Hand-made true events added to the drawn ones: {day: [[adult, behaviour], ...]}
    # (teaching, tests). Part of the scenario so that a run directory repeats them.
    script: dict[Annotated[int, BeforeValidator(_no_bool)], tuple[tuple[Int, str], ...]] = {}
    packs: dict[str, Pack]
    companies: Companies | None = None
    company_packs: dict[str, CompanyPack] = {}

    @property
    def adults(self) -> int:
        return self.population.adults

    def national(self) -> list[Pack]:
        """The packs that govern every city's adults besides its municipal one: the national
        packs, then each company pack's person lists as a pack of its own."""
        out = [self.packs[p] for p in self.national_packs]
        for ref in self.companies.packs if self.companies is not None else ():
            cp = self.company_packs.get(ref)
            if cp is not None and cp.person_lists:
                out.append(
                    Pack(id=cp.id, kind="national", title=cp.title, sources=cp.sources,
                         lists=cp.person_lists)
                )  # fmt: skip
        return out

    def with_(self, **changes: Any) -> Scenario:
        """A copy with dotted-key overrides, e.g. `with_(**{"population.adults": 1000})`."""
        data = self.model_dump(mode="json")
        for key, value in changes.items():
            set_dotted(data, key.replace("__", "."), value)
        return validate_scenario(data, "<overrides>", {})

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_none=True), sort_keys=False)

    def check(self) -> list[tuple[str, tuple]]:
        problems: list[tuple[str, tuple]] = []
        if abs(sum(c.share for c in self.cities) - 1.0) > 1e-9:
            problems.append(("city shares must add up to 1", ("cities",)))
        if len({c.name for c in self.cities}) != len(self.cities):
            problems.append(("city names repeat", ("cities",)))
        for i, city in enumerate(self.cities):
            pack = self.packs.get(city.pack)
            if pack is None:
                problems.append((f"pack '{city.pack}' is not loaded", ("cities", i, "pack")))
            elif pack.kind != "municipal":
                problems.append((f"pack '{city.pack}' is not municipal", ("cities", i, "pack")))
        for i, ref in enumerate(self.national_packs):
            pack = self.packs.get(ref)
            if pack is None or pack.kind != "national":
                problems.append((f"'{ref}' is not a loaded national pack", ("national_packs", i)))
        for c, channel in self.channels.items():
            for g in channel.weights:
                if g not in GROUPS:
                    known = ", ".join(GROUPS)
                    problems.append(
                        (f"unknown group '{g}' ({known})", ("channels", c, "weights", g))
                    )
        for b, beh in self.behaviours.items():
            if beh.channel not in self.channels:
                problems.append((f"unknown channel '{beh.channel}'", ("behaviours", b, "channel")))
        cons = self.consequences
        for key in ("distress_factor", "distress_sanction", "distress_context"):
            if getattr(cons, key) is not None:
                problems.append(
                    (
                        "distress is now pack data: give the sanction an effect, e.g. "
                        "{name: loan_ban, context: finance, effects: [{context: finance, "
                        "multiplier: 2.0, source: illustrative, note: ...}]}",
                        ("consequences", key),
                    )
                )
        if cons.association_behaviour not in self.behaviours:
            problems.append(
                (
                    f"unknown behaviour '{cons.association_behaviour}'",
                    ("consequences", "association_behaviour"),
                )
            )
        obs = self.observation
        if obs.false_report_channel not in self.channels:
            problems.append(
                (
                    f"unknown channel '{obs.false_report_channel}'",
                    ("observation", "false_report_channel"),
                )
            )
        for i, b in enumerate(obs.false_report_behaviours):
            if b not in self.behaviours:
                problems.append(
                    (f"unknown behaviour '{b}'", ("observation", "false_report_behaviours", i))
                )
        if obs.false_report_rate > 0 and not obs.false_report_behaviours:
            problems.append(
                (
                    "false reports need false_report_behaviours",
                    ("observation", "false_report_behaviours"),
                )
            )
        for day, events in self.script.items():
            if not 0 <= day < self.days:
                problems.append((f"day {day} is outside the run (0..{self.days - 1})", ("script",)))
            for i, (adult, behaviour) in enumerate(events):
                if not 0 <= adult < self.adults:
                    problems.append((f"no adult {adult}", ("script", day, i)))
                if behaviour not in self.behaviours:
                    problems.append((f"unknown behaviour '{behaviour}'", ("script", day, i)))
        problems += self._check_references()
        problems += self._check_companies()
        names = set(self.behaviours)
        list_owner: dict[str, str] = {}
        for pid, pack in self.packs.items():
            for msg, loc in pack.check(names, ADULT_RELATIONS):
                problems.append((msg, ("packs", pid, *loc)))
            for lname in pack.lists:
                if pack.kind == "national" and lname in list_owner:
                    problems.append(
                        (f"list '{lname}' is defined twice", ("packs", pid, "lists", lname))
                    )
                list_owner.setdefault(lname, pid)
        return problems

    def _check_companies(self) -> list[tuple[str, tuple]]:
        problems: list[tuple[str, tuple]] = []
        co = self.companies
        if co is None:
            if self.company_packs:
                problems.append(("company packs without a 'companies' section", ("company_packs",)))
            return problems
        at = ("companies",)
        for key in ("size_shares", "full_indicators"):
            values = getattr(co, key)
            if set(values) != set(SIZES):
                problems.append((f"give a value for each size: {', '.join(SIZES)}", (*at, key)))
        if set(co.size_shares) == set(SIZES) and abs(sum(co.size_shares.values()) - 1) > 1e-9:
            problems.append(("size shares must add up to 1", (*at, "size_shares")))
        if co.count(self.adults) > INT32_MAX:
            problems.append(("too many companies for 32-bit ids", (*at, "per_adult")))
        if (
            lognormal_mass(co.risk_sigma, self.population.trait_min, self.population.trait_max)
            < 1e-6
        ):
            problems.append(
                ("trait bounds hold almost none of the lognormal's mass", (*at, "risk_sigma"))
            )
        for c, channel in co.channels.items():
            for g in channel.weights:
                if g not in SIZES:
                    problems.append(
                        (
                            f"unknown size '{g}' ({', '.join(SIZES)})",
                            (*at, "channels", c, "weights", g),
                        )
                    )
        for b, beh in co.behaviours.items():
            if beh.channel not in co.channels:
                problems.append(
                    (f"unknown channel '{beh.channel}'", (*at, "behaviours", b, "channel"))
                )
            if beh.sign != "negative":
                problems.append(("company behaviours are negative", (*at, "behaviours", b, "sign")))
        obs = co.observation
        if obs.false_report_channel not in co.channels:
            problems.append(
                (
                    f"unknown channel '{obs.false_report_channel}'",
                    (*at, "observation", "false_report_channel"),
                )
            )
        for i, b in enumerate(obs.false_report_behaviours):
            if b not in co.behaviours:
                problems.append(
                    (
                        f"unknown company behaviour '{b}'",
                        (*at, "observation", "false_report_behaviours", i),
                    )
                )
        if obs.false_report_rate > 0 and not obs.false_report_behaviours:
            problems.append(
                (
                    "false reports need false_report_behaviours",
                    (*at, "observation", "false_report_behaviours"),
                )
            )
        n = co.count(self.adults)
        for day, events in co.script.items():
            if not 0 <= day < self.days:
                problems.append(
                    (f"day {day} is outside the run (0..{self.days - 1})", (*at, "script"))
                )
            for i, (company, behaviour) in enumerate(events):
                if not 0 <= company < n:
                    problems.append((f"no company {company}", (*at, "script", day, i)))
                if behaviour not in co.behaviours:
                    problems.append(
                        (f"unknown company behaviour '{behaviour}'", (*at, "script", day, i))
                    )
        packs = []
        for i, ref in enumerate(co.packs):
            if ref not in self.company_packs:
                problems.append((f"'{ref}' is not a loaded company pack", (*at, "packs", i)))
            else:
                packs.append(self.company_packs[ref])
        if sum(p.rating is not None for p in packs) > 1:
            problems.append(("at most one company pack holds a rating", (*at, "packs")))
        names = set(co.behaviours)
        company_lists = {n for p in packs for n in p.lists}
        seen: set[str] = set()
        for pid, pack in self.company_packs.items():
            for msg, loc in pack.check(names, company_lists, ADULT_RELATIONS):
                problems.append((msg, ("company_packs", pid, *loc)))
            for name in [*pack.lists, *pack.person_lists]:
                if name in seen:
                    problems.append(
                        (f"list '{name}' is defined twice", ("company_packs", pid, "lists", name))
                    )
                seen.add(name)
        rated = any(g.rated for p in packs for lst in p.lists.values() for g in lst.while_any)
        if rated and not any(p.rating is not None for p in packs):
            problems.append(("a list holds on a grade, but no company pack rates", (*at, "packs")))
        adult_lists = {n for p in self.packs.values() for n in p.lists}
        for name in sorted(seen & adult_lists):
            problems.append((f"list '{name}' is also an adults' list", (*at, "packs")))
        return problems

    def _check_references(self) -> list[tuple[str, tuple]]:
        """Names that switch a mechanism on: a typo must be an error, not a mechanism
        silently off. And sizes that must fit the ids that number them."""
        problems: list[tuple[str, tuple]] = []
        children = round(self.population.child_ratio * self.adults)
        if children > INT32_MAX:
            problems.append(
                (
                    f"{children:,} children do not fit 32-bit ids (at most {INT32_MAX:,})",
                    ("population", "child_ratio"),
                )
            )
        packs = list(self.packs.values())
        lists = sorted({name for p in packs for name in p.lists})
        contexts = sorted({b.context for b in self.behaviours.values()})
        cons = self.consequences
        if cons.rho > 0 and cons.association_list not in lists:
            problems.append(
                (
                    f"unknown list '{cons.association_list}' (lists: {', '.join(lists) or 'none'})",
                    ("consequences", "association_list"),
                )
            )
        # A behaviour effect on a context no behaviour has would silently do nothing.
        for pid, pack in self.packs.items():
            for lname, lst in pack.lists.items():
                for j, c in enumerate(lst.consequences):
                    for e, eff in enumerate(c.effects):
                        if eff.context not in contexts:
                            at = ("packs", pid, "lists", lname, "consequences", j, "effects", e)
                            known = ", ".join(contexts)
                            message = f"unknown context '{eff.context}' (behaviours': {known})"
                            problems.append((message, (*at, "context")))
        return problems


def set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node: Any = data
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[int(part)]
            continue
        if part not in node or node[part] is None:
            node[part] = {}
        node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def validate_scenario(data: Any, file: str | Path, lines: Lines) -> Scenario:
    return validated(Scenario, data, file, lines, "a scenario")


def scenario_path(ref: str | Path, relative_to: Path | None = None) -> Path:
    path = resolve(ref, SCENARIOS_DIR, relative_to)
    if path.parent == SCENARIOS_DIR and not path.exists():
        known = ", ".join(builtin_scenarios())
        raise XinyongError(f"unknown scenario '{ref}' (built-in: {known}; or give a .yaml path)")
    return path


def builtin_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIOS_DIR.glob("*.yaml"))


def _raw_scenario(path: Path, depth: int = 0) -> tuple[dict, Lines]:
    """Read a scenario file and everything it extends, with the `set:` block applied."""
    if depth > 8:
        raise XinyongError("scenarios extend each other too deeply", file=path)
    data, lines = load_yaml(path)
    if not isinstance(data, dict):
        raise XinyongError("a scenario is a YAML mapping", file=path, line=1)
    overrides = data.pop("set", None) or {}
    parent = data.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str) or "\0" in parent:
            raise XinyongError(
                "names a scenario (built-in or a .yaml path)",
                file=path, line=lines.get(("extends",)), field="extends",
            )  # fmt: skip
        base, _ = _raw_scenario(scenario_path(parent, path.parent), depth + 1)
        base.pop("name", None)
        base.pop("description", None)
        for key, value in data.items():
            base[key] = value
        data = base
    if not isinstance(overrides, dict):
        raise XinyongError("'set' maps dotted keys to values", file=path, line=lines.get(("set",)))
    _load_packs(data, path, lines)
    _load_company_packs(data, path, lines)
    for key, value in overrides.items():
        try:
            set_dotted(data, str(key), value)
        except (KeyError, IndexError, ValueError, TypeError):
            raise XinyongError(
                "no such key to set", file=path, line=lines.get(("set", key)), field=str(key)
            ) from None
        # A problem with a value set here is reported at the line of its key under `set:`.
        if ("set", key) in lines:
            lines[_key_path(str(key))] = lines[("set", key)]
    return data, lines


def _key_path(key: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in key.split("."))


def _load_packs(data: dict, path: Path, lines: Lines) -> None:
    """Embed every pack the scenario names (cities and national) under `packs:`."""
    packs = data.setdefault("packs", {}) or {}
    if not isinstance(packs, dict):
        raise XinyongError(
            "a mapping of pack ids to packs", file=path, line=line_of(lines, ("packs",)),
            field="packs",
        )  # fmt: skip
    data["packs"] = packs
    refs: list[tuple[str, tuple]] = []
    # Shapes are checked by the schema later; only well-formed references are followed here.
    cities = data.get("cities")
    for i, city in enumerate(cities if isinstance(cities, list) else []):
        if isinstance(city, dict) and isinstance(city.get("pack"), str):
            refs.append((city["pack"], ("cities", i, "pack")))
    national = data.get("national_packs")
    for i, ref in enumerate(national if isinstance(national, list) else []):
        if isinstance(ref, str):
            refs.append((ref, ("national_packs", i)))
    for ref, loc in refs:
        if ref in packs:  # embedded (a resolved scenario, e.g. a run's scenario.yaml)
            continue
        file = pack_path(ref, path.parent)
        if "\0" in ref or not file.exists():
            raise XinyongError(
                f"pack '{ref}' not found",
                file=path,
                line=line_of(lines, loc),
                field=".".join(map(str, loc)),
            )
        pack_data, pack_lines = load_yaml(file)
        pack = parse_pack(pack_data, file, pack_lines)
        if pack.id in packs and _pack_or_none(packs[pack.id]) != pack:
            # Two different packs under one id: one of them would silently be dropped.
            other = "the built-in pack" if pack.id in builtin_packs() else "another pack"
            raise XinyongError(
                f"id '{pack.id}' is already taken by {other} of that id in this scenario; "
                "give this pack an id of its own",
                file=file,
                line=pack_lines.get(("id",)),
                field="id",
            )
        # The pack's id is how cities refer to it once embedded.
        _rename_ref(data, ref, pack.id)
        packs.setdefault(pack.id, pack_data)


def _load_company_packs(data: dict, path: Path, lines: Lines) -> None:
    """Embed the company packs the `companies` section names under `company_packs:`."""
    companies = data.get("companies")
    refs = companies.get("packs") if isinstance(companies, dict) else None
    if not isinstance(refs, list):
        return
    packs = data.setdefault("company_packs", {}) or {}
    if not isinstance(packs, dict):
        raise XinyongError(
            "a mapping of pack ids to company packs", file=path,
            line=line_of(lines, ("company_packs",)), field="company_packs",
        )  # fmt: skip
    data["company_packs"] = packs
    for i, ref in enumerate(refs):
        if not isinstance(ref, str) or ref in packs:
            continue
        loc = ("companies", "packs", i)
        file = pack_path(ref, path.parent)
        if "\0" in ref or not file.exists():
            raise XinyongError(
                f"company pack '{ref}' not found", file=path, line=line_of(lines, loc),
                field=".".join(map(str, loc)),
            )  # fmt: skip
        pack_data, pack_lines = load_yaml(file)
        pack = validated(CompanyPack, pack_data, file, pack_lines, "a company pack")
        if pack.id in packs:
            raise XinyongError(
                f"id '{pack.id}' is already taken by another company pack in this scenario",
                file=file, line=pack_lines.get(("id",)), field="id",
            )  # fmt: skip
        refs[i] = pack.id
        packs[pack.id] = pack_data


def _pack_or_none(data: Any) -> Pack | None:
    try:
        return Pack.model_validate(data)
    except ValidationError:
        return None


def _rename_ref(data: dict, ref: str, pack_id: str) -> None:
    cities = data.get("cities")
    for city in cities if isinstance(cities, list) else []:
        if isinstance(city, dict) and city.get("pack") == ref:
            city["pack"] = pack_id
    national = data.get("national_packs")
    if isinstance(national, list):
        data["national_packs"] = [pack_id if r == ref else r for r in national]


def parse_value(text: str) -> Any:
    """A command-line value, read as a YAML scalar ('0.1' -> 0.1, 'true' -> True)."""
    value, _ = parse_yaml(text, "<--set>")
    return value


def load_scenario(
    ref: str | Path = "r1",
    *,
    overrides: dict[str, Any] | None = None,
    adults: int | None = None,
    days: int | None = None,
    seed: int | None = None,
) -> Scenario:
    """Load a built-in scenario by name or a YAML file, applying overrides."""
    path = scenario_path(ref)
    data, lines = _raw_scenario(path)
    extra = dict(overrides or {})
    if adults is not None:
        extra["population.adults"] = adults
    if days is not None:
        extra["days"] = days
    if seed is not None:
        extra["seed"] = seed
    for key, value in extra.items():
        try:
            set_dotted(data, key, value)
        except (KeyError, IndexError, ValueError, TypeError):
            raise XinyongError("no such key to set", field=key) from None
    if extra:
        data = copy.deepcopy(data)
    try:
        return validate_scenario(data, path, lines)
    except XinyongError as err:
        # A problem in an override is reported against the override, not the file.
        if err.field is not None and any(err.field.startswith(k) for k in extra):
            raise XinyongError(err.message, field=err.field + " (from --set)") from None
        raise
