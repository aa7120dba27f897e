"""Two modules written for the contract's entity-kind hooks (docs/architecture.md,
"Modules"): `stalls` keeps an entity kind, three market stalls with a list and a licence in
two worlds, and takes true events from other modules at its own daily step; `inspector`
(tests/inspector_module.py) reads the stalls through `Context.views` once every module is
built (`Module.connect`) and fines one stall a day."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from xinyong.module import Context, EntityView, Events, Module, Spec, Step, Table
from xinyong.params import param
from xinyong.scenario import Model
from xinyong.scheme.schema import Flag

LICENCES = ("full", "provisional")


class StallParams(Model):
    closed_wrongly: Flag = param(
        True, doc="stall 1 is on the closed list in the recorded world only"
    )


SPEC = Spec(
    name="stalls",
    fields={"stalls": (StallParams | None, None)},
    runtime="tests.stalls_module:Stalls",
    tables=(Table("stall_events"),),
)


class StallView(EntityView):
    kind = "stall"
    groups = ("small", "big")
    behaviours = ("fined", "praised")

    def __init__(self, stalls: Stalls) -> None:
        self.stalls = stalls

    @property
    def group(self) -> np.ndarray:
        return np.array([0, 0, 1], dtype=np.uint8)

    @property
    def risk(self) -> np.ndarray:
        return np.ones(3)

    @property
    def lists(self) -> tuple[str, ...]:
        return ("closed",)

    def listed(self, name: str, rows: np.ndarray) -> np.ndarray:
        if name != "closed":
            return super().listed(name, rows)
        return self.stalls.closed[rows]

    def attribute(self, name: str, rows: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
        if name != "licence":
            return super().attribute(name, rows)
        return np.array([[0, 0], [0, 0], [1, 0]], dtype=np.uint8)[rows], LICENCES

    def add_true_events(self, events: Events) -> None:
        self.stalls.pending.append(events)


class Stalls(Module):
    steps = (Step(after=9, method="trade"),)
    checkpointed = ("log",)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.closed = np.zeros((3, 2), dtype=bool)
        self.closed[1, 0] = ctx.params.closed_wrongly
        self.pending: list[Events] = []
        self.log: list[list[float]] = []  # day, stall, behaviour, uniform

    def entity_view(self) -> StallView:
        return StallView(self)

    def trade(self, t: int) -> None:
        """The stalls' step 4: the events other modules added today."""
        for stall, behaviour, uniform in self.pending:
            for s, b, u in zip(stall.tolist(), behaviour.tolist(), uniform.tolist(), strict=True):
                self.log.append([t, s, b, u])
        self.pending = []

    def tables(self) -> dict[str, pa.Table]:
        rows = np.array(self.log, dtype=np.float64).reshape(-1, 4)
        return {
            "stall_events": pa.table(
                {
                    "day": rows[:, 0].astype(np.int32),
                    "stall": rows[:, 1].astype(np.int32),
                    "behaviour": rows[:, 2].astype(np.int16),
                    "uniform": rows[:, 3],
                }
            )
        }
