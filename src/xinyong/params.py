"""Parameters declared once, with their metadata, and what is read off those declarations.

A parameter is a field of a scenario section (a pydantic model) declared with `param`: its
default, bounds, unit, description, source and whether it holds one value per city or per
group. The docs' parameter tables, the web designer's form and the modules' checks read the
declarations (`describe`); nothing re-describes a parameter. Compiled tables mark their
per-city arrays with `PER_CITY`, and `city_slice` cuts one city out of them, so a city engine
of a multi-city run cannot be handed another city's array by omission.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, is_dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

Per = Literal["scenario", "city", "group", "size"]
PER_CITY = {"per_city": True}  # dataclass field metadata: the array's first axis is the city


def param(
    default: Any = ...,
    *,
    doc: str,
    unit: str = "",
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    per: Per = "scenario",
    source: str = "illustrative",
) -> Any:
    """A declared parameter: a pydantic field carrying its unit, description, source and
    whether it is given per city, per group or per size class."""
    extra = {"unit": unit, "per": per, "source": source}
    return Field(default, ge=ge, gt=gt, le=le, description=doc, json_schema_extra=extra)


@dataclass(frozen=True)
class ParamRow:
    """One declared parameter, as the docs and the designer show it."""

    key: str  # dotted, from the scenario's top
    kind: str  # the value's type, in words
    default: Any
    unit: str
    bounds: str
    per: str
    doc: str
    source: str
    options: tuple[str, ...] = ()  # the values a choice (a Literal) allows


def describe(model: type[BaseModel], prefix: str) -> list[ParamRow]:
    """Every declared parameter of `model` and of the sections nested in it, depth first."""
    rows: list[ParamRow] = []
    for name, info in model.model_fields.items():
        key = f"{prefix}.{name}" if prefix else name
        nested = _model_in(info.annotation)
        if nested is not None:
            rows += describe(nested, key)
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else None
        if extra is None or info.description is None:
            continue  # not a declared parameter (a structure, or not yet declared)
        lo = hi = None
        for m in info.metadata:
            for name in ("ge", "gt"):
                lo = getattr(m, name, None) if getattr(m, name, None) is not None else lo
            hi = getattr(m, "le", None) if getattr(m, "le", None) is not None else hi
        bounds = "" if lo is None and hi is None else f"{_g(lo)} .. {_g(hi)}".strip()
        rows.append(
            ParamRow(
                key, _kind(info.annotation), None if info.is_required() else info.default,
                str(extra.get("unit", "")), bounds, str(extra.get("per", "scenario")),
                info.description, str(extra.get("source", "")), _options(info.annotation),
            )
        )  # fmt: skip
    return rows


def _g(x: float | None) -> str:
    if x is None:
        return ""
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:g}" if isinstance(x, float) else str(x)


def shown(default: Any) -> str:
    """A default as a reader writes it: 0.5, "micro 0.1, small 0.3", "A, B, M", required."""
    if default is None:
        return "required"
    if isinstance(default, float):
        return f"{default:g}"
    if isinstance(default, dict):
        return ", ".join(f"{k} {shown(v)}" for k, v in default.items()) or "none"
    if isinstance(default, list | tuple | set | frozenset):
        return ", ".join(shown(v) for v in default) or "none"
    return str(default)


def table(rows: list[ParamRow]) -> str:
    """The parameters as a Markdown table (docs/parameters.md)."""
    lines = [
        "| key | default | unit | bounds | given per | meaning | source of the default |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r.key}` | {shown(r.default)} | {r.unit} | {r.bounds} | {r.per} | {r.doc} "
            f"| {r.source} |"
        )
    return "\n".join(lines) + "\n"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The section model an annotation holds (`Section`, `Section | None`), if any."""
    candidates = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
    return None


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _options(annotation: Any) -> tuple[str, ...]:
    """The values of a Literal annotation (a choice), else none."""
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(str(v) for v in typing.get_args(annotation))
    return ()


def _kind(annotation: Any) -> str:
    base = (
        typing.get_args(annotation)[0]
        if typing.get_origin(annotation) is typing.Annotated
        else annotation
    )
    return getattr(base, "__name__", str(base))


def city_slice(tables: Any, k: int) -> Any:
    """City k's part of compiled tables, as city 0: every field marked PER_CITY is cut to its
    row k, in nested dataclasses and in dicts of them too."""
    if not is_dataclass(tables):
        return tables
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(tables):
        value = getattr(tables, f.name)
        if f.metadata.get("per_city"):
            assert isinstance(value, np.ndarray), f"{f.name}: per-city fields are arrays"
            changes[f.name] = value[k : k + 1]
        elif is_dataclass(value):
            changes[f.name] = city_slice(value, k)
        elif isinstance(value, dict) and any(is_dataclass(v) for v in value.values()):
            changes[f.name] = {key: city_slice(v, k) for key, v in value.items()}
    return dataclasses.replace(tables, **changes) if changes else tables
