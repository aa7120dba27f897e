"""The day loop (docs/model.md, "What a day means").

Each day t, in order: 1 expiry, 2 appeals due, 3 court performance, 4 behaviour,
5 association, 6 observation, 7 scoring, 8-9 tiers and lists, 10 consequences, 11 appeals
filed. The layers do the work (`world.World`, `observe.Observation`, `scheme.layer.Scheme`,
`consequences.Consequences`); this file only builds them and sequences them.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from xinyong import modules, population
from xinyong.buffers import headroom
from xinyong.consequences import Consequences, StartOfDay
from xinyong.entities import EntityTables, compile_entity
from xinyong.errors import XinyongError
from xinyong.module import PLACES, STREAMS_PER_MODULE, Context, EntityView, Module, Today
from xinyong.observe import Observation, Placed, VictimPool
from xinyong.recorder import DayBook, Ids, Recorder
from xinyong.scenario import Scenario
from xinyong.scheme.layer import Scheme
from xinyong.threads import Halves, Inline, Pools, background, deferred_interrupt
from xinyong.world import NEGATIVE, POSITIVE, Deterrence, Traits, World

if TYPE_CHECKING:
    from xinyong.checkpoint import Checkpoints

ADULT_STREAMS = 8  # random streams of the adults' layers; the modules' come after them
DRAWN_AHEAD = 2  # days of positive behaviour drawn ahead on the worker thread
# City k's record ids count from k << RECORD_ID_BITS: unique across processes without any
# exchange, and the same whichever process holds the city (2**40 records per city).
RECORD_ID_BITS = 40


@dataclass(frozen=True)
class Part:
    """One city of a multi-city scenario, as its own engine holds it (shard.py)."""

    city: int  # index in the scenario
    size: int  # adults
    first_adult: int  # global id of its first adult
    first_child: int
    children: int  # its children (population.child_counts)
    cross: population.CityCross  # its cross slots and cross-city edges (cross_edges)


class Simulation:
    """The day loop over one population: a whole one-city scenario, or one city of a
    multi-city scenario (`part`), whose engines shard.Shard steps together."""

    def __init__(
        self,
        scenario: Scenario,
        out: Path | None = None,
        rows_per_part: int = 2_000_000,
        *,
        part: Part | None = None,
        pools: Pools | None = None,
        tables: EntityTables | None = None,
    ) -> None:
        self.sc = sc = scenario
        self.part = part
        full = tables if tables is not None else compile_entity(sc)
        self.tables = tables = full if part is None else full.for_city(part.city)
        behaviours = tables.world.behaviours
        first, size = (0, sc.adults) if part is None else (part.first_adult, part.size)
        self.script = {}
        for day, evs in sc.script.items():
            mine = [(a - first, b) for a, b in evs if first <= a < first + size]
            if mine:
                self.script[day] = (
                    np.array([a for a, _ in mine], dtype=np.int32),
                    np.array([behaviours.index(b) for _, b in mine], dtype=np.int16),
                )
        # One stream per layer (and per pipeline), spawned from the city's seed: the
        # scenario's seed itself in a one-city scenario. Eight for the adults' layers, then
        # eight per module of the registry, at its place there: a module's draws do not
        # depend on which other modules a scenario switches on.
        k = 0 if part is None else part.city
        seeds = population.city_seed(sc.seed, k, len(sc.cities)).spawn(
            ADULT_STREAMS + STREAMS_PER_MODULE * len(modules.specs())
        )
        if part is None:
            self.pop = pop = population.generate(sc, seeds[0])
        else:
            self.pop = pop = population.generate_city(
                sc.population, size, seeds[0], part.cross, part.children
            )
        (
            self.rng_world,
            self.rng_assoc,
            self.rng_observe,
            self.rng_court,
            self.rng_appeals,
            self.rng_world_positive,
            self.rng_observe_positive,
        ) = (np.random.default_rng(s) for s in seeds[1:8])
        # Steps over disjoint persons are split over two threads. A one-city run keeps its
        # own threads, as before; a shard's city engines share the shard's, small cities
        # doing the work drawn ahead and the records batches inline (threads.Pools.for_city).
        self.owns_pools = pools is None
        self.pools = pools = None if pools is None else pools.for_city(size)
        self.halves = Halves() if pools is None else pools.halves
        cons = sc.consequences
        self.scheme = Scheme(
            tables.scheme,
            tables.world.negative,
            pop.city,
            pop.group,
            (cons.eta, cons.deter_floor),
            sc.days,
            self.halves,
        )
        st = self.scheme.state
        # The scheme's scratch flags double as step 5's count of listed neighbours.
        wide = pop.nbr_degree.dtype != np.uint8
        self.listed_nbrs = np.zeros(pop.adults, np.uint16) if wide else self.scheme.touched
        self.world = World(
            tables.catalogue,
            Traits.of(pop.risk_buckets, pop.civic_buckets, pop.risk_rank),
            Deterrence(st.deter_level, st.deter_table),
            (pop.nbr_block, pop.nbr_degree, pop.nbr),
            cons.rho,
            self.listed_nbrs,
        )
        self.pool = VictimPool.of(pop.city, pop.group, len(tables.scheme.city_pack))
        self.observation = Observation(tables.observation, self.pool)
        self.consequences = Consequences(
            sc, tables.consequences, self.scheme, self.rng_court, self.rng_appeals
        )
        # Positive behaviour and its observation read only fixed traits and population data,
        # so the next days' are drawn on a worker thread while the current day runs.
        self.ahead = background() if pools is None else pools.ahead
        self.positive_next: dict[int, Future] = {}  # days drawn ahead, in order
        ids = None
        if part is not None:
            ids = Ids(part.city, part.first_adult, part.first_child, pop.ghosts)
        self.recorder = Recorder(sc, tables, pop, out, rows_per_part, ids=ids, pools=pools)
        self.first_record_id = self.next_record_id = k << RECORD_ID_BITS if part else 0
        self.today = Today()  # what the modules see of the day under way
        self.modules = self.build_modules(seeds)
        # The modules that add true events to step 4 (module.Module.true_events).
        self.event_modules = [
            m for m in self.modules if type(m).true_events is not Module.true_events
        ]
        # Each place of the day, the module steps that run there, in registry order.
        self.module_steps: dict[int, list[tuple[Module, object]]] = {p: [] for p in PLACES}
        for module in self.modules:
            for step in module.steps:
                self.module_steps[step.after].append((step, getattr(module, step.method)))
        self.start: StartOfDay | None = None  # the coming day's, once read (begin_day)
        self.on_boundary = np.zeros(pop.adults, dtype=bool)
        self.on_boundary[pop.boundary] = True

    def build_modules(self, seeds: list[np.random.SeedSequence]) -> list[Module]:
        """The modules the scenario switches on, built over this engine's adults."""
        built: list[Module] = []
        part = self.part
        meta = {}
        kinds: dict[str, EntityView] = {}  # every module's context holds this one dict
        for slot, spec in modules.active(self.sc):
            first = ADULT_STREAMS + STREAMS_PER_MODULE * slot
            ctx = Context(
                scenario=self.sc, spec=spec, pop=self.pop, tables=self.tables,
                scheme=self.scheme, city=None if part is None else part.city,
                first_adult=0 if part is None else part.first_adult,
                first_record_id=self.first_record_id,
                seeds=seeds[first : first + STREAMS_PER_MODULE], today=self.today,
                views=kinds, halves=self.halves,
            )  # fmt: skip
            cls = spec.runtime_class()
            built.append(cls(ctx))
            meta[spec.name] = cls.meta(self.sc, self.tables)
        for module in built:
            view = module.entity_view()
            if view is not None:
                kinds[view.kind] = view
        for module in built:  # after every kind is known, whatever the registry's order
            module.connect()
        self.recorder.module_meta = meta
        return built

    def module(self, name: str) -> Module:
        """The module of that name this engine runs."""
        for module in self.modules:
            if module.spec.name == name:
                return module
        raise KeyError(f"no module '{name}' in this run")

    def state_nbytes(self) -> dict[str, int]:
        """Bytes held per array of the simulation's state (population and graph included),
        each buffer counted once."""
        seen: dict[int, tuple[str, int]] = {}

        def walk(obj: object, name: str) -> None:
            if isinstance(obj, np.ndarray):
                base = obj.base if isinstance(obj.base, np.ndarray) else obj
                seen.setdefault(id(base), (name, base.nbytes))
            elif hasattr(obj, "__dataclass_fields__") or hasattr(obj, "_fields"):
                for key in getattr(obj, "_fields", None) or obj.__dataclass_fields__:
                    walk(getattr(obj, key), f"{name}.{key}")

        for key, obj in (
            ("pop", self.pop),
            ("state", self.scheme.state),
            ("groups", self.pool),
            ("touched", self.scheme.touched),
            ("listed_nbrs", self.listed_nbrs),
        ):
            walk(obj, key)
        return dict(seen.values())

    # -- the day -----------------------------------------------------------------------------

    def run(
        self,
        on_day: Callable[[int], None] | None = None,
        *,
        first_day: int = 0,
        checkpoints: Checkpoints | None = None,
    ) -> None:
        """Days `first_day` (0, or where a restored checkpoint left off) to the last, with
        checkpoints as `checkpoints` says; then the end-of-run tables."""
        # What exists before the run (modules, the population) is left out of the garbage
        # collector's passes during it: their full passes took 1% of a run's CPU.
        gc.freeze()
        try:
            with deferred_interrupt() as interrupted:  # Ctrl-C: at the end of a day
                for t in range(first_day, self.sc.days):
                    self.step(t)
                    if checkpoints is not None:
                        checkpoints.after_day(t, [self])
                    if on_day is not None:
                        on_day(t)
                    interrupted()
            self.finish()
        finally:
            gc.unfreeze()

    def finish(self) -> None:
        """Stop the helper threads and write the end-of-run tables."""
        if self.owns_pools:
            self.ahead.shutdown()
            self.halves.shutdown()
        if not self.recorder.booked_days:  # tiers and lists are first set on day 0
            raise XinyongError("finish() before any step(t): no day was simulated")
        self.recorder.finish(self.scheme.state)
        for module in self.modules:
            self.recorder.module_tables(module.tables())

    @property
    def records(self) -> int:
        """Records made so far."""
        return self.next_record_id - self.first_record_id

    def begin_day(self) -> StartOfDay:
        """The lists as they stood after the previous day's step 9, read before the day runs
        so that a shard can first pass its boundary adults' status to other cities."""
        if self.start is None:
            self.start = self.consequences.start_of_day(self.scheme.take_moved())
        return self.start

    def listed_boundary(self) -> np.ndarray:
        """Global ids (ascending) of this city's adults with a neighbour in another city who
        are on the association list at the start of the coming day."""
        if not len(self.pop.boundary):
            return np.empty(0, dtype=np.int64)
        assoc = self.begin_day().assoc
        first = 0 if self.part is None else self.part.first_adult
        return assoc[self.on_boundary[assoc]].astype(np.int64) + first

    def boundary_values(self, t: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """What the modules share with other cities at the start of day t: for each
        "module.attribute", this city's boundary adults (global ids, ascending) and their
        values (Module.shared)."""
        first = 0 if self.part is None else self.part.first_adult
        out = {}
        for module in self.modules:
            for name, values in module.boundary_values(t).items():
                ids = self.pop.boundary.astype(np.int64) + first
                out[f"{module.spec.name}.{name}"] = (ids, values)
        return out

    def receive_ghost_values(self, values: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Every city's boundary values (ids ascending): each module's ghosts' rows of them."""
        ghosts = self.pop.ghosts
        for module in self.modules:
            for name in module.shared:
                found = values.get(f"{module.spec.name}.{name}")
                if found is None:
                    continue
                ids, vals = found
                at = np.minimum(np.searchsorted(ids, ghosts), max(len(ids) - 1, 0))
                if len(ghosts) and not np.array_equal(ids[at], ghosts):
                    raise RuntimeError(f"ghost values of {name} miss some of the ghosts")
                module.ghosts[name] = vals[at] if len(ghosts) else vals[:0]

    def listed_ghosts(self, listed: np.ndarray) -> np.ndarray:
        """The ghost rows of the adults among `listed` (global ids, ascending)."""
        ghosts = self.pop.ghosts
        if not len(ghosts) or not len(listed):
            return np.empty(0, dtype=np.int32)
        if len(ghosts) <= len(listed):  # search the shorter list in the longer one
            at = np.minimum(np.searchsorted(listed, ghosts), len(listed) - 1)
            rows = np.flatnonzero(listed[at] == ghosts)
        else:
            at = np.minimum(np.searchsorted(ghosts, listed), len(ghosts) - 1)
            rows = at[ghosts[at] == listed]
        return (self.pop.adults + rows).astype(np.int32)

    def step(self, t: int, listed_ghosts: np.ndarray | None = None) -> None:
        """Day t; `listed_ghosts`: the ghost rows on the association list at its start."""
        scheme, cons, modules_after = self.scheme, self.consequences, self.modules_after
        start = self.begin_day()  # lists after the previous day's step 9
        self.start = None
        self.today.start, self.today.book = start, None
        modules_after(0, t)
        changed = scheme.expire(t)  # 1
        modules_after(1, t)
        upheld, decided = cons.decide_appeals(t)  # 2
        modules_after(2, t)
        settlements = cons.settle(t, start.settle)  # 3
        modules_after(3, t)
        positive = self.positive_behaviour(t)  # 4 and 6, drawn ahead
        actor, beh, residual = self.behaviour(t, start)  # 4
        if self.event_modules:
            actor, beh, residual = self.module_events(t, (actor, beh, residual))
        listed = start.assoc
        if listed_ghosts is not None and len(listed_ghosts):  # neighbours in other cities
            listed = np.concatenate([listed, listed_ghosts])
        met, met_residual = self.world.association(self.rng_assoc, listed)  # 5
        assoc = np.full(met.size, self.tables.consequences.assoc_behaviour, dtype=np.int16)
        events = (np.concatenate([actor, met]), np.concatenate([beh, assoc]),
                  np.concatenate([residual, met_residual]))  # fmt: skip
        records, tallies = self.observation.day(self.rng_observe, events, positive)  # 6
        scored = scheme.score(t, records)  # 7 (and deterrence, 10)
        first = self.next_record_id
        cons.keep_effects(t, records, scored, first)
        modules_after(7, t)
        changed += [upheld, scored.tier_may_move]
        scheme.tiers_and_lists(t, changed, [records.person[scored.effect]])  # 8-9
        modules_after(9, t)
        appealed = cons.file_appeals(t, records, scored, first)  # 11
        self.next_record_id += len(records)
        st = scheme.state
        book = DayBook(
            t=t,
            records=records,
            applied=scored.applied,
            expiry_day=scored.expiry_day,
            appealed=appealed,
            first_record_id=first,
            tallies=tallies,
            association_events=met.size,
            decided=decided,
            settlements=settlements,
            spells=scheme.take_ended(),
            score_sum=scheme.score_sum.copy(),
            list_count=st.list_count.copy(),
            wrong_count=st.wrong_count.sum(axis=1),
            tier_count=st.tier_count[0].copy(),
        )
        self.recorder.day(book)
        self.today.book = book
        modules_after(11, t)

    def modules_after(self, place: int, t: int) -> None:
        """The module steps that run after the day's step `place` and are due on day t."""
        for step, run in self.module_steps[place]:
            if step.due(t):
                run(t)

    # -- step 4 ----------------------------------------------------------------------------

    def module_events(
        self, t: int, events: tuple[np.ndarray, np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, ...]:
        """Step 4's events followed by those the modules add, in registry order."""
        parts = [events]
        for module in self.event_modules:
            added = module.true_events(t)
            if added is not None and len(added[0]):
                actor, beh, uniform = added
                parts.append((actor.astype(np.int32), beh.astype(np.int16),
                              uniform.astype(np.float64)))  # fmt: skip
        if len(parts) == 1:
            return events
        return tuple(np.concatenate(cols) for cols in zip(*parts, strict=True))

    def behaviour(self, t: int, start: StartOfDay) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Negative behaviour (and the day's scripted events), with each event's residual
        uniform (world.sample_behaviour)."""
        events = self.world.behaviour(
            self.rng_world, NEGATIVE, start.affected, start.effects_of, start.since
        )
        if t not in self.script:
            return events
        actor, beh = self.script[t]
        # Scripted events were not drawn: observation draws their uniforms.
        scripted = (actor, beh, self.rng_observe.random(len(actor)))
        return tuple(np.concatenate(cols) for cols in zip(events, scripted, strict=True))

    def positive_behaviour(self, t: int) -> Placed:
        """Day t's positive events and their records, as drawn ahead, and the drawing of the
        next DRAWN_AHEAD days started. Two days queued keep the worker busy whenever a core
        is free, where one left it waiting for the day loop (and the day loop for it). An
        engine whose helper work runs inline (a small city of a shard) draws each day's
        when it comes: the same draws, in the same order, without a future for each."""
        if t in self.positive_next:
            drawn = self.positive_next.pop(t).result()
        else:  # not drawn ahead: the first day, or days stepped out of order
            for pending in self.positive_next.values():
                pending.result()  # the streams are used by one thread at a time
            self.positive_next.clear()
            drawn = self.draw_positive()
        if isinstance(self.ahead, Inline):  # nothing runs beside the day loop: no hand-off
            return drawn
        for day in range(t + 1, min(t + 1 + DRAWN_AHEAD, self.sc.days)):
            if day not in self.positive_next:
                self.positive_next[day] = self.ahead.submit(self.draw_positive)
        return drawn

    def draw_positive(self) -> Placed:
        events = self.world.behaviour(self.rng_world_positive, POSITIVE)
        # With rows free before them for the day's other records, and after for false reports.
        before = headroom(self.world.candidates[NEGATIVE])
        after = headroom(self.tables.observation.false_report_rate * self.pop.adults)
        return self.observation.detect(self.rng_observe_positive, *events, before, after)
