"""A second module written for the contract's tests: it adds true events to step 4 and reads
the day through `Context.today` (docs/architecture.md, "Modules"). Every day adult `adult`
commits `behaviour` as a module-made event; the module notes whether that adult was on a
list left by settlement at the start of the day (`today.start`), and after step 11 how many
of the day's records are of that behaviour (`today.book`)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from xinyong.module import Context, Events, Module, Spec, Step, Table
from xinyong.params import param
from xinyong.scenario import Model
from xinyong.scheme.schema import Int, Name


class TipsParams(Model):
    adult: Int = param(doc="the adult who commits the behaviour every day", ge=0)
    behaviour: Name = param(doc="the behaviour committed")


SPEC = Spec(
    name="tips",
    fields={"tips": (TipsParams | None, None)},
    runtime="tests.tips_module:Tips",
    tables=(Table("tips"),),
)


class Tips(Module):
    steps = (Step(after=0, method="look"), Step(after=11, method="count"))
    checkpointed = ("days", "settling", "records", "rng")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.beh = ctx.tables.world.behaviours.index(ctx.params.behaviour)
        self.days: list[int] = []
        self.settling: list[bool] = []
        self.records: list[int] = []
        self.rng = np.random.default_rng(ctx.seeds[0])

    def look(self, t: int) -> None:
        start = self.ctx.today.start
        assert start is not None
        self.days.append(t)
        self.settling.append(bool(np.isin(self.ctx.params.adult, start.settle)))

    def true_events(self, t: int) -> Events:
        return (
            np.array([self.ctx.params.adult], dtype=np.int32),
            np.array([self.beh], dtype=np.int16),
            self.rng.random(1),
        )

    def count(self, t: int) -> None:
        book = self.ctx.today.book
        assert book is not None and book.t == t
        self.records.append(int((book.records.behaviour == self.beh).sum()))

    def tables(self) -> dict[str, pa.Table]:
        return {
            "tips": pa.table(
                {"day": self.days, "settling_at_start": self.settling, "records": self.records}
            )
        }
