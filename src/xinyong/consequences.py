"""Layer 5, consequences: sanctions follow list membership; the court's list is left by
settling; victims of wrong records appeal (MODEL.md steps 2, 3, 10, 11).

Sanctions are not stored per person: they are on exactly while a granting list is, so they
are read off the list bits through per-city masks. Deterrence (step 10) is applied where each
negative record is scored, which is equivalent because it is first read on the next day.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def scan_members(
    bits0: np.ndarray,
    city: np.ndarray,
    distress_mask: np.ndarray,
    assoc_bit: int,
    settle_mask: int,
    is_distressed: np.ndarray,
):
    """Start-of-day view of the recorded lists: who is distressed (fills `is_distressed`), who
    is on the association list, who is on a list left by settlement."""
    n = bits0.shape[0]
    nd = na = ns = 0
    for i in range(n):
        b = bits0[i]
        if b == 0:
            is_distressed[i] = 0
            continue
        d = (b & distress_mask[city[i]]) != 0
        is_distressed[i] = d
        nd += d
        na += (b & assoc_bit) != 0
        ns += (b & settle_mask) != 0
    distressed = np.empty(nd, dtype=np.int32)
    assoc = np.empty(na, dtype=np.int32)
    settle = np.empty(ns, dtype=np.int32)
    nd = na = ns = 0
    for i in range(n):
        b = bits0[i]
        if b == 0:
            continue
        if is_distressed[i]:
            distressed[nd] = i
            nd += 1
        if b & assoc_bit:
            assoc[na] = i
            na += 1
        if b & settle_mask:
            settle[ns] = i
            ns += 1
    return distressed, assoc, settle


@njit(cache=True, nogil=True)
def settle(
    rng,
    pi: float,
    members: np.ndarray,
    settle_mask: int,
    bits: np.ndarray,
    direct_slot: np.ndarray,
    direct_end: np.ndarray,
) -> np.ndarray:
    """Each listed person settles with probability pi, one draw per settle-list they are on;
    settling ends the recorded and the shadow listing. Returns who settled something."""
    out = np.empty(members.shape[0], dtype=np.int32)
    n = 0
    for x in range(members.shape[0]):
        p = members[x]
        done = False
        for li in range(direct_slot.shape[0]):
            bit = 1 << li
            if settle_mask & bit and bits[p, 0] & bit and rng.random() < pi:
                d = direct_slot[li]
                direct_end[p, 0, d] = -1
                direct_end[p, 1, d] = -1
                done = True
        if done:
            out[n] = p
            n += 1
    return out[:n]


def file_appeals(
    rng: np.random.Generator, alpha: float, negative: np.ndarray, beh: np.ndarray, wrong: np.ndarray
) -> np.ndarray:
    """Indices of today's wrong negative records whose victim appeals (probability alpha)."""
    candidates = np.flatnonzero(wrong & (negative[beh] == 1))
    return candidates[rng.random(candidates.size) < alpha]
