"""Output buffers for compiled kernels.

A kernel must not grow an array inside its loop: numba then reference-counts the array on
every iteration, which made kernels 20x slower. Kernels with unknown output size take a
capacity and return -1 when it is too small; `with_capacity` then runs them again with more
room from the same state of the random stream, so results never depend on the capacity chosen.
Outputs that outlive the day are returned as copies: a slice of a buffer keeps the whole
buffer alive (Arrow wraps arrays without copying).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from xinyong import randomness


def with_capacity(
    rng: np.random.Generator, capacity: int, kernel: Callable[..., tuple], *args: Any
) -> tuple:
    """kernel(words, capacity, *args) drawing from `rng` (see `randomness`), with room enough."""
    start = randomness.words_of(rng)
    while True:
        words = start.copy()
        out = kernel(words, capacity, *args)
        if out[0] >= 0:
            randomness.restore(rng, words)
            return out[1:]
        capacity *= 2


def headroom(expected: float) -> int:
    """Room for a count with this mean: well past any Poisson-like fluctuation."""
    return int(expected + 8.0 * math.sqrt(expected) + 1024)
