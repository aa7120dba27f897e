"""Layer 5, consequences: sanctions follow list membership; the court's list is left by
settling; victims of wrong records appeal (MODEL.md steps 2, 3, 10, 11).

Sanctions are not stored per person: they are on exactly while a granting list is, so they
are read off the list bits through per-city masks. Deterrence (step 10) is applied where each
negative record is scored, which is equivalent because it is first read on the next day.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from xinyong import randomness
from xinyong.scheme.compile import CORRECT


@njit(cache=True, nogil=True)
def update_members(
    members: np.ndarray,
    moved: np.ndarray,
    bits0: np.ndarray,
    city: np.ndarray,
    mask_by_city: np.ndarray,
) -> np.ndarray:
    """The adults whose recorded lists meet a city's mask, kept up to date from the last
    members and the adults whose lists changed since (both in id order): a merge, so the
    cost grows with the changes and the members, not with all adults."""
    out = np.empty(members.shape[0] + moved.shape[0], dtype=np.int32)
    n = i = 0
    for j in range(moved.shape[0] + 1):
        stop = moved[j] if j < moved.shape[0] else np.iinfo(np.int32).max
        while i < members.shape[0] and members[i] < stop:
            out[n] = members[i]
            n += 1
            i += 1
        if j == moved.shape[0]:
            break
        if i < members.shape[0] and members[i] == stop:
            i += 1  # re-decided below
        p = moved[j]
        if bits0[p] & mask_by_city[city[p]]:
            out[n] = p
            n += 1
    return out[:n].copy()


@njit(cache=True, nogil=True)
def settle(
    words: np.ndarray,
    pi: float,
    members: np.ndarray,
    settle_mask: int,
    bits: np.ndarray,
    direct_slot: np.ndarray,
    direct_end: np.ndarray,
) -> np.ndarray:
    """Each listed person settles with probability pi, one draw per settle-list they are on;
    settling ends the recorded and the shadow listing. Returns who settled something. Draws
    from the stream in `words` (`randomness`)."""
    out = np.empty(members.shape[0], dtype=np.int32)
    n = 0
    s = randomness.load(words)
    for x in range(members.shape[0]):
        p = members[x]
        done = False
        for li in range(direct_slot.shape[0]):
            bit = 1 << li
            if not (settle_mask & bit and bits[p, 0] & bit):
                continue
            u, s = randomness.uniform(s)
            if u < pi:
                d = direct_slot[li]
                direct_end[p, 0, d] = -1
                direct_end[p, 1, d] = -1
                done = True
        if done:
            out[n] = p
            n += 1
    randomness.store(words, s)
    return out[:n]


def file_appeals(
    rng: np.random.Generator,
    alpha: float,
    negative: np.ndarray,
    beh: np.ndarray,
    truth: np.ndarray,
    positive: slice = slice(0, 0),
) -> np.ndarray:
    """Indices of today's wrong negative records whose victim appeals (probability alpha).
    The rows `positive` hold positive behaviours' records only and are not searched."""
    cut, end = positive.indices(len(beh))[:2]
    candidates = np.concatenate(
        [
            _wrong_negative(negative, beh[:cut], truth[:cut]),
            end + _wrong_negative(negative, beh[end:], truth[end:]),
        ]
    )
    return candidates[rng.random(candidates.size) < alpha]


@njit(cache=True, nogil=True)
def _wrong_negative(negative: np.ndarray, beh: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Indices of the records that are negative and not correct (counted first: a few
    thousand of a day's million records)."""
    n = 0
    for r in range(beh.shape[0]):
        n += (truth[r] != CORRECT) & (negative[beh[r]] == 1)
    out = np.empty(n, dtype=np.int64)
    n = 0
    for r in range(beh.shape[0]):
        if truth[r] != CORRECT and negative[beh[r]] == 1:
            out[n] = r
            n += 1
    return out
