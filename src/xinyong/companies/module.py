"""The companies as a module of the engine: built from the context, one step a day after the
adults' step 9 (the company day, steps 2-11: layer.Companies.day), checkpointed, and their
tables and summary metrics (docs/companies.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from xinyong.audit.registry import ModuleAudit
from xinyong.companies.layer import Companies
from xinyong.companies.params import SIZES
from xinyong.companies.population import company_counts, generate_companies
from xinyong.companies.rating import GRADE_NAMES, Rated
from xinyong.companies.tables import CompanyRecorder, company_meta
from xinyong.entities import EntityTables
from xinyong.module import Context, EntityView, Events, Module, Spec, Step
from xinyong.scenario import Scenario

# The companies' streams, in the order of the module's seeds.
STREAMS = ("population", "world", "observe", "court", "appeals", "annual", "income")


class CompanyView(EntityView):
    """The companies as other modules read them and add true events to them: sizes, risk,
    the company lists and the tax rating in both worlds (module.EntityView)."""

    kind = "company"
    groups = SIZES

    def __init__(self, layer: Companies) -> None:
        self.layer = layer
        self.first = layer.first_company
        self.behaviours = tuple(layer.behaviours)

    @property
    def group(self) -> np.ndarray:
        return self.layer.pop.size

    @property
    def risk(self) -> np.ndarray:
        return self.layer.risk

    @property
    def lists(self) -> tuple[str, ...]:
        return tuple(self.layer.lists.names)

    def listed(self, name: str, rows: np.ndarray) -> np.ndarray:
        if name not in self.layer.lists.names:
            return super().listed(name, rows)
        return (self.layer.state.bits[rows] & self.layer.lists.bit(name)) != 0

    def attribute(self, name: str, rows: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
        if name != "rating":
            return super().attribute(name, rows)
        return self.layer.state.grade[rows], tuple(GRADE_NAMES)

    def add_true_events(self, events: Events) -> None:
        actor, behaviour, uniform = events
        if len(actor):
            self.layer.added.append(
                (actor.astype(np.int32), behaviour.astype(np.int16), uniform.astype(np.float64))
            )


class CompaniesModule(Module):
    steps = (Step(after=9, method="day"),)  # beside the adults' steps, after their lists
    checkpointed = (
        *(f"layer.{name}" for name in (
            "state", "grade_before", "carried_only", "year_counts", "deter_level", "checks",
            "due", "appeals", "timed_by", "next_record_id", "ratings", "rngs", "list_count",
            "wrong_count",
        )),
        *(f"recorder.{name}" for name in ("records", "filed", "decisions", "spells", "daily")),
    )  # fmt: skip

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        sc, pop = ctx.scenario, ctx.pop
        counts = company_counts(sc)
        first = 0
        adult_start = pop.city_start
        if ctx.city is not None:
            first, counts = int(counts[: ctx.city].sum()), counts[ctx.city : ctx.city + 1]
            adult_start = np.array([0, pop.adults], dtype=np.int64)
        rngs = {name: np.random.default_rng(s) for name, s in zip(STREAMS, ctx.seeds, strict=False)}
        firms = generate_companies(sc, counts, adult_start, rngs.pop("population"))
        self.layer = Companies(sc, firms, ctx.scheme, rngs, ctx.first_record_id, first)
        self.recorder = CompanyRecorder(
            self.layer, ctx.city_names, first_company=first, first_adult=ctx.first_adult,
            appeal_days=sc.appeals.appeal_days,
        )  # fmt: skip

    def entity_view(self) -> CompanyView:
        return CompanyView(self.layer)

    def day(self, t: int) -> None:
        self.recorder.day(self.layer.day(t))

    def tables(self) -> dict[str, pa.Table]:
        return self.recorder.tables()

    def restore(self, saved: dict[str, Any]) -> None:
        super().restore(saved)
        self.layer.ratings = [
            (int(year), int(world), Rated(**rated)) for year, world, rated in self.layer.ratings
        ]

    @classmethod
    def meta(cls, sc: Scenario, adults: EntityTables) -> dict[str, Any]:
        return company_meta(sc, adults.scheme)

    @classmethod
    def audit(cls, spec: Spec) -> ModuleAudit:
        from xinyong.companies.audit import AUDIT

        return AUDIT
