"""Compile a scenario's packs into the scheme's lookup tables: points, tiers, list rules.

Indices: behaviours in scenario order; lists by name across all packs (a list named in two
municipal packs is one list with per-city rules); municipal packs in city order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from xinyong.errors import XinyongError
from xinyong.params import PER_CITY
from xinyong.scenario import Scenario
from xinyong.scheme.features import Features, compile_features
from xinyong.scheme.schema import Condition

MAX_LISTS = 16
NO_TIER = 255
UNTIMED = -1  # direct listing with no end day (left by settlement or appeal only)
FOREVER = np.iinfo(np.int16).max  # the end day of a listing with no end

# Tier-condition kinds (entry and exit).
COND_NONE, COND_AT_MOST, COND_AT_LEAST = 0, 1, 2
# Exit kinds.
EXIT_NOT_ENTRY, EXIT_AT_MOST, EXIT_AT_LEAST, EXIT_NEVER, EXIT_SETTLEMENT = 0, 1, 2, 3, 4


class Rules(NamedTuple):
    """Scoring's view of the scheme (scoring.score_records)."""

    city_pack: np.ndarray
    points: np.ndarray
    expiry: np.ndarray
    cap: np.ndarray
    cap_slot: np.ndarray
    score_lo: np.ndarray
    score_hi: np.ndarray
    negative: np.ndarray  # the world's: negative records lower deterrence
    tier_cap: np.ndarray
    direct_days: np.ndarray
    direct_slot: np.ndarray
    thresholds: np.ndarray
    n_tiers: np.ndarray


class ListRules(NamedTuple):
    """The tier and list rules' view of the scheme (lists.evaluate)."""

    city_pack: np.ndarray
    n_tiers: np.ndarray
    thresholds: np.ndarray
    entry_kind: np.ndarray
    entry_tier: np.ndarray
    exit_kind: np.ndarray
    exit_tier: np.ndarray
    min_stay: np.ndarray
    direct_slot: np.ndarray


@dataclass
class SchemeTables:
    behaviours: list[str]
    lists: list[str]
    packs: list[str]  # municipal packs, index p
    tier_names: list[list[str]]  # per municipal pack, best first
    # cities
    city_pack: np.ndarray = field(metadata=PER_CITY)  # int64 [K]
    # packs
    start_score: np.ndarray  # int64 [P]
    score_lo: np.ndarray  # int64 [P]
    score_hi: np.ndarray  # int64 [P]
    thresholds: np.ndarray  # int64 [P, maxT]; tier k needs score >= thresholds[p, k]
    points: np.ndarray  # int64 [P, B]
    expiry: np.ndarray  # int64 [P, B], 0 = never expires
    cap: np.ndarray  # int64 [P, B], 0 = no yearly cap
    cap_slot: np.ndarray  # int64 [B], -1 when no pack caps the behaviour
    tier_cap: np.ndarray  # int64 [P, B], NO_TIER = none
    # lists, per city
    # int64 [K, B, L]: 0 none, UNTIMED, or days
    direct_days: np.ndarray = field(metadata=PER_CITY)
    direct_slot: np.ndarray  # int64 [L], -1 for lists never entered by a record
    entry_kind: np.ndarray = field(metadata=PER_CITY)  # int64 [K, L]
    entry_tier: np.ndarray = field(metadata=PER_CITY)  # int64 [K, L]
    exit_kind: np.ndarray = field(metadata=PER_CITY)  # int64 [K, L]
    exit_tier: np.ndarray = field(metadata=PER_CITY)  # int64 [K, L]
    min_stay: np.ndarray = field(metadata=PER_CITY)  # int64 [K, L]
    settle_mask: int  # lists left by settlement (bit mask)
    # Person lists that follow a list of another kind's members (list index -> that list):
    # held through their direct slot, which the module of that kind sets.
    represents: dict[int, str]
    # What some packs have and most do not (scheme/features.py); None when no pack does.
    features: Features | None = None

    @property
    def n_direct(self) -> int:
        return int((self.direct_slot >= 0).sum())

    @property
    def n_cap_slots(self) -> int:
        return int(self.cap_slot.max()) + 1 if self.cap_slot.size else 0

    @property
    def n_tiers(self) -> np.ndarray:
        return np.array([len(t) for t in self.tier_names], dtype=np.int64)

    def rules(self, negative: np.ndarray) -> Rules:
        return Rules(
            self.city_pack, self.points, self.expiry, self.cap, self.cap_slot, self.score_lo,
            self.score_hi, negative, self.tier_cap, self.direct_days, self.direct_slot,
            self.thresholds, self.n_tiers,
        )  # fmt: skip

    def list_rules(self) -> ListRules:
        return ListRules(
            self.city_pack, self.n_tiers, self.thresholds, self.entry_kind, self.entry_tier,
            self.exit_kind, self.exit_tier, self.min_stay, self.direct_slot,
        )  # fmt: skip


def list_names(sc: Scenario) -> list[str]:
    """Every list of the scenario's packs: the municipal packs' in city order, then the
    national packs'."""
    names: list[str] = []
    for pack in [sc.packs[p] for p in municipal_packs(sc)] + sc.national():
        names += [n for n in pack.lists if n not in names]
    return names


def municipal_packs(sc: Scenario) -> list[str]:
    return list(dict.fromkeys(c.pack for c in sc.cities))


