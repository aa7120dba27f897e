"""What the same life costs in each city: a life history (a persona, YAML data) run exactly
through city packs, one city at a time, and compared side by side.

A persona is one adult whose acts are listed with their days: every act is recorded, by its
behaviour's channel, against the persona (`record: own`); `record: wrong` puts on the persona
a record of an act someone else did (a misattribution), `record: false_report` one of an act
nobody did. Nothing is drawn: no random behaviour, every channel sees every act, no appeals;
a court debt is settled only on the persona's `settle_days`. Each pack runs in the engine
itself (a quiet one-city scenario of two adults: the persona and the someone else), so the
result is the engine's, day by day, in both worlds: recorded (what the scheme does) and
shadow (what the persona's own acts alone would have done).
"""

from __future__ import annotations

import csv
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, Strict, model_validator

from xinyong import modules
from xinyong.errors import XinyongError
from xinyong.observe import CORRECT, FALSE_REPORT, MISATTRIBUTED, Records
from xinyong.scenario import Scenario, load_scenario
from xinyong.scheme.schema import Model, Name, load_pack, validated
from xinyong.yamlio import load_yaml, resolve

PERSONAS_DIR = Path(__file__).resolve().parent / "personas"
BASE = "cities"  # the behaviours, channels and national packs personas are run under
MAX_DAYS = 3650
DEFAULT_PACKS = (
    "rongcheng",
    "suqian",
    "xiamen-egret",
    "hangzhou-qianjiang",
    "fuzhou-jasmine",
    "weihai-haibei",
    "wuxi-afu",
    "shanghai-honest",
)
PERSONA, SOMEONE_ELSE = 0, 1
TRUTH = {"own": CORRECT, "wrong": MISATTRIBUTED, "false_report": FALSE_REPORT}
Day = Annotated[int, Strict(), Field(ge=0, lt=MAX_DAYS)]


class Act(Model):
    """One act on `day`, or one every `every_days` from `from_day` (up to `until_day`,
    excluded, or the end)."""

    behaviour: Name
    day: Day | None = None
    every_days: Annotated[int, Strict(), Field(ge=1, le=MAX_DAYS)] | None = None
    from_day: Day = 0
    until_day: Day | None = None
    record: Literal["own", "wrong", "false_report"] = "own"

    @model_validator(mode="after")
    def _one_timing(self) -> Act:
        if (self.day is None) == (self.every_days is None):
            raise ValueError("an act has either 'day' or 'every_days'")
        return self

    def days(self, last: int) -> range:
        if self.day is not None:
            return range(self.day, min(self.day + 1, last))
        end = last if self.until_day is None else min(self.until_day, last)
        return range(self.from_day, end, self.every_days or 1)


class Persona(Model):
    name: Name
    description: str = ""
    days: Annotated[int, Strict(), Field(ge=1, le=MAX_DAYS)] = 365
    acts: tuple[Act, ...] = ()
    settle_days: tuple[Day, ...] = ()  # days the persona pays every court debt

    def check(self, behaviours: set[str]) -> list[tuple[str, tuple]]:
        problems: list[tuple[str, tuple]] = []
        for i, act in enumerate(self.acts):
            if act.behaviour not in behaviours:
                problems.append((f"unknown behaviour '{act.behaviour}'", ("acts", i, "behaviour")))
            if act.day is not None and act.day >= self.days:
                problems.append((f"day {act.day} is after the last day", ("acts", i, "day")))
        for i, day in enumerate(self.settle_days):
            if day >= self.days:
                problems.append((f"day {day} is after the last day", ("settle_days", i)))
        return problems

    def timeline(self) -> dict[int, list[tuple[str, str]]]:
        """Day -> the acts of that day as (behaviour, record), in the order given."""
        out: dict[int, list[tuple[str, str]]] = {}
        for act in self.acts:
            for t in act.days(self.days):
                out.setdefault(t, []).append((act.behaviour, act.record))
        return out


def builtin_personas() -> list[str]:
    return sorted(p.stem for p in PERSONAS_DIR.glob("*.yaml"))


