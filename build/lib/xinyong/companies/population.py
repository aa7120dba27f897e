"""The company population (docs/model.md, "Companies", Population): per city, companies
drawn with sizes, indicators, a risk trait and a legal representative among its adults."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xinyong.population import TraitBuckets, city_code, city_sizes, truncated_lognormal
from xinyong.scenario import SIZES, Scenario


@dataclass
class CompanyPopulation:
    city: np.ndarray  # uint8/uint16 [N]
    size: np.ndarray  # uint8 [N], index into SIZES (the kind's groups)
    full: np.ndarray  # bool [N] a full set of indicators
    risk: TraitBuckets
    risk_rank: np.ndarray  # int32 [N] each company's row in risk bucket order
    legal_rep: np.ndarray  # int32 [N] the representing adult (this engine's adult ids)
    city_start: np.ndarray  # int64 [K + 1]

    def __len__(self) -> int:
        return len(self.city)


def company_counts(sc: Scenario) -> np.ndarray:
    """Companies per city: round(per_adult x adults) split by the cities' adult shares
    (largest remainder)."""
    assert sc.companies is not None
    total = sc.companies.count(sc.adults)
    return city_sizes(total, [c.share for c in sc.cities])


def generate_companies(
    sc: Scenario, counts: np.ndarray, adult_start: np.ndarray, rng: np.random.Generator
) -> CompanyPopulation:
    """`counts[k]` companies in each city k, whose adults are ids adult_start[k] ..
    adult_start[k + 1] - 1."""
    co, pop = sc.companies, sc.population
    assert co is not None
    n = int(counts.sum())
    city_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    city = np.repeat(np.arange(len(counts), dtype=city_code(len(counts))), counts)
    shares = np.array([co.size_shares[s] for s in SIZES])
    size = np.searchsorted(np.cumsum(shares), rng.random(n), side="right")
    size = np.minimum(size, len(SIZES) - 1).astype(np.uint8)
    full_share = np.array([co.full_indicators[s] for s in SIZES])
    full = rng.random(n) < full_share[size]
    risk = truncated_lognormal(rng, n, co.risk_sigma, pop.trait_min, pop.trait_max)
    first = np.repeat(adult_start[:-1], counts)
    adults_of = np.repeat(np.diff(adult_start), counts)
    if n and (adults_of == 0).any():
        raise ValueError("a city with companies has no adults to represent them")
    legal_rep = (first + np.floor(rng.random(n) * adults_of).astype(np.int64)).astype(np.int32)
    if n:
        buckets = TraitBuckets.of(risk)
    else:  # a city too small for a company of its own: one empty bucket
        buckets = TraitBuckets(np.empty((0, 3), np.int32), np.zeros(2, np.int64), np.ones(1))
    return CompanyPopulation(city, size, full, buckets, buckets.rank()[:n], legal_rep, city_start)
