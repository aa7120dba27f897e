"""The module contract: how a mechanism plugs into the engine (docs/architecture.md, "Modules").

A mechanism (companies, credit, a city's monthly recalculation) is a module in a folder of its
own. It is declared by a `Spec`, which is read without building anything: the scenario
sections it adds (its parameters, declared with `params.param`), its tables, the memory it
needs per adult and its checks of a scenario. Its runtime class, a `Module` imported only when
a run builds it, holds its state (in both worlds where the shadow truth needs it), runs its
steps at their places in the numbered day or on a clock, and returns its tables at the end;
its `checkpointed` attributes are saved and restored with the run's checkpoints, its `meta`
goes into meta.json and its `summary` into summary.json.

The engine, recorder, checkpoint, shard, sizing, run-directory table lists and summary iterate
over the modules of the registry (`modules.py`); none of them names a particular module.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from xinyong.errors import XinyongError

if TYPE_CHECKING:
    import pyarrow as pa

    from xinyong.audit.registry import ModuleAudit
    from xinyong.consequences import StartOfDay
    from xinyong.entities import EntityTables
    from xinyong.population import Population
    from xinyong.recorder import DayBook
    from xinyong.scenario import Scenario
    from xinyong.scheme.layer import Scheme
    from xinyong.scheme.schema import Pack
    from xinyong.threads import Halves

# Where a module's step can run: after the engine's step of that number (docs/model.md, "What
# a day means"), 0 being the start of the day, before expiry. Steps 4 to 6 and 8 to 10 are
# one pass each in the engine, so a module step goes before or after them, not inside.
PLACES = (0, 1, 2, 3, 7, 9, 11)
STREAMS_PER_MODULE = 8  # random streams each module may use, spawned from its city's seed

Problem = tuple[str, tuple]  # a message and the location (keys) it refers to


@dataclass(frozen=True)
class Step:
    """`method` of the module, run after the engine's step `after`, on the days when
    t % every == phase (every=1: daily; every=365, phase=364: on each year's last day)."""

    after: int
    method: str
    every: int = 1
    phase: int = 0

    def __post_init__(self) -> None:
        if self.after not in PLACES:
            raise ValueError(f"a module step runs after one of the steps {PLACES}")
        if not 0 <= self.phase < self.every:
            raise ValueError("a step's phase is a day of its period (0 <= phase < every)")

    def due(self, t: int) -> bool:
        return t % self.every == self.phase


@dataclass(frozen=True)
class Table:
    """A table the module writes: NAME.parquet (or a city engine's part of it)."""

    name: str
    nullable: tuple[str, ...] = ()  # columns whose nulls mean something (an open spell's end)
    columns: tuple[str, ...] = ()  # columns a reader relies on (the run's damage check)


@dataclass(frozen=True)
class Entity:
    """A kind of member other than adults that a module adds (companies), as the tools
    outside the module name it: explain's KIND=ID, pack files of `kind: KIND`, metrics
    headed `KIND.`, calibration flows per member of the kind."""

    kind: str  # singular, as in "company=12" and a pack's `kind:`
    plural: str
    table: str  # the members' table, one row each
    spells: str  # list spells: (KIND, list, world, start, end)
    lists: Callable[[Scenario], set[str]]  # the kind's list names in a scenario
    count: Callable[[Scenario], int]  # members in a scenario
    packs: Callable[[Scenario], list[str]]  # ids of the kind's packs a scenario uses
    # Validate a pack file of this kind against a scenario's catalogue (the module's own
    # default where that scenario does not have the kind): what it holds, or raises.
    check_pack: Callable[[dict, Path, Any, Scenario], str] | None = None


def no_problems(sc: Scenario) -> list[Problem]:
    return []


@dataclass(frozen=True)
class Spec:
    """A module's declaration, read without building it.

    `fields`: the scenario's top-level keys it adds, each (annotation, default); the first is
    its section, and the module is on in a scenario where that section is given.
    `runtime`: "package.module:Class" of its `Module`, imported when a run builds it.
    """

    name: str
    fields: dict[str, tuple[Any, Any]]
    runtime: str
    tables: tuple[Table, ...] = ()
    check: Callable[[Scenario], list[Problem]] = no_problems
    # Before validation: embed the files the section names (packs), as the scenario does.
    load: Callable[[dict, Path, dict], None] | None = None
    # Packs of adults' lists the module adds to every city's (applied as national packs).
    adult_packs: Callable[[Scenario], list[Pack]] | None = None
    # Bytes per adult a run needs beyond the adults' own (sizing.estimate).
    memory_per_adult: Callable[[Scenario], float] | None = None
    entity: Entity | None = None  # the kind of member it adds, if any

    @property
    def section(self) -> str:
        return next(iter(self.fields))

    def active(self, sc: Any) -> bool:
        return getattr(sc, self.section, None) is not None

    def params(self, sc: Any) -> Any:
        """The module's section of the scenario."""
        return getattr(sc, self.section)

    def runtime_class(self) -> type[Module]:
        import importlib

        path, _, name = self.runtime.partition(":")
        cls = getattr(importlib.import_module(path), name)
        if not (isinstance(cls, type) and issubclass(cls, Module)):
            raise TypeError(f"{self.runtime} is not a xinyong.module.Module")
        return cls


@dataclass
class Today:
    """What the engine shows its modules of the day under way: the lists as they stood at its
    start (after the previous day's step 9, the same `StartOfDay` the adults' steps read),
    and, from step 11 on, the day's book (its records with their truth, points and appeal
    decisions; `recorder.DayBook`). The engine only assigns the two fields each day."""

    start: StartOfDay | None = None
    book: DayBook | None = None


Events = tuple[np.ndarray, np.ndarray, np.ndarray]  # actor (int32), behaviour (int16), uniform


class EntityView:
    """An entity kind a module keeps (companies, declared by its `Spec.entity`) at run time,
    as the other modules of the engine read it and act on it (`Module.entity_view`,
    `Context.views`; `kind` is the declaration's). Its members are rows 0 .. n-1 of
    this engine, global ids from `first`. Lists and attributes are read as they stand when
    asked (at place 0: after the previous day's steps), each as [n, 2] arrays, column 0 the
    recorded world and column 1 the shadow world. A module that keeps a kind subclasses this."""

    kind: str = ""  # the kind's name ("company"): what other modules look it up by
    first: int = 0
    groups: tuple[str, ...] = ()  # the names of `group`'s values (the kind's groups)
    behaviours: tuple[str, ...] = ()  # the kind's catalogue: the index of an event's behaviour

    def __len__(self) -> int:
        return len(self.group)

    @property
    def group(self) -> np.ndarray:
        """Each member's group (an index into `groups`)."""
        raise NotImplementedError

    @property
    def risk(self) -> np.ndarray:
        """Each member's risk trait (float64)."""
        raise NotImplementedError

    @property
    def lists(self) -> tuple[str, ...]:
        return ()

    def listed(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Bool [len(rows), 2]: whether those members are on list `name` in each world (all
        False for a list the kind does not have)."""
        return np.zeros((len(rows), 2), dtype=bool)

    def attribute(self, name: str, rows: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
        """Codes [len(rows), 2] of an attribute (a rating) of those members in each world,
        and the names of the codes."""
        raise KeyError(f"{self.kind} has no attribute '{name}'")

    def add_true_events(self, events: Events) -> None:
        """True events of members (rows, behaviours of `behaviours`, a uniform of the
        adding module's own stream each) that join the kind's next step 4, the day's own
        when added before it; observed, scored and listed like the kind's own events."""
        raise NotImplementedError(f"{self.kind} takes no true events from other modules")


@dataclass
class Context:
    """What the engine hands a module: the scenario, the engine's adults (a one-city run's, or
    one city's) and their layers, the module's own random streams, where its ids start."""

    scenario: Scenario
    spec: Spec
    pop: Population
    tables: EntityTables  # the adults' compiled tables, this engine's cities alone
    scheme: Scheme  # the adults' scheme layer: a module that moves adults' lists calls it
    city: int | None  # the scenario's index of this engine's one city; None: all cities
    first_adult: int  # global id of this engine's first adult
    first_record_id: int  # where this engine's record ids start (unique across cities)
    seeds: list[np.random.SeedSequence] = field(repr=False, default_factory=list)
    today: Today = field(default_factory=Today)
    # The entity kinds this engine's modules keep, by kind: filled once every module is
    # built, before any module's `connect` (the same dict in every module's context).
    views: dict[str, EntityView] = field(default_factory=dict)
    # The engine's second thread for one step's work in two halves (threads.Halves; None
    # in tests that build a module alone): a nogil kernel over the adults may use it.
    halves: Halves | None = None

    @property
    def params(self) -> Any:
        return self.spec.params(self.scenario)

    @property
    def city_names(self) -> list[str]:
        names = [c.name for c in self.scenario.cities]
        return names if self.city is None else [names[self.city]]


class Module:
    """A mechanism at run time. Subclasses set `steps` (on the class, or in `__init__` where
    a period is a parameter) and `checkpointed`, and build their state in `__init__` from
    the context."""

    steps: ClassVar[tuple[Step, ...]] = ()
    # Attributes (dotted paths from the module) holding what later days read: arrays are
    # restored in place (views built on them stay valid), dicts and lists replaced, random
    # generators' states restored.
    checkpointed: ClassVar[tuple[str, ...]] = ()
    # Per-adult arrays (attributes) that other cities read at their ghost rows, a city's
    # neighbours in another city (multi-city runs): passed on at the start of each day that
    # `shares_on`, after which this engine's ghosts' values are in `ghosts[name]`, one row
    # per ghost in the order of `pop.ghosts`.
    shared: ClassVar[tuple[str, ...]] = ()

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.ghosts: dict[str, np.ndarray] = {}

    def shares_on(self, t: int) -> bool:
        """Whether day t's steps read the ghosts' values of `shared` (default: every day)."""
        return True

    def boundary_values(self, t: int) -> dict[str, np.ndarray]:
        """The values of `shared` at this engine's boundary adults (`pop.boundary`), for
        the start of day t; empty on days the module does not share."""
        if not self.shared or not self.shares_on(t):
            return {}
        rows = self.ctx.pop.boundary
        return {name: _get(self, name)[rows] for name in self.shared}

    @property
    def spec(self) -> Spec:
        return self.ctx.spec

    def tables(self) -> dict[str, pa.Table]:
        """The module's tables at the end of the run, one per `spec.tables`."""
        return {}

    def entity_view(self) -> EntityView | None:
        """The entity kind this module keeps, as other modules may read it and add true
        events to it; None: none."""
        return None

    def connect(self) -> None:
        """Called once every module of the engine is built and `ctx.views` filled (before
        a checkpoint is restored): where a module builds what it keeps of another module's
        entities. State built here may be `checkpointed` like any other."""

    def true_events(self, t: int) -> Events | None:
        """True events of this engine's adults the module adds to day t's step 4: observed,
        scored, deterring and appealed like the adults' own behaviour. Each is (adult,
        behaviour index in the scenario's catalogue, a uniform on [0, 1) from the module's
        own stream, which observation uses as it uses a drawn event's residual). Only
        modules that override this are asked (the engine skips the rest at no cost)."""
        return None

    def save(self) -> dict[str, Any]:
        """The checkpoint's part of this module (plain values and arrays only)."""
        return {name: _save(_get(self, name)) for name in self.checkpointed}

    def restore(self, saved: dict[str, Any]) -> None:
        """Put a freshly built module where `save` found the one that was saved."""
        for name in self.checkpointed:
            if name not in saved:
                raise XinyongError(f"the checkpoint holds no {self.spec.name}.{name}")
            owner, _, attr = name.rpartition(".")
            holder = _get(self, owner) if owner else self
            setattr(holder, attr, _restore(getattr(holder, attr), saved[name], name))

    @classmethod
    def meta(cls, sc: Scenario, adults: EntityTables) -> dict[str, Any]:
        """What readers of the run need to read the module's tables (meta.json)."""
        return {}

    @classmethod
    def audit(cls, spec: Spec) -> ModuleAudit | None:
        """What the module adds to the audit: summary metrics and their meanings at least;
        metrics, a report section, headline findings, explainers and an adult's lines where
        it has them (audit.registry.ModuleAudit). None: nothing."""
        return None


# -- checkpointed values ---------------------------------------------------------------------


def _get(obj: Any, path: str) -> Any:
    for attr in path.split("."):
        obj = getattr(obj, attr)
    return obj


def _save(value: Any) -> Any:
    if isinstance(value, np.random.Generator):
        return {"generator": value.bit_generator.state}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _save(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple
        return {f: _save(getattr(value, f)) for f in value._fields}
    if isinstance(value, dict):
        return {k: _save(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_save(v) for v in value)
    return value


def _restore(mine: Any, saved: Any, name: str) -> Any:
    """`saved` in the shape of `mine` (the freshly built value)."""
    if isinstance(mine, np.random.Generator):
        mine.bit_generator.state = saved["generator"]
        return mine
    if isinstance(mine, np.ndarray):
        saved = np.asarray(saved)
        if mine.shape != saved.shape or mine.dtype != saved.dtype:
            raise XinyongError(f"the checkpoint's {name} does not fit this scenario")
        mine[...] = saved
        return mine
    if dataclasses.is_dataclass(mine) and not isinstance(mine, type):
        for f in dataclasses.fields(mine):
            value = _restore(getattr(mine, f.name), saved[f.name], f"{name}.{f.name}")
            object.__setattr__(mine, f.name, value)
        return mine
    if isinstance(mine, tuple) and hasattr(mine, "_fields"):  # a NamedTuple of arrays
        for f in mine._fields:
            _restore(getattr(mine, f), saved[f], f"{name}.{f}")
        return mine
    if isinstance(mine, defaultdict):
        out = defaultdict(mine.default_factory)
        out.update(saved)
        return out
    if (
        isinstance(mine, dict)
        and mine
        and all(isinstance(v, np.random.Generator) for v in mine.values())
    ):
        for key, gen in mine.items():
            _restore(gen, saved[key], f"{name}.{key}")
        return mine
    return saved
