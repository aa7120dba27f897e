"""Work scheduled for later days: expiries, appeal decisions, re-checks of minimum stays."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from numba import njit


@dataclass
class Pending:
    expiries: dict[int, list[tuple[np.ndarray, np.ndarray]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    appeals: dict[int, list[dict[str, np.ndarray]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    checks: dict[int, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))
    # Record-entered listings and tier caps of the recorded world, for appeals (reading 16):
    # person -> slot -> [[record_id, day, end(, tier)]]; slot -1 is the tier cap.
    effects: dict[int, dict[int, list[list[int]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )


def by_day(
    day: np.ndarray, keep: np.ndarray | None, lo: int, hi: int
) -> list[tuple[int, np.ndarray]]:
    """Indices of the rows due on each day in [lo, hi) (and kept), grouped by day, each group
    in row order: one counting pass instead of a mask per distinct day."""
    if keep is None:
        keep = np.ones(len(day), dtype=np.bool_)
    bounds, idx = _group_by_day(day, keep, lo, hi)
    return [(lo + int(d), idx[bounds[d] : bounds[d + 1]]) for d in np.flatnonzero(np.diff(bounds))]


@njit(cache=True, nogil=True)
def _group_by_day(day: np.ndarray, keep: np.ndarray, lo: int, hi: int):
    bounds = np.zeros(max(hi - lo, 0) + 1, dtype=np.int64)
    for r in range(day.shape[0]):
        if keep[r] and lo <= day[r] < hi:
            bounds[day[r] - lo + 1] += 1
    for d in range(bounds.shape[0] - 1):
        bounds[d + 1] += bounds[d]
    fill = bounds[:-1].copy()
    idx = np.empty(bounds[-1], dtype=np.int64)
    for r in range(day.shape[0]):
        if keep[r] and lo <= day[r] < hi:
            idx[fill[day[r] - lo]] = r
            fill[day[r] - lo] += 1
    return bounds, idx
