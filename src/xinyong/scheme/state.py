"""Scheme state of every adult, in two worlds: 0 = recorded, 1 = shadow (correct records only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xinyong.scheme.compile import NO_TIER, Tables

RECORDED, SHADOW = 0, 1


@dataclass
class SchemeState:
    score: np.ndarray  # int32 [2, N]
    tier: np.ndarray  # uint8 [2, N], index into the city pack's tiers, best first
    bits: np.ndarray  # uint16 [2, N] list membership, bit l = list l
    cond_bits: np.ndarray  # uint16 [2, N] membership by tier condition
    since: np.ndarray  # int32 [2, L, N] day the current spell began
    direct_end: np.ndarray  # int32 [2, D, N] last day of a record-entered listing, -1 none
    cap_used: np.ndarray  # int32 [2, S, N] points used of each yearly cap in this window
    tiercap: np.ndarray  # uint8 [2, N or 0] worst tier allowed by a live capping record
    tiercap_end: np.ndarray  # int32 [2, N or 0]
    deter: np.ndarray  # float64 [N]
    tier_count: np.ndarray  # int64 [2, P, maxT]
    list_count: np.ndarray  # int64 [2, L]
    wrong_count: np.ndarray  # int64 [L, 2] wrongly listed adults by group

    @classmethod
    def new(cls, tables: Tables, city: np.ndarray) -> SchemeState:
        n = len(city)
        L, D, S = len(tables.lists), tables.n_direct, tables.n_cap_slots
        has_cap = bool((tables.tier_cap != NO_TIER).any())
        m = n if has_cap else 0
        start = tables.start_score[tables.city_pack[city]].astype(np.int32)
        return cls(
            score=np.stack([start, start]),
            tier=np.full((2, n), NO_TIER, dtype=np.uint8),
            bits=np.zeros((2, n), dtype=np.uint16),
            cond_bits=np.zeros((2, n), dtype=np.uint16),
            since=np.full((2, L, n), -1, dtype=np.int32),
            direct_end=np.full((2, D, n), -1, dtype=np.int32),
            cap_used=np.zeros((2, S, n), dtype=np.int32),
            tiercap=np.full((2, m), NO_TIER, dtype=np.uint8),
            tiercap_end=np.full((2, m), -1, dtype=np.int32),
            deter=np.ones(n, dtype=np.float64),
            tier_count=np.zeros((2, len(tables.packs), tables.thresholds.shape[1]), np.int64),
            list_count=np.zeros((2, L), dtype=np.int64),
            wrong_count=np.zeros((L, 2), dtype=np.int64),
        )
