"""The private score (docs/credit.md): five factors, weighted 35/25/20/15/5, mapped onto
350-950 and rounded half to even; and the lender's repayment history H_book."""

from __future__ import annotations

import numpy as np
from numba import njit

from xinyong.credit.params import SCORE_HI, SCORE_LO
from xinyong.population import NBR_BLOCK

BANDS = ("poor", "medium", "good", "very_good", "excellent")
BAND_EDGES = np.array([550, 600, 650, 700])  # a score at an edge is in the upper band
SPAN = SCORE_HI - SCORE_LO


def private_score(
    h: np.ndarray, b: np.ndarray, f: np.ndarray, i: float, c: np.ndarray
) -> np.ndarray:
    """round(350 + 600 (0.35 H + 0.25 B + 0.20 F + 0.15 I + 0.05 C)), half to even, on the
    float64 value of the formula as written."""
    x = SCORE_LO + SPAN * (0.35 * h + 0.25 * b + 0.20 * f + 0.15 * i + 0.05 * c)
    return np.rint(x).astype(np.int16)


def h_book(repaid: np.ndarray, defaulted: np.ndarray) -> np.ndarray:
    """(repaid + 7) / (repaid + 3 defaulted + 10): 0.7 for a file without ended loans."""
    r = np.asarray(repaid, dtype=np.float64)
    return (r + 7.0) / (r + 3.0 * np.asarray(defaulted, dtype=np.float64) + 10.0)


def band_of(score: np.ndarray) -> np.ndarray:
    """Index into BANDS of each score."""
    return np.searchsorted(BAND_EDGES, score, side="right")


@njit(cache=True, nogil=True)
def connections(
    previous: np.ndarray, nbr_block: np.ndarray, nbr_degree: np.ndarray, nbr: np.ndarray
) -> np.ndarray:
    """C per adult: the mean of (neighbour's previous score - 350) / 600 over its neighbours
    in this engine (ghost rows of other cities are not scored here), 0.5 without any."""
    n = len(previous)
    out = np.empty(n, dtype=np.float64)
    off = 0
    for i in range(n):
        if i % NBR_BLOCK == 0:
            off = nbr_block[i // NBR_BLOCK]
        d = nbr_degree[i]
        total, count = 0.0, 0
        for k in range(off, off + d):
            j = nbr[k]
            if j < n:
                total += (previous[j] - 350) / 600.0
                count += 1
        out[i] = total / count if count else 0.5
        off += d
    return out