def load_persona(ref: str | Path, behaviours: set[str] | None = None) -> Persona:
    """A built-in persona by name, or a YAML file."""
    path = resolve(ref, PERSONAS_DIR)
    if path.parent == PERSONAS_DIR and not path.exists():
        known = ", ".join(builtin_personas())
        raise XinyongError(f"unknown persona '{ref}' (built-in: {known}; or give a .yaml path)")
    data, lines = load_yaml(path)
    if behaviours is None:
        behaviours = set(load_scenario(BASE).behaviours)
    return validated(Persona, data, path, lines, "a persona", behaviours)


def quiet_city(pack_ref: str, days: int, base: Scenario | None = None) -> Scenario:
    """A one-city scenario of two adults under this pack and the national packs, in which
    only scripted acts happen: every channel sees every act, correctly; no meetings, false
    reports, appeals or settlement; every module off."""
    sc = base if base is not None else load_scenario(BASE)
    pack = sc.packs.get(pack_ref) or load_pack(pack_ref, set(sc.behaviours))
    if pack.kind != "municipal":
        raise XinyongError(f"pack '{pack.id}' is not a city's (municipal) pack", field="packs")
    quiet: dict[str, Any] = {
        "population.adults": 2,
        "population.child_ratio": 0,
        "population.edges_per_adult": 0,
        "population.cross_city_share": 0,
        "days": days,
        "observation.false_report_rate": 0,
        "consequences.rho": 0,
        "consequences.pi": 0,
        "appeals.alpha": 0,
        f"packs.{pack.id}": pack.model_dump(mode="json", exclude_none=True),
        "cities": [{"name": pack.id, "share": 1.0, "pack": pack.id}],
    }
    for spec in modules.specs():  # every module off: its fields at their defaults
        quiet.update({name: default for name, (_, default) in spec.fields.items()})
    for b in sc.behaviours:
        quiet[f"behaviours.{b}.base"] = 0
    for c in sc.channels:
        quiet[f"channels.{c}.detect"] = 1
        quiet[f"channels.{c}.misattribute"] = 0
    return sc.with_(**quiet)


@dataclass
class CityLife:
    """One pack's day-by-day outcome for the persona (index = day), both worlds."""

    pack: str
    title: str
    start: int
    score: list[int] = field(default_factory=list)
    shadow_score: list[int] = field(default_factory=list)
    tier: list[str] = field(default_factory=list)
    shadow_tier: list[str] = field(default_factory=list)
    lists: list[list[str]] = field(default_factory=list)
    shadow_lists: list[list[str]] = field(default_factory=list)
    # List -> (kind, [consequence names]) for the lists of this city.
    consequences: dict[str, tuple[str, list[str]]] = field(default_factory=dict)

    def days_on(self, shadow: bool = False) -> dict[str, int]:
        out: dict[str, int] = {}
        for held in self.shadow_lists if shadow else self.lists:
            for name in held:
                out[name] = out.get(name, 0) + 1
        return out

    def reached(self, kind: str, held: list[str]) -> list[str]:
        return [c for name in held if self.consequences[name][0] == kind
                for c in self.consequences[name][1]]  # fmt: skip

    def summary(self) -> dict[str, Any]:
        last = -1
        return {
            "pack": self.pack,
            "title": self.title,
            "start": self.start,
            "score": self.score[last],
            "shadow_score": self.shadow_score[last],
            "grade": self.tier[last],
            "shadow_grade": self.shadow_tier[last],
            "lists": self.lists[last],
            "sanctions": self.reached("sanction", self.lists[last]),
            "privileges": self.reached("privilege", self.lists[last]),
            "days_on": self.days_on(),
            "shadow_days_on": self.days_on(shadow=True),
        }


def run_persona(
    persona: Persona, packs: tuple[str, ...] | list[str] = DEFAULT_PACKS
) -> list[CityLife]:
    """The persona's life under each pack, in the order given."""
    base = load_scenario(BASE)
    return [live(persona, quiet_city(ref, persona.days, base)) for ref in packs]


