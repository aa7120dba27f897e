"""Behaviour effects are pack data: a sanction's `effects` change its holder's behaviour."""

from __future__ import annotations

import math

import pytest

import xinyong
from tests.conftest import quiet_scenario
from xinyong.errors import XinyongError

ADULTS, DAYS, BASE = 20_000, 30, 0.01
FINANCE = {"context": "finance", "source": "illustrative", "note": "test"}


def unpaid_bills(**overrides: object) -> int:
    """True unpaid_bill events over a run in which every adult is blacklisted from day 0
    (start score 500: grade D), with traits of 1, no deterrence and unpaid_bill the only
    behaviour; the day-0 events come before the first listing."""
    sc = quiet_scenario(
        adults=ADULTS,
        days=DAYS + 1,
        overrides={
            "packs.rongcheng.start_score.value": 500,
            "population.risk_sigma": 0.0,
            "population.civic_sigma": 0.0,
            "consequences.eta": 0.0,
            "behaviours.unpaid_bill.base": BASE,
            **overrides,
        },
    )
    events = xinyong.run(sc).sql(
        "SELECT sum(true_events) FROM behaviour_daily WHERE behaviour = 'unpaid_bill' AND day > 0"
    )
    return int(events.column(0)[0].as_py())


def within_poisson(count: int, mean: float) -> bool:
    """|count - mean| within 5 standard deviations (a binomial count with small p)."""
    return abs(count - mean) <= 5 * math.sqrt(mean)


@pytest.mark.parametrize(
    ("overrides", "factor"),
    [
        ({"consequences.behaviour_effects": False}, 1.0),
        ({}, 2.0),  # rongcheng's loan_ban: finance behaviours twice as often
        (  # a second effect on the same context multiplies with the first
            {
                "packs.rongcheng.lists.blacklist.consequences.1.effects": [
                    {**FINANCE, "multiplier": 1.5}
                ]
            },
            3.0,
        ),
    ],
)
def test_effects_multiply_the_rate_of_their_context_s_behaviours(
    overrides: dict, factor: float
) -> None:
    expected = ADULTS * DAYS * BASE * factor
    assert within_poisson(unpaid_bills(**overrides), expected), factor


def test_an_effect_outside_the_member_is_refused() -> None:
    with pytest.raises(XinyongError, match="behaviour effects act on the member only"):
        quiet_scenario(
            overrides={
                "packs.rongcheng.lists.blacklist.consequences.11.effects": [
                    {**FINANCE, "multiplier": 2.0}
                ]
            }
        )


def test_a_consequence_s_target_must_be_the_member_or_a_relation() -> None:
    with pytest.raises(XinyongError, match=r"unknown target 'cousins' \(person, children\)"):
        quiet_scenario(
            overrides={"packs.rongcheng.lists.blacklist.consequences.11.target": "cousins"}
        )


def test_the_old_distress_keys_point_to_the_pack() -> None:
    with pytest.raises(XinyongError, match="distress is now pack data") as err:
        xinyong.load_scenario("r1", overrides={"consequences.distress_factor": 3.0})
    assert err.value.field == "consequences.distress_factor (from --set)"
