"""The scheme designer: a scenario as a form, the form back to a scenario, and validation.

A design is a resolved scenario (packs embedded), kept as YAML under RUNS/.designs/ by the
hash of its text. The form shows the parameters people change (points, grade thresholds,
lists and their sanctions, channels' error rates and group weights, a few rates); every
field is named by its dotted scenario key, the key `--set` takes. Values are read as
`--set` reads them (YAML scalars, so `1/200` is a rate). Validation is `xinyong validate`'s:
the design is written to a file and loaded by `load_scenario`; besides its one-line error,
every problem the schema and the cross-checks find is shown next to its field.

Uploaded YAML is parsed by the project's strict reader (safe loader: no tags that build
objects, bounded aliases, no repeated keys) and is only ever data. A scenario that refers to
other files (`extends: ../x.yaml`, a pack of any kind given by path, also through `set:`) is
refused by the one path resolver (`yamlio.builtin_only`): only built-in names and embedded
packs are followed, so an upload cannot read the server's files nor learn which exist.
"""

from __future__ import annotations

import copy
import hashlib
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from xinyong import modules
from xinyong.errors import XinyongError
from xinyong.params import ParamRow, describe
from xinyong.scenario import (
    GROUPS,
    Scenario,
    builtin_scenarios,
    load_scenario,
    parse_value,
    scenario_model,
    set_dotted,
)
from xinyong.scheme.schema import builtin_packs, parse_pack, pydantic_problems
from xinyong.yamlio import builtin_only, parse_yaml

DESIGN_FILE = "design.yaml"  # the name validation messages give the design


@dataclass
class Field:
    """One input of the form, named by its dotted scenario key."""

    key: str
    value: str
    kind: str = "number"  # number, text, check, select
    options: tuple[str, ...] = ()
    optional: bool = False
    label: str = ""
    error: str | None = None


@dataclass
class Table:
    """Rows of fields under column heads; a row's first cell is its label."""

    columns: list[str]
    rows: list[tuple[str, list[Field | None]]] = field(default_factory=list)
    title: str = ""
    note: str = ""


@dataclass
class Section:
    id: str
    title: str
    note: str
    tables: list[Table] = field(default_factory=list)


@dataclass
class Problem:
    message: str
    field: str | None
    line: int | None = None


@dataclass
class Checked:
    """A validated design: the scenario, or the one-line error and every problem found."""

    scenario: Scenario | None
    error: str | None = None
    problems: list[Problem] = field(default_factory=list)


# Starting points.


def from_scenario(name: str) -> dict[str, Any]:
    """A built-in scenario's resolved document."""
    if name not in builtin_scenarios():
        raise XinyongError(
            f"unknown scenario '{name}' (built-in: {', '.join(builtin_scenarios())})"
        )
    return load_scenario(name).model_dump(mode="json")


def from_pack(pack_id: str) -> dict[str, Any]:
    """R1's world under one built-in pack: a municipal pack governs the one city (with the
    national defaulter list), a national pack is added to R1's."""
    if pack_id not in builtin_packs():
        raise XinyongError(f"unknown pack '{pack_id}' (built-in: {', '.join(builtin_packs())})")
    text = f"extends: r1\nname: {pack_id}\n"
    probe = yaml.safe_load((Path(builtin_pack_dir()) / f"{pack_id}.yaml").read_text())
    if probe.get("kind") == "municipal":
        text += f"cities: [{{name: city, share: 1.0, pack: {pack_id}}}]\n"
    else:
        text += f"national_packs: [{pack_id}]\n"
    data = _load_text(text).model_dump(mode="json")
    used = {c["pack"] for c in data["cities"]} | set(data["national_packs"])
    data["packs"] = {k: v for k, v in data["packs"].items() if k in used}
    lists = {n for p in data["packs"].values() for n in p.get("lists", {})}
    if data["consequences"]["association_list"] not in lists:
        data["consequences"]["rho"] = 0.0  # no blacklist to meet neighbours on
    data["description"] = f"R1's population and channels under the {pack_id} pack."
    return data


def builtin_pack_dir() -> Path:
    from xinyong.scheme.schema import PACKS_DIR

    return PACKS_DIR


# Validation: the same loader as `xinyong validate`.


