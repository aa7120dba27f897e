"""Stable radix sort of a day's person ids.

A counting sort over all adults would touch a table of the population's size every day; an
LSD radix sort with digits of at most RADIX_BITS bits keeps each pass's table in cache, so
the cost grows with the ids sorted, not with the number of adults (at 100 M adults, 13 M ids
sort in 0.36 s instead of 0.55 s; at 10 M the two are equal).
"""

from __future__ import annotations

import numpy as np
from numba import njit

RADIX_BITS = 11


@njit(cache=True, nogil=True)
def radix_sort(key: np.ndarray, bound: int, skip: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sort by key >> skip, stably, for keys in [0, bound): (sorted keys, their indices)."""
    n = key.shape[0]
    width = 1
    while (1 << width) <= (bound - 1) >> skip:
        width += 1
    passes = (width + RADIX_BITS - 1) // RADIX_BITS
    digit = (width + passes - 1) // passes
    mask = (1 << digit) - 1
    sorted_key, order = key.copy(), np.arange(n)
    key_to, order_to = np.empty_like(sorted_key), np.empty(n, dtype=np.int64)
    for k in range(passes):
        shift = skip + k * digit
        fill = np.zeros(mask + 2, dtype=np.int64)
        for i in range(n):
            fill[((sorted_key[i] >> shift) & mask) + 1] += 1
        for d in range(mask + 1):
            fill[d + 1] += fill[d]
        for i in range(n):
            d = (sorted_key[i] >> shift) & mask
            key_to[fill[d]] = sorted_key[i]
            order_to[fill[d]] = order[i]
            fill[d] += 1
        sorted_key, key_to = key_to, sorted_key
        order, order_to = order_to, order
    return sorted_key, order
