"""Growable arrays for compiled kernels (numba has no list of unknown length that is fast)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def grow(a: np.ndarray, need: int) -> np.ndarray:
    """`a` if it holds `need` rows, else a copy with room for at least twice as many."""
    if need <= a.shape[0]:
        return a
    out = np.empty(max(need, 2 * a.shape[0] + 16), dtype=a.dtype)
    out[: a.shape[0]] = a
    return out
