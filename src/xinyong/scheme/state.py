"""Scheme state of every adult, in two worlds: 0 = recorded, 1 = shadow (correct records only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xinyong.scheme.compile import NO_TIER, Tables

RECORDED, SHADOW = 0, 1


@dataclass
class SchemeState:
    # Person-major: one person's values for both worlds sit together in memory.
    score: np.ndarray  # int32 [N, 2]
    tier: np.ndarray  # uint8 [N, 2], index into the city pack's tiers, best first
    bits: np.ndarray  # uint16 [N, 2] list membership, bit l = list l
    cond_bits: np.ndarray  # uint16 [N, 2] membership by tier condition
    since: np.ndarray  # int16 [N, 2, L] day the current spell began, -1 none
    direct_end: np.ndarray  # int16 [N, 2, D] last day of a record-entered listing, -1 none
    cap_used: np.ndarray  # uint8 or int16 [N, 2, S] points used of each yearly cap this window
    # Tier caps: the last day a live record caps the tier at level k (-1 none); the tier on
    # day t is at worst the worst k whose end is >= t. Only allocated if a pack has caps.
    tiercap_end: np.ndarray  # int32 [N or 0, 2, maxT]
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
            score=np.stack([start, start], axis=1),
            tier=np.full((n, 2), NO_TIER, dtype=np.uint8),
            bits=np.zeros((n, 2), dtype=np.uint16),
            cond_bits=np.zeros((n, 2), dtype=np.uint16),
            since=np.full((n, 2, L), -1, dtype=np.int16),
            direct_end=np.full((n, 2, D), -1, dtype=np.int16),
            cap_used=np.zeros((n, 2, S), dtype=np.uint8 if tables.cap.max() <= 255 else np.int16),
            tiercap_end=np.full((m, 2, tables.thresholds.shape[1]), -1, dtype=np.int32),
            deter=np.ones(n, dtype=np.float64),
            tier_count=np.zeros((2, len(tables.packs), tables.thresholds.shape[1]), np.int64),
            list_count=np.zeros((2, L), dtype=np.int64),
            wrong_count=np.zeros((L, 2), dtype=np.int64),
        )