def _load_text(text: str) -> Scenario:
    with tempfile.TemporaryDirectory(prefix="xinyong-design-") as tmp:
        path = Path(tmp) / DESIGN_FILE
        path.write_text(text, "utf-8")
        try:
            with builtin_only(path):  # nothing else the design names may be a file
                return load_scenario(path)
        except XinyongError as err:
            raise _renamed(err, str(path)) from None


def _renamed(err: XinyongError, tmp: str) -> XinyongError:
    file = err.file
    if file is not None:
        file = DESIGN_FILE if file == tmp else file.replace(str(Path(tmp).parent) + "/", "")
    return XinyongError(err.message, file=file, line=err.line, field=err.field)


def check(data: Any) -> Checked:
    """Validate a scenario document as `xinyong validate` does; on failure also collect every
    problem (schema, then cross-checks) with its field."""
    if not isinstance(data, dict):
        return Checked(None, f"{DESIGN_FILE}: a scenario is a YAML mapping", [])
    text = yaml.safe_dump(data, sort_keys=False)
    try:
        return Checked(_load_text(text))
    except XinyongError as err:
        first = Problem(err.message, err.field, err.line)
        return Checked(None, err.format(), _all_problems(data) or [first])


def _all_problems(data: dict[str, Any]) -> list[Problem]:
    try:
        sc = scenario_model().model_validate(data)
    except ValidationError as exc:
        found = pydantic_problems(exc, Scenario)
    else:
        found = sc.check()
    return [Problem(msg, ".".join(map(str, loc)) or None) for msg, loc in found]


def parse_upload(text: str, current: dict[str, Any] | None) -> tuple[dict[str, Any], Checked]:
    """An uploaded scenario, or a pack that replaces the current design's pack of its id."""
    try:
        data, lines = parse_yaml(text, "upload.yaml")
    except XinyongError as err:
        return {}, Checked(None, err.format(), [Problem(err.message, err.field, err.line)])
    if isinstance(data, dict) and data.get("kind") in ("municipal", "national"):
        if current is None:
            current = from_scenario("r1")
        try:
            pack = parse_pack(data, "upload.yaml", lines, set(current["behaviours"]))
        except XinyongError as err:
            return {}, Checked(None, err.format(), [Problem(err.message, err.field, err.line)])
        if pack.id not in current["packs"]:
            message = (
                f"the design has no pack '{pack.id}' to replace (packs: "
                f"{', '.join(current['packs'])}); upload a scenario that uses it"
            )
            return {}, Checked(None, f"upload.yaml: id: {message}", [Problem(message, "id")])
        merged = copy.deepcopy(current)
        merged["packs"][pack.id] = pack.model_dump(mode="json")
        return merged, check(merged)
    checked = check(data)
    if checked.scenario is None:
        return {}, checked
    return checked.scenario.model_dump(mode="json"), checked


# The design store.


def design_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def to_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False)


# The form.


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.10g}"
    return str(v)


def _num(key: str, v: Any, optional: bool = False, label: str = "") -> Field:
    return Field(key, _text(v), "number", optional=optional, label=label)


def sections(doc: dict[str, Any]) -> list[Section]:
    """The designer's sections for a scenario document."""
    out = [
        Section(
            "about",
            "Name",
            "What this design is called in the list of runs and in comparisons.",
            [
                Table(
                    ["", "value"],
                    [
                        ("name", [Field("name", _text(doc.get("name")), "text")]),
                        (
                            "description",
                            [
                                Field(
                                    "description",
                                    _text(doc.get("description")),
                                    "text",
                                    optional=True,
                                )
                            ],
                        ),
                    ],
                )
            ],
        ),
        _channels(doc),
    ]
    for pid, pack in (doc.get("packs") or {}).items():
        out.append(_pack(pid, pack, doc))
    out.append(_rates(doc))
    out += _module_sections(doc)
    return out


