"""The companies' parameters: the scenario's `companies:` section and the company packs it
embeds under `company_packs:` (docs/companies.md), declared once, with the checks of a
scenario that holds them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field

from xinyong.companies.schema import CompanyPack
from xinyong.errors import XinyongError
from xinyong.module import Problem
from xinyong.params import param
from xinyong.scenario import (
    ADULT_RELATIONS,
    INT32_MAX,
    Behaviour,
    Channel,
    Model,
    NonNegative,
    Observation,
    Probability,
    Scenario,
    _no_bool,
    load_scenario,
    lognormal_mass,
    referenced,
)
from xinyong.scheme.schema import Flag, Int, Name, Pack, validated
from xinyong.yamlio import Lines, line_of, load_yaml

SIZES = ("micro", "small", "medium", "large")  # the companies' groups, index 0 .. 3


class CompanyBehaviour(Behaviour):
    # Drawn once a year, on day `annual_day` of each year, for every company (an annual report
    # due), with probability min(1, base * risk): no deterrence, no distress.
    annual: Flag = False


class CompanyConsequences(Model):
    eta: Probability = param(
        0.05, doc="each company record multiplies the company's deter by 1 - eta", unit="share"
    )
    deter_floor: Probability = param(0.5, doc="the lowest a company's deter can go", unit="share")
    pi: Probability = param(
        1 / 300,
        doc="daily probability that a listed company settles (leaves company_defaulters)",
        unit="per listed company and day",
    )
    file_late: Probability = param(
        1 / 120,
        doc="daily probability that a listed company files late (leaves abnormal_operations)",
        unit="per listed company and day",
    )
    behaviour_effects: Flag = True


class CompanyObservation(Observation):
    false_report_rate: Probability = param(
        5e-5, doc="competitors' false reports", unit="per company and day"
    )
    false_report_channel: str = "complaints"


class Companies(Model):
    """The second entity kind (docs/companies.md)."""

    per_adult: NonNegative = param(doc="companies per adult", unit="companies per adult", le=10.0)
    size_shares: dict[str, Probability] = param(
        doc="share of companies of each size", unit="share", per="size"
    )
    full_indicators: dict[str, Probability] = param(
        doc="share with a full set of tax indicators", unit="share", per="size"
    )
    risk_sigma: NonNegative = param(0.7, doc="sigma of the lognormal risk trait (mean 1)")
    annual_day: Int = param(
        180, doc="day of the year annual reports fall due", unit="day", ge=0, le=364
    )
    no_income_share: Probability = param(
        0.05, doc="share rated M (no business income) each year", unit="share"
    )
    packs: tuple[str, ...] = Field(min_length=1)
    channels: dict[Name, Channel]
    behaviours: dict[Name, CompanyBehaviour]
    observation: CompanyObservation = CompanyObservation()
    consequences: CompanyConsequences = CompanyConsequences()
    # Hand-made true events: {day: [[company, behaviour], ...]} (teaching, tests).
    script: dict[Annotated[int, BeforeValidator(_no_bool)], tuple[tuple[Int, str], ...]] = {}  # noqa: RUF012

    def count(self, adults: int) -> int:
        """round(per_adult x adults), half to even."""
        return round(self.per_adult * adults)  # Python's round, as for children


def check(sc: Scenario) -> list[Problem]:
    """The companies' section against the rest of the scenario."""
    problems: list[tuple[str, tuple]] = []
    co: Companies | None = getattr(sc, "companies", None)
    if co is None:
        if sc.company_packs:
            problems.append(("company packs without a 'companies' section", ("company_packs",)))
        return problems
    at = ("companies",)
    for key in ("size_shares", "full_indicators"):
        values = getattr(co, key)
        if set(values) != set(SIZES):
            problems.append((f"give a value for each size: {', '.join(SIZES)}", (*at, key)))
    if set(co.size_shares) == set(SIZES) and abs(sum(co.size_shares.values()) - 1) > 1e-9:
        problems.append(("size shares must add up to 1", (*at, "size_shares")))
    if co.count(sc.adults) > INT32_MAX:
        problems.append(("too many companies for 32-bit ids", (*at, "per_adult")))
    if lognormal_mass(co.risk_sigma, sc.population.trait_min, sc.population.trait_max) < 1e-6:
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
            problems.append((f"unknown channel '{beh.channel}'", (*at, "behaviours", b, "channel")))
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
    n = co.count(sc.adults)
    for day, events in co.script.items():
        if not 0 <= day < sc.days:
            problems.append((f"day {day} is outside the run (0..{sc.days - 1})", (*at, "script")))
        for i, (company, behaviour) in enumerate(events):
            if not 0 <= company < n:
                problems.append((f"no company {company}", (*at, "script", day, i)))
            if behaviour not in co.behaviours:
                problems.append(
                    (f"unknown company behaviour '{behaviour}'", (*at, "script", day, i))
                )
    packs = []
    for i, ref in enumerate(co.packs):
        if ref not in sc.company_packs:
            problems.append((f"'{ref}' is not a loaded company pack", (*at, "packs", i)))
        else:
            packs.append(sc.company_packs[ref])
    if sum(p.rating is not None for p in packs) > 1:
        problems.append(("at most one company pack holds a rating", (*at, "packs")))
    names = set(co.behaviours)
    company_lists = {n for p in packs for n in p.lists}
    seen: set[str] = set()
    for pid, pack in sc.company_packs.items():
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
    adult_lists = {n for p in sc.packs.values() for n in p.lists}
    for name in sorted(seen & adult_lists):
        problems.append((f"list '{name}' is also an adults' list", (*at, "packs")))
    return problems


