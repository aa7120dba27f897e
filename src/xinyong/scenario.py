"""Scenarios: population, cities and their packs, channels, behaviours, consequences.

A scenario file may `extends:` another (a built-in name or a path) and `set:` dotted keys,
the same overrides the command line takes with `--set key=value`. The resolved scenario embeds
its packs, so a run directory's `scenario.yaml` repeats the run exactly.
"""

from __future__ import annotations

import copy
import math
import re
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
    create_model,
    model_validator,
)

from xinyong import modules
from xinyong.errors import XinyongError
from xinyong.params import param
from xinyong.scheme.schema import (
    PACKS_DIR,
    Days,
    Flag,
    Int,
    Name,
    Pack,
    builtin_packs,
    parse_pack,
    validated,
)
from xinyong.words import did_you_mean
from xinyong.yamlio import Lines, line_of, load_yaml, parse_yaml, resolve

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"
GROUPS = ("majority", "minority")  # index 0 and 1 in every array
ADULT_RELATIONS = ("children",)  # whom an adult's consequences can reach (entities.ADULT)


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
# A victim weight: relative, so any bound far above 1 is no limit to a scheme; this one keeps
# sums of weights over millions of adults finite.
Weight = Annotated[float, BeforeValidator(_fraction), Field(ge=0.0, le=1e6, allow_inf_nan=False)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Population(Model):
    adults: Int = param(doc="number of adults", unit="adults", ge=1, le=INT32_MAX)
    child_ratio: NonNegative = param(
        0.25,
        doc="children per adult (children = round(child_ratio x adults), half to even)",
        unit="children per adult",
    )
    minority_share: Probability = param(
        0.10, doc="probability that a person belongs to the minority group", unit="share"
    )
    risk_sigma: NonNegative = param(
        1.0,
        doc="spread of the lognormal trait risk, which scales negative behaviour "
        "(mean 1 before truncation)",
    )
    civic_sigma: NonNegative = param(
        1.0,
        doc="spread of the lognormal trait civic, which scales positive behaviour "
        "(mean 1 before truncation)",
    )
    trait_min: Real = param(
        0.1, doc="lower bound of both traits; values outside are redrawn", gt=0.0
    )
    trait_max: Real = param(
        10.0, doc="upper bound of both traits; values outside are redrawn", gt=0.0
    )
    two_parent_share: Probability = param(
        0.8,
        doc="probability that a child's first parent's partner is its second parent",
        unit="share",
    )
    # Degrees are 16-bit.
    edges_per_adult: Int = param(
        4,
        doc="edges each adult proposes in the social graph (mean degree about twice this)",
        unit="edges",
        ge=0,
        le=1000,
    )
    cross_city_share: Probability = param(
        0.0,
        doc="probability that a proposed edge goes to any city instead of the adult's own",
        unit="share",
    )

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
    if sigma > 1e6:  # sigma**2 would overflow; log X's density is at most 1/(sigma sqrt(2 pi))
        return min(1.0, (math.log(hi) - math.log(lo)) / (sigma * math.sqrt(2 * math.pi)))
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
    weights: dict[str, Weight] = {}


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
    rho: Probability = param(
        0.2, doc="daily probability of meeting a neighbour (association)", unit="per adult and day"
    )
    association_behaviour: str = "associating_with_blacklisted"
    association_list: str = "blacklist"
    pi: Probability = param(
        1 / 200,
        doc="daily probability that a member of a settlement list settles",
        unit="per listed adult and day",
    )
    eta: Probability = param(
        0.05, doc="each negative record multiplies the adult's deter by 1 - eta", unit="share"
    )
    deter_floor: Probability = param(0.5, doc="the lowest deter can go", unit="factor")
    # The packs' behaviour effects (a sanction's `effects`) on or off: off for the audit's
    # world without the scheme.
    behaviour_effects: Flag = True

    # Gone (now pack data); accepted here only to say so where they were written.
    distress_factor: Any = None
    distress_sanction: Any = None
    distress_context: Any = None


class Observation(Model):
    false_report_rate: Probability = param(
        2e-5, doc="daily probability that an adult files a false report", unit="per adult and day"
    )
    false_report_behaviours: tuple[str, ...] = ()
    false_report_channel: str = "informant"


class Appeals(Model):
    alpha: Probability = param(
        0.3, doc="probability that the victim of a wrong negative record appeals", unit="share"
    )
    appeal_days: Days = param(60, doc="days from appeal to decision", unit="days")
    upheld: Probability = param(0.5, doc="probability that an appeal is upheld", unit="share")


class AuditSettings(Model):
    """Judgments the audit needs: which sanction contexts count as related to a behaviour's
    context (AI Act Art. 5(1)(c)(i) asks about unrelated ones). A context is always related
    to itself."""

    related_contexts: dict[str, tuple[str, ...]] = {}
    reference_group: Literal["majority", "minority"] = "majority"


class Calibration(Model):
    """Where a calibrated scenario's `set:` values came from (`xinyong calibrate`,
    docs/calibration.md): shown by `xinyong show`, never read by the engine."""

    targets: str
    sources: tuple[str, ...] = ()
    parameters: dict[str, tuple[float, float]]
    trials: Int = Field(ge=1)
    best_trial: Int = Field(ge=0)
    loss: NonNegative
    replicates: Int = Field(ge=1)
    seeds: tuple[Int, ...]
    adults: Int = Field(ge=1)
    days: Int = Field(ge=1)
    date: Annotated[str, BeforeValidator(lambda v: str(v))]
    achieved: dict[str, dict[str, float | None]] = {}


class Scenario(Model):
    name: str
    description: str = ""
    # Provenance of a calibrated scenario (first, so that `xinyong show` shows it on top).
    calibration: Calibration | None = None
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
    # Each module of the registry adds its own sections (module.Spec.fields): `scenario_model`
    # builds the model that holds them.

    @property
    def adults(self) -> int:
        return self.population.adults

    def national(self) -> list[Pack]:
        """The packs that govern every city's adults besides its municipal one: the national
        packs, then the adults' lists each module adds (modules.Spec.adult_packs)."""
        out = [self.packs[p] for p in self.national_packs]
        for _, spec in modules.active(self):
            if spec.adult_packs is not None:
                out += spec.adult_packs(self)
        return out

    def __reduce__(self) -> tuple:
        # The model with the modules' sections is built at run time (scenario_model): pickle
        # the values, and rebuild them with the receiving process's model.
        return (_from_json, (self.model_dump(mode="json"),))

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
        for spec in modules.specs():
            problems += spec.check(self)
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

    def _check_references(self) -> list[tuple[str, tuple]]:
        """Names that switch a mechanism on: a typo must be an error, not a mechanism
        silently off. And sizes that must fit the ids that number them."""
        problems: list[tuple[str, tuple]] = []
        children = self.population.child_ratio * self.adults  # finite: both are bounded
        if children > INT32_MAX:
            problems.append(
                (
                    f"{children:,.0f} children do not fit 32-bit ids (at most {INT32_MAX:,})",
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


MAX_KEY_PARTS = 32  # the deepest scenario key has 9 parts (packs.X.lists.Y.consequences.0...)


def key_parts(key: str) -> list[str]:
    """A dotted key's parts, refused in one line when it is deeper than any scenario key."""
    if key.count(".") >= MAX_KEY_PARTS:
        raise XinyongError(
            f"a key has at most {MAX_KEY_PARTS} parts",
            field=key[:80] + ("..." if len(key) > 80 else ""),
        )
    return key.split(".")


def set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key_parts(key)
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


_models: dict[int, type[Scenario]] = {}


def scenario_model() -> type[Scenario]:
    """`Scenario` with the sections of every registered module (rebuilt when the registry
    changes)."""
    model = _models.get(modules.version)
    if model is None:
        sections = {name: f for spec in modules.specs() for name, f in spec.fields.items()}
        model = create_model("Scenario", __base__=Scenario, __module__=__name__, **sections)
        _models[modules.version] = model
    return model


def _from_json(data: dict) -> Scenario:
    return scenario_model().model_validate(data)


def validate_scenario(data: Any, file: str | Path, lines: Lines) -> Scenario:
    try:
        return validated(scenario_model(), data, file, lines, "a scenario")
    except (ArithmeticError, RecursionError) as exc:  # a check computing with extreme numbers
        raise XinyongError(
            f"a number is too large or too deep for the model ({exc.__class__.__name__})",
            file=file,
        ) from None


def scenario_path(ref: str | Path, relative_to: Path | None = None) -> Path:
    path = resolve(ref, SCENARIOS_DIR, relative_to, what="scenario")
    if path.parent == SCENARIOS_DIR and not path.exists():
        known = ", ".join(builtin_scenarios())
        hint = did_you_mean(str(ref), builtin_scenarios())
        raise XinyongError(
            f"unknown scenario '{ref}'{hint} (built-in: {known}; or give a .yaml path)"
        )
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
        try:
            parent_path = scenario_path(parent, path.parent)
        except XinyongError as err:
            raise XinyongError(
                err.message, file=path, line=lines.get(("extends",)), field="extends"
            ) from None
        base, _ = _raw_scenario(parent_path, depth + 1)
        base.pop("name", None)
        base.pop("description", None)
        for key, value in data.items():
            base[key] = value
        data = base
    if not isinstance(overrides, dict):
        raise XinyongError("'set' maps dotted keys to values", file=path, line=lines.get(("set",)))
    _load_packs(data, path, lines)
    for spec in modules.specs():
        if spec.load is not None:
            spec.load(data, path, lines)
    for key, value in overrides.items():
        try:
            set_dotted(data, str(key), value)
        except XinyongError as err:
            raise XinyongError(
                err.message, file=path, line=lines.get(("set", key)), field=err.field
            ) from None
        except (KeyError, IndexError, ValueError, TypeError):
            raise XinyongError(
                "no such key to set", file=path, line=lines.get(("set", key)), field=str(key)
            ) from None
        # A problem with a value set here is reported at the line of its key under `set:`.
        if ("set", key) in lines:
            lines[_key_path(str(key))] = lines[("set", key)]
    return data, lines


def _key_path(key: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in key_parts(key))


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
        file = referenced(ref, "pack", path, lines, loc)
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


def referenced(ref: str, what: str, path: Path, lines: Lines, loc: tuple) -> Path:
    """The file of a pack the scenario at `path` names (through `resolve`, as every path a
    user gives); one line at the reference when it is refused or absent."""
    where = {"file": path, "line": line_of(lines, loc), "field": ".".join(map(str, loc))}
    try:
        file = resolve(ref, PACKS_DIR, path.parent, what=what)
    except XinyongError as err:
        raise XinyongError(err.message, **where) from None
    if not file.exists():
        raise XinyongError(f"{what} '{ref}' not found", **where)
    return file


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


# A number as the command line and --set take it: 1000000, 1_000_000, 1e6, 0.5, 1.5e-3.
NUMBER = re.compile(r"[-+]?(\d[\d_]*)?(\.\d[\d_]*|\.)?([eE][-+]?\d+)?")


def parse_number(text: str, field: str | None = None, *, whole: bool = False) -> int | float:
    """The one number syntax: a whole number written 1e6 or 2.5e3 is an integer; a number
    that is not finite (1e999) or, with `whole`, not a whole number is refused in one line."""
    t = text.strip()
    try:
        if not NUMBER.fullmatch(t) or not any(c.isdigit() for c in t):
            raise ValueError
        # Python's own syntax for the digits: '_' only between digits (1_000, not 1_).
        value: int | float = float(t) if re.search(r"[eE.]", t) else int(t)
    except ValueError:
        raise XinyongError(f"not a number: '{text[:80]}'", field=field) from None
    if not math.isfinite(value):
        raise XinyongError(f"not a finite number: '{text[:80]}'", field=field)
    if re.search(r"[eE]", t) and value == int(value):
        value = int(value)
    if whole and value != int(value):
        raise XinyongError(f"not a whole number: '{text[:80]}'", field=field)
    return int(value) if whole else value


def parse_value(text: str) -> Any:
    """A command-line value, read as a YAML scalar ('0.1' -> 0.1, 'true' -> True); numbers
    as `parse_number` reads them (YAML alone would take 1e6 for a string, .inf for a number)."""
    if NUMBER.fullmatch(text.strip()) and any(c.isdigit() for c in text):
        return parse_number(text)
    value, _ = parse_yaml(text, "<--set>")
    if isinstance(value, float) and not math.isfinite(value):
        raise XinyongError(f"not a finite number: '{text[:80]}'", field="--set")
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
        except XinyongError as err:
            raise XinyongError(err.message, field=f"{err.field} (from --set)") from None
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