def _channels(doc: dict[str, Any]) -> Section:
    table = Table(
        ["channel", "detect", "misattribute", *[f"weight: {g}" for g in GROUPS]],
        note="detect: the share of behaviour a channel records; misattribute: the share of its "
        "records put on the wrong person, chosen by the victim weights (a group not given "
        "weighs 1).",
    )
    for name, ch in (doc.get("channels") or {}).items():
        weights = ch.get("weights") or {}
        table.rows.append(
            (
                name,
                [
                    _num(f"channels.{name}.detect", ch.get("detect")),
                    _num(f"channels.{name}.misattribute", ch.get("misattribute")),
                    *[
                        _num(f"channels.{name}.weights.{g}", weights.get(g), optional=True)
                        for g in GROUPS
                    ],
                ],
            )
        )
    groups = Table(
        ["", "value"],
        [
            (
                "minority share of adults",
                [
                    _num(
                        "population.minority_share",
                        (doc.get("population") or {}).get("minority_share"),
                    )
                ],
            )
        ],
        title="Groups",
    )
    return Section(
        "channels",
        "Channels and groups",
        "Who records what, how often wrongly, and whom the wrong records fall on.",
        [groups, table],
    )


def _pack(pid: str, pack: dict[str, Any], doc: dict[str, Any]) -> Section:
    base = f"packs.{pid}"
    tables = []
    tiers = pack.get("tiers") or []
    tier_names = tuple(t["name"] for t in tiers)
    if pack.get("start_score") is not None:
        rows = [
            ("start score", [_num(f"{base}.start_score.value", pack["start_score"].get("value"))])
        ]
        bounds = pack.get("score_bounds")
        if bounds is not None:
            rows.append(
                ("lowest score", [_num(f"{base}.score_bounds.min", bounds.get("min"), True)])
            )
            rows.append(
                ("highest score", [_num(f"{base}.score_bounds.max", bounds.get("max"), True)])
            )
        tables.append(Table(["", "value"], rows, title="Score"))
    if tiers:
        tables.append(
            Table(
                ["grade", "lowest score"],
                [
                    (
                        t["name"],
                        [
                            _num(f"{base}.tiers.{i}.min_score", t.get("min_score"), True)
                            if i < len(tiers) - 1
                            else None
                        ],
                    )
                    for i, t in enumerate(tiers)
                ],
                title="Grade thresholds",
                note="From best to worst; the last grade takes every lower score.",
            )
        )
    rules = pack.get("rules") or {}
    if rules:
        tables.append(
            Table(
                ["behaviour", "points", "expiry (days)", "yearly cap"],
                [
                    (
                        b,
                        [
                            _num(f"{base}.rules.{b}.points", r.get("points")),
                            _num(f"{base}.rules.{b}.expiry_days", r.get("expiry_days"), True),
                            _num(f"{base}.rules.{b}.yearly_cap", r.get("yearly_cap"), True),
                        ],
                    )
                    for b, r in rules.items()
                ],
                title="Points",
                note="Points a record of the behaviour adds (negative: deducts), how long they "
                "count, and the most points a year (positive behaviours).",
            )
        )
    for lname, lst in (pack.get("lists") or {}).items():
        tables += _list_tables(f"{base}.lists.{lname}", lname, lst, tier_names)
    title = pack.get("title") or pid
    return Section(
        f"pack-{pid}",
        f"Pack {pid}: {title}",
        f"A {pack.get('kind', '')} rule pack. Its sources and notes are kept as they are.",
        tables,
    )


