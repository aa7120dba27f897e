"""The private score (docs/credit.md): five factors, weighted 35/25/20/15/5, mapped onto
350-950 and rounded half to even; the lender's repayment history H_book; and one pass that
recomputes both worlds' scores of every adult (a numba kernel: the graph is read once)."""

from __future__ import annotations

import numpy as np
from numba import njit

from xinyong.credit.params import SCORE_HI, SCORE_LO
from xinyong.population import NBR_BLOCK

# Below 550, 550-599, 600-649, 650-699, from 700 (the kernel counts them; the summary's SQL
# reads the same edges).
BANDS = ("poor", "medium", "good", "very_good", "excellent")


@njit(cache=True, nogil=True, inline="always")
def score_of(h: float, b: float, f: float, i: float, c: float) -> int:
    """round(350 + 600 (0.35 H + 0.25 B + 0.20 F + 0.15 I + 0.05 C)), half to even, on the
    float64 value of the formula as written."""
    return int(np.rint(350.0 + 600.0 * (0.35 * h + 0.25 * b + 0.20 * f + 0.15 * i + 0.05 * c)))


@njit(cache=True, nogil=True)
def _scores(h: np.ndarray, b: np.ndarray, f: np.ndarray, i: float, c: np.ndarray) -> np.ndarray:
    out = np.empty(len(h), dtype=np.int16)
    for k in range(len(h)):
        out[k] = score_of(h[k], b[k], f[k], i, c[k])
    return out


def private_score(
    h: np.ndarray, b: np.ndarray, f: np.ndarray, i: float, c: np.ndarray
) -> np.ndarray:
    """The score of each adult from its factors (the kernel's own formula)."""
    as_float = [np.ascontiguousarray(x, dtype=np.float64) for x in (h, b, f, c)]
    return _scores(as_float[0], as_float[1], as_float[2], float(i), as_float[3])


def h_book(repaid: np.ndarray, defaulted: np.ndarray) -> np.ndarray:
    """(repaid + 7) / (repaid + 3 defaulted + 10): 0.7 for a file without ended loans."""
    r = np.asarray(repaid, dtype=np.float64)
    return (r + 7.0) / (r + 3.0 * np.asarray(defaulted, dtype=np.float64) + 10.0)


# (s - 350) / 600 of every private score s, indexed by s: the same float64 values as the
# division, read from a table instead of computed twice per edge.
UNIT = np.concatenate([np.zeros(SCORE_LO), (np.arange(SCORE_LO, SCORE_HI + 1) - 350) / 600.0])


@njit(cache=True, nogil=True)
def rescore(
    score: np.ndarray,  # int16 [n, 2]: the previous computation, replaced by this one
    ghost_score: np.ndarray,  # int16 [ghosts, 2]: the same of the neighbours in other cities
    new: np.ndarray,  # int16 [n, 2]: scratch, kept by the caller between computations
    has_file: np.ndarray,
    repaid: np.ndarray,
    defaulted: np.ndarray,
    bits: np.ndarray,  # [n, 2] list membership per world
    listed_bit: int,  # H = 0 on this list (the court's, when it is shared); 0: none
    behaviour: np.ndarray,  # min(1, civic / 3)
    records: np.ndarray,  # int32 [n, 2] negative records in the window, or [0, 2]
    records_scale: float,
    capacity: np.ndarray,
    identity: float,
    thin_history: float,
    first: bool,  # the computation before day 0: C = 0.5
    nbr_block: np.ndarray,
    nbr_degree: np.ndarray,
    nbr: np.ndarray,
    unit: np.ndarray,  # UNIT
    history: np.ndarray,  # out: float64 [n], the recorded world's H
    listed: np.ndarray,  # out: bool [n], the recorded world's H was zeroed by the list
    bands: np.ndarray,  # out: int64 [2, 5], adults per band and world, added to
    lo: int,  # the adults lo .. hi - 1 (lo a multiple of NBR_BLOCK)
    hi: int,
) -> None:
    """Both worlds' private scores of the adults lo .. hi - 1, in one pass over them and their
    edges. C reads the neighbours' previous scores (of other cities too, their ghost rows'
    `ghost_score`), so all adults move at once: the new scores go to `new`, which the caller
    copies into `score` once every part of the adults is done."""
    n = len(score)
    off = 0
    with_records = len(records) == n
    for a in range(lo, hi):
        if a % NBR_BLOCK == 0:
            off = nbr_block[a // NBR_BLOCK]
        d = nbr_degree[a]
        c0 = c1 = 0.5
        if not first:  # both worlds' neighbours in one pass over the adult's edges
            total0, total1 = 0.0, 0.0
            for k in range(off, off + d):
                j = nbr[k]
                if j < n:
                    total0 += unit[score[j, 0]]
                    total1 += unit[score[j, 1]]
                else:
                    total0 += unit[ghost_score[j - n, 0]]
                    total1 += unit[ghost_score[j - n, 1]]
            if d:
                c0, c1 = total0 / d, total1 / d
        off += d
        book = thin_history
        if has_file[a]:
            book = (repaid[a] + 7.0) / (repaid[a] + 3.0 * defaulted[a] + 10.0)
        for w in range(2):
            zero = (bits[a, w] & listed_bit) != 0
            h = 0.0 if zero else book
            b = behaviour[a]
            if with_records:
                b = b * max(0.0, 1.0 - records[a, w] / records_scale)
            s = score_of(h, b, capacity[a], identity, c0 if w == 0 else c1)
            new[a, w] = s
            bands[w, (s >= 550) + (s >= 600) + (s >= 650) + (s >= 700)] += 1
            if w == 0:
                history[a] = h
                listed[a] = zero
