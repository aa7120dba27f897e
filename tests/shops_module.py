"""A declaration-only module for the contract's tests: it adds a kind of member, shops, with
one list, so that the tools outside modules (calibration flows, `xinyong list`, `validate`)
can be checked to name it from its `Entity` alone. Its runtime is never built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xinyong.module import Entity, Spec
from xinyong.params import param
from xinyong.scenario import Model, Scenario
from xinyong.scheme.schema import Int


class ShopsParams(Model):
    per_adult: Int = param(1, doc="shops per adult", ge=0)


def check_pack(data: dict, file: Path, lines: Any, sc: Scenario) -> str:
    return f"shop pack '{data['id']}': lists {', '.join(data.get('lists', []))}"


SPEC = Spec(
    name="shops",
    fields={"shops": (ShopsParams | None, None)},
    runtime="tests.tips_module:Tips",
    entity=Entity(
        kind="shop",
        plural="shops",
        table="shops",
        spells="shop_spells",
        lists=lambda sc: {"closed_down"},
        count=lambda sc: sc.shops.per_adult * sc.adults,
        packs=lambda sc: [],
        check_pack=check_pack,
    ),
)
