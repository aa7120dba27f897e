"""A module that acts on another module's entity kind through the contract alone
(tests/stalls_module.py): it names no class of the stalls' module, finds the kind `stall`
in `Context.views` at `connect`, reads its list and attribute in both worlds at the start
of each day, and fines stall t mod 3 on day t as a true event of the stalls."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from xinyong.module import Context, EntityView, Module, Spec, Step, Table
from xinyong.params import param
from xinyong.scenario import Model
from xinyong.scheme.schema import Name


class InspectorParams(Model):
    behaviour: Name = param("fined", doc="the stalls' behaviour each inspection adds")


SPEC = Spec(
    name="inspector",
    fields={"inspector": (InspectorParams | None, None)},
    runtime="tests.inspector_module:Inspector",
    tables=(Table("inspections"),),
)


class Inspector(Module):
    steps = (Step(after=0, method="inspect"),)
    checkpointed = ("seen", "rng")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.rng = np.random.default_rng(ctx.seeds[0])
        self.seen: list[list[int]] = []  # day, stall, closed, closed_shadow, licence code
        self.view: EntityView | None = None
        self.kinds_at_init = sorted(ctx.views)

    def connect(self) -> None:
        self.view = self.ctx.views["stall"]
        self.beh = self.view.behaviours.index(self.ctx.params.behaviour)

    def inspect(self, t: int) -> None:
        assert self.view is not None
        stall = np.array([t % len(self.view)])
        closed = self.view.listed("closed", stall)[0]
        licence, _ = self.view.attribute("licence", stall)
        self.seen.append([t, int(stall[0]), int(closed[0]), int(closed[1]), int(licence[0, 0])])
        self.view.add_true_events(
            (stall.astype(np.int32), np.array([self.beh], np.int16), self.rng.random(1))
        )

    def tables(self) -> dict[str, pa.Table]:
        rows = np.array(self.seen, dtype=np.int64).reshape(-1, 5)
        names = ("day", "stall", "closed", "closed_shadow", "licence")
        return {"inspections": pa.table({n: rows[:, i] for i, n in enumerate(names)})}
