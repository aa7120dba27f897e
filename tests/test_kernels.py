"""numba compiling is announced: the listener hears a compile, and not a cache load or a
second call."""

from __future__ import annotations

import numpy as np
from numba import njit

from xinyong.kernels import on_compile


def test_a_compile_is_heard_once():
    @njit
    def doubled(x: np.ndarray) -> np.ndarray:
        return 2 * x

    heard: list[str] = []
    with on_compile(heard.append):
        assert doubled(np.arange(3)).tolist() == [0, 2, 4]
        first = list(heard)
        assert doubled(np.arange(4)).tolist() == [0, 2, 4, 6]  # same types: compiled already
    assert "test_a_compile_is_heard_once.<locals>.doubled" in first
    assert heard == first
    doubled(np.arange(3.0))  # a new compile outside the block is not heard
    assert heard == first
