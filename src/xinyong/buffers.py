"""Output buffers for compiled kernels.

A kernel must not grow an array inside its loop: numba then reference-counts the array on
every iteration, which made kernels 20x slower. Kernels with unknown output size take a
capacity and return -1 when it is too small; `with_capacity` then restores the random
stream and runs again with more room, so results never depend on the capacity chosen.
Outputs that outlive the day are returned as copies: a slice of a buffer keeps the whole
buffer alive (Arrow wraps arrays without copying).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def with_capacity(
    rng: np.random.Generator, capacity: int, kernel: Callable[..., tuple], *args: Any
) -> tuple:
    state = rng.bit_generator.state
    while True:
        out = kernel(rng, capacity, *args)
        if out[0] >= 0:
            return out[1:]
        rng.bit_generator.state = state
        capacity *= 2


def headroom(expected: float) -> int:
    """Room for a count with this mean: well past any Poisson-like fluctuation."""
    return int(expected + 8.0 * np.sqrt(expected) + 1024)
