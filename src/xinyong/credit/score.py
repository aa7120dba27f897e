"""The private score (docs/credit.md): five factors, weighted 35/25/20/15/5, mapped onto
350-950 and rounded half to even; the lender's repayment history H_book; one pass that
recomputes both worlds' scores of every adult (a numba kernel), C read from each adult's sum
of its neighbours' scores, kept up to date by pushing each changed score to its neighbours
(cost: the edges of the adults whose score moved, not the whole graph)."""

from __future__ import annotations

import numpy as np
from numba import njit

from xinyong.population import neighbours_start

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


@njit(cache=True, nogil=True, inline="always")
def h_book(repaid: int, defaulted: int) -> float:
    """(repaid + 7) / (repaid + 3 defaulted + 10): 0.7 for a file without ended loans."""
    r = np.float64(repaid)
    return (r + 7.0) / (r + 3.0 * np.float64(defaulted) + 10.0)


@njit(cache=True, nogil=True)
def push_changes(
    old: np.ndarray,  # int16 [rows, 2]: the rows' previous scores
    new: np.ndarray,  # int16 [rows, 2]: their scores now
    world: int,  # the column of old and new to push
    first_row: int,  # the graph row of old[0] (the engine's adults: 0; its ghosts: n)
    n: int,  # the engine's adults: only their sums are kept
    nbr_block: np.ndarray,
    nbr_degree: np.ndarray,
    nbr: np.ndarray,
    sums: np.ndarray,  # int64 [n]: per adult, the sum of its neighbours' (score - 350)
) -> None:
    """Add each changed row's change to its neighbours' sums (the graph is symmetric: the
    neighbours of a row are those that have it as a neighbour; a ghost's row lists its
    neighbours here). One pass over the rows in order; edges read for changed rows only."""
    if len(old) == 0:
        return
    off = neighbours_start(first_row, nbr_block, nbr_degree)
    for r in range(len(old)):
        row = first_row + r
        d = nbr_degree[row]
        change = int(new[r, world]) - int(old[r, world])
        if change != 0:
            for k in range(off, off + d):
                j = nbr[k]
                if j < n:
                    sums[j] += change
        off += d


@njit(cache=True, nogil=True)
def rescore(
    sums: np.ndarray,  # int64 [2, n]: per world, the neighbours' sums of (score - 350)
    new: np.ndarray,  # int16 [n, 2]: out, the new scores
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
    nbr_degree: np.ndarray,
    history: np.ndarray,  # out: float64 [n], the recorded world's H
    listed: np.ndarray,  # out: bool [n], the recorded world's H was zeroed by the list
    bands: np.ndarray,  # out: int64 [2, 5], adults per band and world, added to
    lo: int,  # the adults lo .. hi - 1
    hi: int,
) -> None:
    """Both worlds' private scores of the adults lo .. hi - 1. C is the mean over the
    adult's neighbours (of other cities too) of (previous score - 350) / 600, from their
    exact integer sum: all adults move at once, the caller copying `new` into the scores
    once every part of the adults is done."""
    n = len(new)
    with_records = len(records) == n
    for a in range(lo, hi):
        d = nbr_degree[a]
        c0 = c1 = 0.5
        if not first and d:
            c0 = sums[0, a] / (600.0 * d)
            c1 = sums[1, a] / (600.0 * d)
        book = thin_history
        if has_file[a]:
            book = h_book(repaid[a], defaulted[a])
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