def load(data: dict, path: Path, lines: Lines) -> None:
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
        file = referenced(ref, "company pack", path, lines, loc)  # the one path resolver
        pack_data, pack_lines = load_yaml(file)
        pack = validated(CompanyPack, pack_data, file, pack_lines, "a company pack")
        if pack.id in packs:
            raise XinyongError(
                f"id '{pack.id}' is already taken by another company pack in this scenario",
                file=file, line=pack_lines.get(("id",)), field="id",
            )  # fmt: skip
        refs[i] = pack.id
        packs[pack.id] = pack_data


def person_lists(sc: Scenario) -> list[Pack]:
    """Each company pack's person lists, as a pack of adults' lists of its own."""
    out = []
    for ref in sc.companies.packs:
        cp = sc.company_packs.get(ref)
        if cp is not None and cp.person_lists:
            out.append(
                Pack(id=cp.id, kind="national", title=cp.title, sources=cp.sources,
                     lists=cp.person_lists)
            )  # fmt: skip
    return out


def lists(sc: Scenario) -> set[str]:
    """The company lists of a scenario's packs."""
    return {name for ref in sc.companies.packs for name in sc.company_packs[ref].lists}


def count(sc: Scenario) -> int:
    return sc.companies.count(sc.adults)


def check_pack(data: dict, file: Path, lines: Lines, sc: Scenario) -> str:
    """A company pack file validated against the behaviours of `sc`'s companies (c1's when
    `sc` has none): what it holds, or the first problem with its file, line and field."""
    if sc.companies is None:
        sc = load_scenario("c1")
    pack = validated(CompanyPack, data, file, lines, "a company pack", set(sc.companies.behaviours))
    rated = "a rating, " if pack.rating is not None else ""
    return (
        f"company pack '{pack.id}': {rated}{len(pack.lists)} company lists, "
        f"{len(pack.person_lists)} person lists"
    )


# Memory (C1 at 10 M adults and 500 k companies x 365 days: 412 MiB more than R1 at peak):
PER_COMPANY = 400  # their lists in two worlds, rating counts, traits, legal representatives
PER_COMPANY_RECORD = 40  # company records stay in memory until the end of the run
PER_PERSON_LIST = 8  # each person list that follows companies widens every adult's lists


def memory_per_adult(sc: Scenario) -> float:
    co = sc.companies
    per_adult = PER_PERSON_LIST * sum(len(sc.company_packs[p].person_lists) for p in co.packs)
    daily = sum(
        b.base * co.channels[b.channel].detect / (365 if b.annual else 1)
        for b in co.behaviours.values()
    )
    per_company = PER_COMPANY + PER_COMPANY_RECORD * daily * sc.days
    return per_adult + co.per_adult * per_company
