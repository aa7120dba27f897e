"""The company population and company rates against the model's probabilities.

Counts are sums of independent Bernoulli draws (standard deviation sqrt(sum p(1-p))), and
shares binomial; every check allows 5 standard deviations (a false alarm about once in 1.7
million runs), with fixed seeds so the suite is deterministic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xinyong.companies.params import SIZES
from xinyong.companies.population import company_counts
from xinyong.engine import Simulation
from xinyong.scenario import load_scenario

Z = 5.0


def within(observed: float, expected: float, var: float) -> bool:
    return abs(observed - expected) <= Z * math.sqrt(var) + 1e-12


def phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


@pytest.fixture(scope="module")
def c1_year():
    """C1 without deterrence or distress, every company channel exact except the market
    regulator's, which misattributes half its records: rates stay base x risk every day."""
    overrides = {
        "companies.consequences.eta": 0.0,
        "companies.consequences.behaviour_effects": False,
        "companies.channels.market_regulator.misattribute": 0.5,
        "companies.channels.market_regulator.detect": 1.0,
    }
    for c in ("tax_authority", "bank", "court"):
        overrides[f"companies.channels.{c}.detect"] = 1.0
        overrides[f"companies.channels.{c}.misattribute"] = 0.0
    sc = load_scenario("c1", adults=200_000, days=200, seed=5, overrides=overrides)
    sim = Simulation(sc)
    sim.run()
    return sim


def test_population_sizes_indicators_and_representatives(c1_year) -> None:
    sim = c1_year
    co, pop = sim.sc.companies, sim.module("companies").layer.pop
    n = len(pop)
    assert n == round(0.05 * sim.sc.adults) == int(company_counts(sim.sc).sum())
    for k, size in enumerate(SIZES):
        share = co.size_shares[size]
        m = int((pop.size == k).sum())
        assert within(m, n * share, n * share * (1 - share)), size
        f = co.full_indicators[size]
        full = int(pop.full[pop.size == k].sum())
        assert within(full, m * f, m * f * (1 - f)), size
    # Legal representatives: uniform over the city's adults (one city here).
    adults = sim.sc.adults
    assert pop.legal_rep.min() >= 0 and pop.legal_rep.max() < adults
    var = (adults**2 - 1) / 12 / n
    assert within(float(pop.legal_rep.mean()), (adults - 1) / 2, var)


def test_risk_is_a_truncated_lognormal_of_mean_one(c1_year) -> None:
    sim = c1_year
    risk = sim.module("companies").layer.risk
    s, lo, hi = (
        sim.sc.companies.risk_sigma,
        sim.sc.population.trait_min,
        sim.sc.population.trait_max,
    )
    mu = -(s**2) / 2
    mass = phi((math.log(hi) - mu) / s) - phi((math.log(lo) - mu) / s)
    upper = phi((math.log(hi) - mu - s**2) / s) - phi((math.log(lo) - mu - s**2) / s)
    mean = math.exp(mu + s**2 / 2) * upper / mass
    assert risk.min() >= lo and risk.max() <= hi
    assert within(float(risk.mean()), mean, float(risk.var()) / len(risk))


def test_daily_and_annual_behaviour_rates(c1_year) -> None:
    sim = c1_year
    companies = sim.module("companies").layer
    rec = sim.recorder.in_memory["company_records"].to_pydict()
    counts: dict[str, int] = {}
    annual_days = set()
    for b, day, truth in zip(rec["behaviour"], rec["day"], rec["truth"], strict=True):
        if truth == "false_report":
            continue
        counts[b] = counts.get(b, 0) + 1
        if b == "missed_annual_report":
            annual_days.add(day)
    days = sim.sc.days
    for name, beh in sim.sc.companies.behaviours.items():
        p = np.minimum(1.0, beh.base * companies.risk)
        if beh.annual:  # day 180 only, once
            assert annual_days == {sim.sc.companies.annual_day}
            assert within(counts.get(name, 0), p.sum(), (p * (1 - p)).sum()), name
        else:
            assert within(counts.get(name, 0), days * p.sum(), days * (p * (1 - p)).sum()), name


def test_misattribution_by_size_weight_and_competitor_false_reports(c1_year) -> None:
    sim = c1_year
    pop, co = sim.module("companies").layer.pop, sim.sc.companies
    rec = sim.recorder.in_memory["company_records"]
    truth = np.array(rec.column("truth").to_pylist())
    channel = np.array(rec.column("channel").to_pylist())
    company = rec.column("company").to_numpy()
    market = channel == "market_regulator"
    wrong = market & (truth == "misattributed")
    m = int(market.sum())
    assert within(int(wrong.sum()), m * 0.5, m * 0.25)
    # A victim of size s is drawn with probability w_s n_s / sum w n (the actor left out:
    # a shift of at most w / sum w n, far inside the bound).
    weights = np.array([co.channels["market_regulator"].weights.get(s, 1.0) for s in SIZES])
    n_by_size = np.bincount(pop.size, minlength=len(SIZES))
    expected = weights * n_by_size / (weights * n_by_size).sum()
    victims = np.bincount(pop.size[company[wrong]], minlength=len(SIZES))
    k = int(wrong.sum())
    for s in range(len(SIZES)):
        assert within(victims[s], k * expected[s], k * expected[s] * (1 - expected[s])), SIZES[s]
    # Competitors' false reports: each company each day with the rate, on `complaints`.
    false = truth == "false_report"
    rate, trials = co.observation.false_report_rate, len(pop) * sim.sc.days
    assert within(int(false.sum()), trials * rate, trials * rate * (1 - rate))
    assert set(channel[false]) == {"complaints"}