def _list_tables(key: str, name: str, lst: dict[str, Any], tiers: tuple[str, ...]) -> list[Table]:
    entry = lst.get("entry") or {}
    exit_ = lst.get("exit")
    exit_cond = exit_ if isinstance(exit_, dict) else {}
    grade = ("", *tiers)
    rows: list[tuple[str, list[Field | None]]] = [
        (
            "entered at grade at most",
            [
                Field(
                    f"{key}.entry.tier_at_most",
                    _text(entry.get("tier_at_most")),
                    "select",
                    grade,
                    True,
                )
            ],
        ),
        (
            "entered at grade at least",
            [
                Field(
                    f"{key}.entry.tier_at_least",
                    _text(entry.get("tier_at_least")),
                    "select",
                    grade,
                    True,
                )
            ],
        ),
        (
            "entered by a record of",
            [Field(f"{key}.entry.record", _text(entry.get("record")), "text", optional=True)],
        ),
        ("minimum stay (days)", [_num(f"{key}.min_stay_days", lst.get("min_stay_days"), True)]),
        (
            "left at grade at least",
            [
                Field(
                    f"{key}.exit.tier_at_least",
                    _text(exit_cond.get("tier_at_least")),
                    "select",
                    grade,
                    True,
                )
            ],
        ),
        (
            "left at grade at most",
            [
                Field(
                    f"{key}.exit.tier_at_most",
                    _text(exit_cond.get("tier_at_most")),
                    "select",
                    grade,
                    True,
                )
            ],
        ),
        (
            "left on settlement",
            [Field(f"{key}.exit.settlement", _text(exit_ == "settlement"), "check")],
        ),
        ("permanent", [Field(f"{key}.permanent", _text(lst.get("permanent", False)), "check")]),
    ]
    rules = Table(["", "value"], rows, title=f"List {name} ({lst.get('kind')}): entry and exit")
    cons = lst.get("consequences") or []
    targets = ("person", "children")
    sanctions = Table(
        ["keep", "name", "context", "on"],
        title=f"List {name}: {'sanctions' if lst.get('kind') == 'sanction' else 'privileges'}",
        note="Untick to remove one; fill the last row to add one. Behaviour effects of a "
        "sanction are kept with it.",
    )
    for j, c in enumerate(cons):
        k = f"{key}.consequences.{j}"
        sanctions.rows.append(
            (
                str(j + 1),
                [
                    Field(f"{k}.keep", "true", "check"),
                    Field(f"{k}.name", _text(c.get("name")), "text"),
                    Field(f"{k}.context", _text(c.get("context")), "text"),
                    Field(f"{k}.target", _text(c.get("target", "person")), "select", targets),
                ],
            )
        )
    k = f"{key}.consequences.{len(cons)}"
    sanctions.rows.append(
        (
            "new",
            [
                None,
                Field(f"{k}.name", "", "text", optional=True),
                Field(f"{k}.context", "", "text", optional=True),
                Field(f"{k}.target", "person", "select", targets),
            ],
        )
    )
    return [rules, sanctions]


# The scenario-wide rates the form shows; their labels are their declarations'.
RATES = ("consequences.rho", "consequences.eta", "consequences.deter_floor",
         "observation.false_report_rate", "appeals.alpha", "appeals.appeal_days",
         "appeals.upheld")  # fmt: skip


def _declared() -> dict[str, ParamRow]:
    return {row.key: row for row in describe(scenario_model(), "")}


def _label(row: ParamRow) -> str:
    return f"{row.doc} ({row.unit})" if row.unit and row.unit != "share" else row.doc


def _rates(doc: dict[str, Any]) -> Section:
    declared = _declared()
    rows = [(_label(declared[key]), [_num(key, _get(doc, key))]) for key in RATES]
    return Section(
        "rates",
        "Association, deterrence, false reports and appeals",
        "Rates are daily probabilities or shares; a fraction such as 1/200 is read as one.",
        [Table(["", "value"], rows)],
    )


def _module_sections(doc: dict[str, Any]) -> list[Section]:
    """A section per module the design switches on: its declared single-valued parameters,
    numbers with their unit and bounds, switches as ticks, choices as lists."""
    declared = _declared()
    out = []
    for spec in modules.specs():
        if not doc.get(spec.section):
            continue
        rows = [
            (_bounded(r), [_module_field(r, _get(doc, k))])
            for k, r in declared.items()
            if k.startswith(f"{spec.section}.") and r.per == "scenario"
            and (r.kind in ("int", "float", "bool") or r.options)
        ]  # fmt: skip
        if rows:
            title = f"Module: {spec.name}"
            out.append(
                Section(
                    f"module-{spec.name}", title, "Its parameters.", [Table(["", "value"], rows)]
                )
            )
    return out


def _bounded(row: ParamRow) -> str:
    """A parameter's label with its bounds: 'least private score to approve (points, 350 ..
    950)'."""
    said = [row.unit] if row.unit else []
    said += [row.bounds] if row.bounds else []
    return f"{row.doc} ({', '.join(said)})" if said else row.doc


def _module_field(row: ParamRow, value: Any) -> Field:
    if row.kind == "bool":
        return Field(row.key, _text(bool(value)), "check")
    if row.options:
        return Field(row.key, _text(value), "select", row.options)
    return _num(row.key, value)


def fields(doc: dict[str, Any]) -> list[Field]:
    """Every field of the form, in order."""
    return [
        f
        for s in sections(doc)
        for t in s.tables
        for _, cells in t.rows
        for f in cells
        if f is not None
    ]


