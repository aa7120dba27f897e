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


def by_day(day: np.ndarray, lo: int, hi: int) -> list[tuple[int, np.ndarray]]:
    """Indices of the rows due on each day in [lo, hi), grouped by day, each group in row
    order: one counting pass instead of a mask per distinct day."""
    if not len(day):  # most calls in a small city's day: nothing due, and no pass at all
        return []
    days, starts, idx = _group_by_day(day, lo, hi)
    bounds = zip(days.tolist(), starts[:-1].tolist(), starts[1:].tolist(), strict=True)
    return [(d, idx[a:b]) for d, a, b in bounds]


@njit(cache=True, nogil=True)
def _group_by_day(day: np.ndarray, lo: int, hi: int):
    """The days with rows due (ascending), where each day's rows start in `idx` (and where
    the last ends), and the rows' indices grouped by day."""
    bounds = np.zeros(max(hi - lo, 0) + 1, dtype=np.int64)
    for r in range(day.shape[0]):
        if lo <= day[r] < hi:
            bounds[day[r] - lo + 1] += 1
    groups = 0
    for d in range(bounds.shape[0] - 1):
        groups += bounds[d + 1] > 0
        bounds[d + 1] += bounds[d]
    fill = bounds[:-1].copy()
    idx = np.empty(bounds[-1], dtype=np.int64)
    for r in range(day.shape[0]):
        if lo <= day[r] < hi:
            idx[fill[day[r] - lo]] = r
            fill[day[r] - lo] += 1
    days = np.empty(groups, dtype=np.int64)
    starts = np.empty(groups + 1, dtype=np.int64)
    g = 0
    for d in range(bounds.shape[0] - 1):
        if bounds[d + 1] > bounds[d]:
            days[g], starts[g] = lo + d, bounds[d]
            g += 1
    starts[groups] = bounds[-1]
    return days, starts, idx
