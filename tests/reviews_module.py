"""A module written for the contract's tests (docs/architecture.md, "Modules"): periodic
reviews of the adults' scores. Every `every` days (on the last day of each period) a review
draws a share `sample` of the adults at random and notes who is below `threshold` points.
It has its own parameters, state, a periodic step, a random stream, a table, a summary metric
and an explain line, and nothing outside this file names it: the engine builds and steps it,
checkpoints and shards carry it, the recorder writes its table and the summary reads it.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from xinyong.audit.registry import ModuleAudit
from xinyong.module import Context, Module, Spec, Step, Table
from xinyong.params import param
from xinyong.scenario import Model, Probability, Scenario
from xinyong.scheme.schema import Int


class ReviewsParams(Model):
    every: Int = param(30, doc="days between two reviews", unit="days", ge=1, le=365)
    threshold: Int = param(doc="a score below this is noted", unit="points")
    sample: Probability = param(0.5, doc="share of adults each review looks at", unit="share")


def check(sc: Scenario) -> list[tuple[str, tuple]]:
    params = getattr(sc, "reviews", None)
    if params is not None and params.every > sc.days:
        return [("no review would fall within the run", ("reviews", "every"))]
    return []


SPEC = Spec(
    name="reviews",
    fields={"reviews": (ReviewsParams | None, None)},
    runtime="tests.reviews_module:Reviews",
    tables=(Table("reviews"),),
    check=check,
    memory_per_adult=lambda sc: 4.0,  # two uint16 counters and two flags per adult
)


class Reviews(Module):
    checkpointed = ("reviewed", "below", "last", "rng")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        every = ctx.params.every
        self.steps = (Step(after=9, method="review", every=every, phase=every - 1),)
        n = ctx.pop.adults
        self.reviewed = np.zeros(n, np.uint16)
        self.below = np.zeros(n, np.uint16)
        self.last = np.zeros((n, 2), bool)  # looked at by the last review; below then
        self.rng = np.random.default_rng(ctx.seeds[0])

    def review(self, t: int) -> None:
        params = self.ctx.params
        looked = self.rng.random(len(self.reviewed)) < params.sample
        score = self.ctx.scheme.state.score[:, 0]  # the recorded world
        low = looked & (score < params.threshold)
        self.reviewed += looked
        self.below += low
        self.last[:, 0], self.last[:, 1] = looked, low

    def tables(self) -> dict[str, pa.Table]:
        adult = np.arange(len(self.reviewed), dtype=np.int64) + self.ctx.first_adult
        return {
            "reviews": pa.table(
                {
                    "adult": adult.astype(np.int32),
                    "reviewed": self.reviewed.astype(np.int32),
                    "below": self.below.astype(np.int32),
                    "looked_last": self.last[:, 0],
                    "below_last": self.last[:, 1],
                }
            )
        }

    @classmethod
    def meta(cls, sc: Scenario, adults: Any) -> dict[str, Any]:
        return {"threshold": sc.reviews.threshold}

    @classmethod
    def audit(cls, spec: Spec) -> ModuleAudit:
        return ModuleAudit(
            package=__name__,
            applies=lambda meta: "reviews" in meta,
            summary=summary,
            summary_meanings={
                "reviews.ever_below_share": "share of adults noted below the threshold"
            },
            lines={"adult": adult_lines},
        )


def summary(con: duckdb.DuckDBPyConnection, meta: dict[str, Any], days: int, adults: int) -> dict:
    ((ever,),) = con.sql("SELECT count(*) FILTER (below > 0) FROM reviews").fetchall()
    return {"reviews.ever_below_share": ever / adults}


def adult_lines(con: duckdb.DuckDBPyConnection, meta: dict[str, Any], adult: int) -> list[str]:
    rows = con.sql(f"SELECT reviewed, below FROM reviews WHERE adult = {int(adult)}").fetchall()
    if not rows or not rows[0][0]:
        return []
    (looked, below), threshold = rows[0], meta["reviews"]["threshold"]
    return [f"looked at by {looked} reviews, below {threshold} points at {below}"]
