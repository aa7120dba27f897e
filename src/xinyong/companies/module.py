"""The companies as a module of the engine: built from the context, one step a day after the
adults' step 9 (the company day, steps 2-11: layer.Companies.day), checkpointed, and their
tables and summary metrics (docs/companies.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from xinyong.audit.registry import ModuleAudit
from xinyong.companies.layer import Companies
from xinyong.companies.population import company_counts, generate_companies
from xinyong.companies.rating import Rated
from xinyong.companies.tables import CompanyRecorder, company_meta
from xinyong.entities import EntityTables
from xinyong.module import Context, Module, Spec, Step
from xinyong.scenario import Scenario

# The companies' streams, in the order of the module's seeds.
STREAMS = ("population", "world", "observe", "court", "appeals", "annual", "income")


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