_CONSEQUENCE = re.compile(r"(.*\.consequences)\.(\d+)\.(keep|name|context|target)")


def apply(base: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
    """The base document with the form's values: blank optional fields removed, conditions
    left empty dropped, sanctions unticked removed and a filled new row added."""
    doc = copy.deepcopy(base)
    consequences: dict[str, dict[int, dict[str, Any]]] = {}
    every = fields(base)
    for f in every:  # settlement first: it replaces an exit condition
        if f.key.endswith(".exit.settlement"):
            exit_key = f.key.removesuffix(".settlement")
            if form.get(f.key) not in (None, "", "false", "off"):
                set_dotted(doc, exit_key, "settlement")
            elif _get(doc, exit_key) == "settlement":
                set_dotted(doc, exit_key, None)
    for f in every:
        if f.key.endswith(".exit.settlement"):
            continue
        if ".exit." in f.key and _get(doc, f.key.rsplit(".", 1)[0]) == "settlement":
            continue
        raw = form.get(f.key)
        m = _CONSEQUENCE.fullmatch(f.key)
        if m is not None:
            row = consequences.setdefault(m.group(1), {}).setdefault(int(m.group(2)), {})
            row[m.group(3)] = (raw or "").strip() if f.kind != "check" else raw is not None
            continue
        if f.kind == "check":
            value: Any = raw is not None and raw not in ("", "false", "off")
        elif raw is None or raw.strip() == "":
            value = None
        elif f.kind == "number":
            value = parse_value(raw.strip())
        else:
            value = raw.strip()
        if value is None and f.optional:
            _remove(doc, f.key)
        else:
            try:
                set_dotted(doc, f.key, value)
            except (KeyError, IndexError, ValueError, TypeError):
                continue
    for key, rows in consequences.items():
        old = _get(base, key) or []
        new = []
        for j in sorted(rows):
            row = rows[j]
            if j < len(old):
                if not row.get("keep"):
                    continue
                item = dict(old[j])
            elif row.get("name"):
                item = {}
            else:
                continue
            item.update({k: row[k] for k in ("name", "context", "target") if k in row})
            new.append(item)
        set_dotted(doc, key, new)
    _tidy_conditions(doc)
    return doc


def _get(doc: Any, key: str) -> Any:
    node = doc
    for part in key.split("."):
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


def _remove(doc: dict[str, Any], key: str) -> None:
    parent_key, _, last = key.rpartition(".")
    parent = _get(doc, parent_key) if parent_key else doc
    if isinstance(parent, dict):
        parent.pop(last, None)


def _tidy_conditions(doc: dict[str, Any]) -> None:
    """An entry or exit with nothing left in it is no condition (None)."""
    for pack in (doc.get("packs") or {}).values():
        for lst in (pack.get("lists") or {}).values():
            for part in ("entry", "exit"):
                cond = lst.get(part)
                if isinstance(cond, dict) and not any(v is not None for v in cond.values()):
                    lst[part] = None


def with_errors(
    doc: dict[str, Any], problems: list[Problem]
) -> tuple[list[Section], list[Problem]]:
    """The sections with each problem put next to its field; those without one returned."""
    secs = sections(doc)
    by_key = {f.key: f for s in secs for t in s.tables for _, cells in t.rows for f in cells if f}
    loose = []
    for p in problems:
        target = _field_for(p.field, by_key)
        if target is None:
            loose.append(p)
        else:
            target.error = p.message if target.error is None else f"{target.error}; {p.message}"
    return secs, loose


def _field_for(loc: str | None, by_key: dict[str, Field]) -> Field | None:
    if not loc:
        return None
    if loc in by_key:
        return by_key[loc]
    if loc.endswith(".exit") and f"{loc}.tier_at_least" in by_key:
        return by_key[f"{loc}.tier_at_least"]
    # A problem with a whole condition or row: its first field.
    for key, f in by_key.items():
        if key.startswith(loc + "."):
            return f
    # A problem deeper than any field (a rule's source, an effect): the nearest field above.
    parts = loc.split(".")
    while parts:
        parts.pop()
        prefix = ".".join(parts)
        for key, f in by_key.items():
            if key.startswith(prefix + ".") and prefix.count(".") >= 2:
                return f
    return None