def compile_scheme(sc: Scenario) -> SchemeTables:
    behaviours = list(sc.behaviours)
    bidx = {b: i for i, b in enumerate(behaviours)}
    packs = municipal_packs(sc)
    lists = list_names(sc)
    if len(lists) > MAX_LISTS:
        raise XinyongError(f"at most {MAX_LISTS} lists are supported, got {len(lists)}")
    lidx = {name: i for i, name in enumerate(lists)}
    B, L, P, K = len(behaviours), len(lists), len(packs), len(sc.cities)

    tier_names = [sc.packs[p].tier_names for p in packs]
    max_t = max(len(t) for t in tier_names)
    thresholds = np.full((P, max_t), np.iinfo(np.int64).min // 4, dtype=np.int64)
    start = np.zeros(P, dtype=np.int64)
    lo = np.full(P, np.iinfo(np.int32).min, dtype=np.int64)
    hi = np.full(P, np.iinfo(np.int32).max, dtype=np.int64)
    points = np.zeros((P, B), dtype=np.int64)
    expiry = np.zeros((P, B), dtype=np.int64)
    cap = np.zeros((P, B), dtype=np.int64)
    tier_cap = np.full((P, B), NO_TIER, dtype=np.int64)
    for p, pid in enumerate(packs):
        pack = sc.packs[pid]
        start[p] = pack.start_score.value
        if pack.score_bounds is not None:
            if pack.score_bounds.min is not None:
                lo[p] = pack.score_bounds.min
            if pack.score_bounds.max is not None:
                hi[p] = pack.score_bounds.max
        for k, tier in enumerate(pack.tiers):
            if tier.min_score is not None:
                thresholds[p, k] = tier.min_score
        for b, rule in pack.rules.items():
            points[p, bidx[b]] = rule.points
            expiry[p, bidx[b]] = rule.expiry_days or 0
            cap[p, bidx[b]] = rule.yearly_cap or 0
            for eff in rule.effects:
                if eff.tier_at_most is not None:
                    tier_cap[p, bidx[b]] = pack.tier_names.index(eff.tier_at_most)
    capped = np.flatnonzero((cap > 0).any(axis=0))
    cap_slot = np.full(B, -1, dtype=np.int64)
    cap_slot[capped] = np.arange(len(capped))

    direct_days = np.zeros((K, B, L), dtype=np.int64)
    entry_kind = np.zeros((K, L), dtype=np.int64)
    entry_tier = np.zeros((K, L), dtype=np.int64)
    exit_kind = np.zeros((K, L), dtype=np.int64)
    exit_tier = np.zeros((K, L), dtype=np.int64)
    min_stay = np.zeros((K, L), dtype=np.int64)
    settle_mask = 0
    represents: dict[int, str] = {}
    national = sc.national()
    for k, city in enumerate(sc.cities):
        governing = [sc.packs[city.pack], *national]
        for pack in governing:
            tiers = pack.tier_names
            for b, rule in pack.rules.items():
                for eff in rule.effects:
                    if eff.list is not None:
                        direct_days[k, bidx[b], lidx[eff.list]] = eff.days or UNTIMED
            for name, lst in pack.lists.items():
                li = lidx[name]
                bit = 1 << li
                entry = lst.entry
                if entry is not None and entry.record is not None:
                    direct_days[k, bidx[entry.record], li] = entry.days or UNTIMED
                elif entry is not None and entry.represents is not None:
                    represents[li] = entry.represents
                elif entry is not None:
                    entry_kind[k, li], entry_tier[k, li] = _tier_condition(entry, tiers)
                    min_stay[k, li] = lst.min_stay_days
                if lst.permanent:
                    exit_kind[k, li] = EXIT_NEVER
                elif lst.exit == "settlement":
                    exit_kind[k, li] = EXIT_SETTLEMENT
                    settle_mask |= bit
                elif isinstance(lst.exit, Condition):
                    kind, tier = _tier_condition(lst.exit, tiers)
                    exit_kind[k, li] = EXIT_AT_MOST if kind == COND_AT_MOST else EXIT_AT_LEAST
                    exit_tier[k, li] = tier
    direct = (direct_days != 0).any(axis=(0, 1))
    direct[list(represents)] = True
    direct_lists = np.flatnonzero(direct)
    direct_slot = np.full(L, -1, dtype=np.int64)
    direct_slot[direct_lists] = np.arange(len(direct_lists))

    return SchemeTables(
        behaviours=behaviours,
        lists=lists,
        packs=packs,
        tier_names=tier_names,
        city_pack=np.array([packs.index(c.pack) for c in sc.cities], dtype=np.int64),
        start_score=start,
        score_lo=lo,
        score_hi=hi,
        thresholds=thresholds,
        points=points,
        expiry=expiry,
        cap=cap,
        cap_slot=cap_slot,
        tier_cap=tier_cap,
        direct_days=direct_days,
        direct_slot=direct_slot,
        entry_kind=entry_kind,
        entry_tier=entry_tier,
        exit_kind=exit_kind,
        exit_tier=exit_tier,
        min_stay=min_stay,
        settle_mask=settle_mask,
        represents=represents,
        features=compile_features([sc.packs[p] for p in packs], behaviours),
    )


def _tier_condition(cond: Condition, tiers: list[str]) -> tuple[int, int]:
    # Tiers are indexed best first, so "at most D" means index >= index(D).
    if cond.tier_at_most is not None:
        return COND_AT_MOST, tiers.index(cond.tier_at_most)
    return COND_AT_LEAST, tiers.index(cond.tier_at_least)