def live(persona: Persona, sc: Scenario) -> CityLife:
    """Run the persona's acts through a quiet one-city scenario (quiet_city), day by day."""
    from xinyong.engine import Simulation

    timeline = persona.timeline()
    own = {t: [[PERSONA, b] for b, how in acts if how == "own"] for t, acts in timeline.items()}
    sim = Simulation(sc.with_(script={t: evs for t, evs in own.items() if evs}))
    behaviours = list(sc.behaviours)
    channels = list(sc.channels)
    observe_day = sim.observation.day

    def day_with_others(t: int):
        def day(rng, events, positive):
            records, tallies = observe_day(rng, events, positive)
            others = [(b, how) for b, how in timeline.get(t, []) if how != "own"]
            if not others:
                return records, tallies
            n = len(others)
            beh = np.array([behaviours.index(b) for b, _ in others])
            extra = (
                np.full(n, PERSONA, records.person.dtype),
                beh.astype(records.behaviour.dtype),
                np.array(
                    [channels.index(sc.behaviours[b].channel) for b, _ in others],
                    records.channel.dtype,
                ),
                np.array([TRUTH[how] for _, how in others], records.truth.dtype),
                np.array(
                    [SOMEONE_ELSE if how == "wrong" else -1 for _, how in others],
                    records.actor.dtype,
                ),
            )
            mine = (records.person, records.behaviour, records.channel, records.truth,
                    records.actor)  # fmt: skip
            return Records.concat([mine, extra], records.positive), tallies

        return day

    pack = sc.packs[sc.cities[0].pack]
    governing = [pack, *sc.national()]
    life = CityLife(pack=pack.id, title=pack.title, start=pack.start_score.value)
    for p in governing:
        for name, lst in p.lists.items():
            life.consequences[name] = (lst.kind, [c.name for c in lst.consequences])
    names = sim.tables.scheme.lists
    tiers = sim.tables.scheme.tier_names[0]
    settle = set(persona.settle_days)
    st = sim.scheme.state
    for t in range(persona.days):
        sim.observation.day = day_with_others(t)
        sim.consequences.pi = 1.0 if t in settle else 0.0
        sim.step(t)
        for w, (score, tier, held) in enumerate(
            [(life.score, life.tier, life.lists),
             (life.shadow_score, life.shadow_tier, life.shadow_lists)]
        ):  # fmt: skip
            score.append(int(st.score[PERSONA, w]))
            tier.append(tiers[st.tier[PERSONA, w]])
            bits = int(st.bits[PERSONA, w])
            held.append([n for i, n in enumerate(names) if bits >> i & 1])
    sim.finish()
    return life


# -- output --------------------------------------------------------------------------------


def write_csv(lives: list[CityLife], path: Path) -> None:
    """One row per pack and day."""
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["pack", "day", "score", "shadow_score", "grade", "shadow_grade", "lists",
                      "shadow_lists", "sanctions", "privileges"])  # fmt: skip
        for life in lives:
            for t in range(len(life.score)):
                out.writerow([
                    life.pack, t, life.score[t], life.shadow_score[t], life.tier[t],
                    life.shadow_tier[t], ";".join(life.lists[t]), ";".join(life.shadow_lists[t]),
                    ";".join(life.reached("sanction", life.lists[t])),
                    ";".join(life.reached("privilege", life.lists[t])),
                ])  # fmt: skip


def finding(persona: Persona, lives: list[CityLife]) -> str:
    """One sentence: how far apart the same life ends."""
    sanctioned = [x.pack for x in lives if x.reached("sanction", x.lists[-1])]
    grades = {x.pack: x.tier[-1] for x in lives}
    wrong = [
        x.pack
        for x in lives
        if x.lists[-1] != x.shadow_lists[-1] or x.score[-1] != x.shadow_score[-1]
    ]
    parts = [f"After {persona.days} days the same life ends in {len(set(grades.values()))} "
             f"different grades across {len(lives)} cities"]  # fmt: skip
    parts.append(
        f"under sanctions in {len(sanctioned)} ({', '.join(sanctioned)})" if sanctioned
        else "under no sanction anywhere"
    )  # fmt: skip
    if wrong:
        parts.append(f"and records of acts not the persona's change the outcome in {len(wrong)}")
    return ", ".join(parts) + "."


