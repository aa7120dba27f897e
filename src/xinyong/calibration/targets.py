"""Calibration targets: published aggregates as data (docs/calibration.md).

A target file names, for each aggregate, the metric it constrains (a summary metric, a flow
derived from the run's tables, or the sum of several), the published value, how far from it
a run may land (`tolerance`, or `sd` for a stated uncertainty), the year, how the real-world
figure maps onto the model, and the source document. Built-in sets live beside this module.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from xinyong.audit.registry import SUMMARY_MEANINGS, module_audits
from xinyong.errors import XinyongError
from xinyong.modules import entities
from xinyong.scenario import Model, Real
from xinyong.scheme.schema import validated
from xinyong.yamlio import Lines, line_of, load_yaml, resolve

SETS_DIR = Path(__file__).resolve().parent / "sets"
COUNTS = ("adults", "children", "records")  # a run summary's counts
ADULT_FLOWS = {
    # name: (meaning, number of list names after it)
    "flow.listed_per_adult_year": ("entries onto list {} per adult and year", 1),
    "flow.left_per_adult_year": ("exits from list {} per adult and year", 1),
}


def flows_known() -> dict[str, tuple[str, int]]:
    """Every flow a run can give: the adults', and per kind of member a module adds, its
    entries and exits per member and year and its share of entries beside an adults' list."""
    out = dict(ADULT_FLOWS)
    for e in entities():
        out[f"flow.listed_per_{e.kind}_year"] = (
            f"entries onto {e.kind} list {{}} per {e.kind} and year",
            1,
        )
        out[f"flow.left_per_{e.kind}_year"] = (
            f"exits from {e.kind} list {{}} per {e.kind} and year",
            1,
        )
        out[f"flow.{e.kind}_share_of_listed"] = (
            f"share of the entries onto {e.kind} list {{}} and person list {{}} "
            f"that are {e.plural}",
            2,
        )
    return out


def _text(v: Any) -> Any:
    """Dates as YAML reads them (2021-05-17) are kept as their ISO text."""
    if isinstance(v, datetime.date):
        return v.isoformat()
    return v


def _metrics(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


Text = Annotated[str, BeforeValidator(_text), Field(min_length=1, max_length=2000)]


class Source(Model):
    document: Text
    publisher: Text
    date: Text
    url: Text | None = None


class Target(Model):
    # One metric, or several whose sum is compared (B+M: two rating shares).
    metric: Annotated[
        tuple[Annotated[str, Field(min_length=1, max_length=200)], ...],
        BeforeValidator(_metrics),
        Field(min_length=1, max_length=20),
    ]
    value: Real
    tolerance: Annotated[Real, Field(gt=0)] | None = None
    sd: Annotated[Real, Field(gt=0)] | None = None
    weight: Annotated[Real, Field(gt=0)] = 1.0
    year: Annotated[int, Field(ge=1900, le=2200)] | None = None
    mapping: Text | None = None
    source: Source
    note: Text | None = None

    @model_validator(mode="after")
    def _one_scale(self) -> Target:
        if self.tolerance is None and self.sd is None:
            raise ValueError("give a tolerance (how far a fit may land) or an sd (uncertainty)")
        if self.tolerance is not None and self.sd is not None:
            raise ValueError("give a tolerance or an sd, not both")
        return self

    @property
    def label(self) -> str:
        return " + ".join(self.metric)

    @property
    def scale(self) -> float:
        """What one unit of the loss is: the uncertainty, else the tolerance."""
        return float(self.sd if self.sd is not None else self.tolerance)  # type: ignore[arg-type]

    def met(self, achieved: float | None) -> bool | None:
        """Within tolerance (or two standard deviations); None when nothing was measured."""
        if achieved is None:
            return None
        reach = self.tolerance if self.tolerance is not None else 2 * self.scale
        return abs(achieved - self.value) <= reach + 1e-12


class TargetSet(Model):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    description: Text | None = None
    targets: tuple[Target, ...] = Field(max_length=200)

    def check(self) -> list[tuple[str, tuple]]:
        problems: list[tuple[str, tuple]] = []
        if not self.targets:
            problems.append(("a target set needs at least one target", ("targets",)))
        for i, t in enumerate(self.targets):
            for j, name in enumerate(t.metric):
                reason = unknown_metric(name)
                if reason:
                    at = ("targets", i, "metric") + ((j,) if len(t.metric) > 1 else ())
                    problems.append((reason, at))
        return problems


class Targets:
    """A loaded target set with the file and lines it came from (for error messages)."""

    def __init__(self, targets: TargetSet, file: str, lines: Lines) -> None:
        self.set = targets
        self.file = file
        self.lines = lines

    @property
    def name(self) -> str:
        return self.set.name

    def __iter__(self) -> Iterator[Target]:
        return iter(self.set.targets)

    def __len__(self) -> int:
        return len(self.set.targets)

    def error(self, message: str, index: int, field: str = "metric") -> XinyongError:
        """An error about target `index`, at its line in the file."""
        loc = ("targets", index, field)
        return XinyongError(
            message, file=self.file, line=line_of(self.lines, loc), field=".".join(map(str, loc))
        )

    def metric_names(self) -> list[str]:
        return sorted({m for t in self for m in t.metric})


def unknown_metric(name: str) -> str | None:
    """Why `name` is not a metric any run produces, or None. Summary metrics are known by
    their head (the list or tier after it depends on the scenario: checked after a run)."""
    flows = flows_known()
    for flow, (_, parts) in flows.items():
        if name.startswith(flow + "."):
            rest = name[len(flow) + 1 :].split(".")
            if len(rest) != parts or not all(rest):
                return f"'{flow}' takes {parts} list name(s) after it, got '{name}'"
            return None
    if name in COUNTS:
        return None
    meanings = dict(SUMMARY_MEANINGS)  # the adults' summary metrics, and every module's
    for mod in module_audits():
        meanings.update(mod.summary_meanings)
    parts = name.split(".")
    if any(".".join(parts[:cut]) in meanings for cut in range(len(parts), 0, -1)):
        return None
    known = ", ".join(sorted(meanings) + sorted(flows) + list(COUNTS))
    return f"unknown metric '{name}' (summary metrics and flows: {known})"


def builtin_target_sets() -> list[str]:
    return sorted(p.stem for p in SETS_DIR.glob("*.yaml"))


def load_targets(ref: str | Path) -> Targets:
    """A built-in target set by name or a YAML file, validated (file, line and field on any
    problem)."""
    path = resolve(ref, SETS_DIR)
    if path.parent == SETS_DIR and not path.exists():
        known = ", ".join(builtin_target_sets())
        raise XinyongError(f"unknown target set '{ref}' (built-in: {known}; or a .yaml path)")
    data, lines = load_yaml(path)
    parsed = validated(TargetSet, data, path, lines, "a target set")
    return Targets(parsed, str(path), lines)
