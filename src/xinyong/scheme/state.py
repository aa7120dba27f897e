"""Scheme state of every member of an entity kind, in two worlds: 0 = recorded, 1 = shadow
(correct records only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from xinyong.scheme.compile import NO_TIER, SchemeTables

RECORDED, SHADOW = 0, 1


class StateView(NamedTuple):
    """The kernels' view of the scheme state (the arrays of SchemeState, never reallocated)."""

    score: np.ndarray
    tier: np.ndarray
    bits: np.ndarray
    cond_bits: np.ndarray
    since: np.ndarray
    direct_end: np.ndarray
    cap_used: np.ndarray
    tiercap_end: np.ndarray
    deter_level: np.ndarray
    deter_levels: int  # len(deter_table)


@dataclass
class SchemeState:
    # Person-major: one person's values for both worlds sit together in memory.
    score: np.ndarray  # int32 [N, 2]
    tier: np.ndarray  # uint8 [N, 2], index into the city pack's tiers, best first
    bits: np.ndarray  # uint8 (uint16 past 8 lists) [N, 2] list membership, bit l = list l
    cond_bits: np.ndarray  # like bits: membership by tier condition
    since: np.ndarray  # int16 [N, 2, L] day the current spell began, -1 none
    direct_end: np.ndarray  # int16 [N, 2, D] last day of a record-entered listing, -1 none
    cap_used: np.ndarray  # uint8 or int16 [N, 2, S] points used of each yearly cap this window
    # Tier caps: the last day a live record caps the tier at level k (-1 none); the tier on
    # day t is at worst the worst k whose end is >= t. Only allocated if a pack has caps.
    tiercap_end: np.ndarray  # int32 [N or 0, 2, maxT]
    # Deterrence after k negative records is deter_table[k]: the same products as multiplying
    # by (1 - eta) per record down to the floor, in 1 or 2 bytes per adult instead of 8.
    deter_level: np.ndarray  # uint8 or uint16 [N]
    deter_table: np.ndarray  # float64 [K+1]
    # The features of scheme/features.py, allocated only where a pack uses them ([0, 2] else):
    units_used: np.ndarray  # int32 [N, 2] units counted on diminishing scales this window
    last_bad: np.ndarray  # int32 [N, 2] the day of the last negative record, -1 none
    pending: np.ndarray  # int32 [N, 2] points waiting for the next recalculation
    tier_count: np.ndarray  # int64 [2, P, maxT]
    list_count: np.ndarray  # int64 [2, L]
    wrong_count: np.ndarray  # int64 [L, G] wrongly listed members by group

    @classmethod
    def new(
        cls, tables: SchemeTables, city: np.ndarray, eta: float, floor: float, groups: int = 2
    ) -> SchemeState:
        n = len(city)
        L, D, S = len(tables.lists), tables.n_direct, tables.n_cap_slots
        has_cap = bool((tables.tier_cap != NO_TIER).any())
        m = n if has_cap else 0
        table = deter_table(eta, floor)
        bits = np.uint8 if L <= 8 else np.uint16
        f = tables.features
        start = np.take(tables.start_score, np.take(tables.city_pack, city)).astype(np.int32)
        return cls(
            score=np.stack([start, start], axis=1),
            tier=np.full((n, 2), NO_TIER, dtype=np.uint8),
            bits=np.zeros((n, 2), dtype=bits),
            cond_bits=np.zeros((n, 2), dtype=bits),
            since=np.full((n, 2, L), -1, dtype=np.int16),
            direct_end=np.full((n, 2, D), -1, dtype=np.int16),
            cap_used=np.zeros((n, 2, S), dtype=np.uint8 if tables.cap.max() <= 255 else np.int16),
            tiercap_end=np.full((m, 2, tables.thresholds.shape[1]), -1, dtype=np.int32),
            deter_level=np.zeros(n, dtype=np.uint8 if len(table) <= 256 else np.uint16),
            deter_table=table,
            units_used=np.zeros((n if f is not None and f.diminishing else 0, 2), np.int32),
            last_bad=np.full((n if f is not None and f.bonus else 0, 2), -1, np.int32),
            pending=np.zeros((n if f is not None and f.recalculated else 0, 2), np.int32),
            tier_count=np.zeros((2, len(tables.packs), tables.thresholds.shape[1]), np.int64),
            list_count=np.zeros((2, L), dtype=np.int64),
            wrong_count=np.zeros((L, groups), dtype=np.int64),
        )

    def view(self) -> StateView:
        return StateView(
            self.score, self.tier, self.bits, self.cond_bits, self.since, self.direct_end,
            self.cap_used, self.tiercap_end, self.deter_level, len(self.deter_table),
        )  # fmt: skip

    @property
    def deter(self) -> np.ndarray:
        """Each adult's deterrence factor (a new float64 array)."""
        return self.deter_table[self.deter_level]


MAX_DETER_LEVEL = 65535


def deter_table(eta: float, floor: float) -> np.ndarray:
    """Deterrence after 0, 1, 2, ... negative records, up to the fixed point (at most 65,535
    records: past that, a person's deterrence stops falling)."""
    table = [1.0]
    while len(table) <= MAX_DETER_LEVEL:
        nxt = max(floor, table[-1] * (1.0 - eta))
        if nxt == table[-1]:
            break
        table.append(nxt)
    return np.array(table, dtype=np.float64)