WHOSE = {"own": "", "wrong": " (someone else's act, recorded against the persona)",
         "false_report": " (nobody's act: a false report against the persona)"}  # fmt: skip


def describe(act: Act) -> str:
    when = f"day {act.day}" if act.day is not None else f"every {act.every_days} days"
    if act.day is None and act.from_day:
        when += f" from day {act.from_day}"
    if act.day is None and act.until_day is not None:
        when += f" until day {act.until_day}"
    return f"{act.behaviour}: {when}{WHOSE[act.record]}"


def body_html(persona: Persona, lives: list[CityLife]) -> str:
    """The finding, the points gained or lost per city over time (one chart: plotly.js must be
    on the page), the side-by-side table and the life as data, as an HTML fragment."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for life in lives:
        fig.add_scatter(
            x=list(range(len(life.score))),
            y=[s - life.start for s in life.score],
            mode="lines",
            name=html.escape(life.pack),
            line={"shape": "hv"},
            customdata=life.tier,
            hovertemplate=(
                "day %{x}: %{y:+d} points, grade %{customdata}<extra>%{fullData.name}</extra>"
            ),
        )
    fig.update_layout(
        title=html.escape(f"Points gained or lost since the start, {persona.name}, per city"),
        xaxis_title="day",
        yaxis_title="score minus the city's start",
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
    )
    chart = fig.to_html(full_html=False, include_plotlyjs=False, div_id="persona-chart")
    e = html.escape
    rows = []
    for life in lives:
        s = life.summary()
        rows.append(
            "<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in (
                s["title"], f"{s['score']} (from {s['start']})", s["grade"],
                ", ".join(s["lists"]) or "none", ", ".join(s["sanctions"]) or "none",
                ", ".join(s["privileges"]) or "none",
                ", ".join(f"{k} {v}" for k, v in s["days_on"].items()) or "none",
                f"{s['shadow_score']}, {s['shadow_grade']}",
            )) + "</tr>"
        )  # fmt: skip
    head = ("city scheme", "score at the end", "grade", "lists", "sanctions", "privileges",
            "days on each list", "own acts alone: score, grade")  # fmt: skip
    acts = "".join(f"<li>{e(describe(a))}</li>" for a in persona.acts)
    settle = (
        f"<p>Pays every court debt on day(s) {e(', '.join(map(str, persona.settle_days)))}.</p>"
        if persona.settle_days
        else ""
    )
    return f"""<h1>{e(persona.name)}</h1>
<p>{e(persona.description)}</p>
<p><strong id="finding">{e(finding(persona, lives))}</strong></p>
{chart}
<div class="scroll"><table class="data" id="cities">
<thead><tr>{"".join(f"<th>{e(h)}</th>" for h in head)}</tr></thead>
<tbody>{"".join(rows)}</tbody></table></div>
<h2>The life, as data</h2><ul>{acts}</ul>{settle}
<p>Run exactly (no sampling) through each city's pack and the national lists: every act is
recorded, nothing is appealed. Synthetic: no real person's data.</p>"""


def write_html(persona: Persona, lives: list[CityLife], path: Path) -> None:
    """A self-contained page (plotly.js embedded): body_html."""
    from plotly.offline import get_plotlyjs

    e = html.escape
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(persona.name)}: the same life in {len(lives)} cities</title>
<style>body{{font-family:system-ui,sans-serif;max-width:72rem;margin:1rem auto;padding:0 1rem}}
table{{border-collapse:collapse;width:100%;display:block;overflow-x:auto}}
td,th{{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}}</style>
<script charset="utf-8">{get_plotlyjs()}</script></head>
<body>{body_html(persona, lives)}</body></html>"""
    path.write_text(page, "utf-8")


def write_outputs(persona: Persona, lives: list[CityLife], out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "persona.html", "csv": out / "persona.csv", "json": out / "persona.json"}
    write_html(persona, lives, paths["html"])
    write_csv(lives, paths["csv"])
    summary = {"persona": persona.model_dump(mode="json"), "finding": finding(persona, lives),
               "cities": [x.summary() for x in lives]}  # fmt: skip
    paths["json"].write_text(json.dumps(summary, indent=1), "utf-8")
    return paths
