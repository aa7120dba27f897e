"""numba compiling is announced: the listener hears a compile, and not a cache load or a
second call; and the warm-up compiles what the built-in scenarios call."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
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


WARM_CHECK = """
import json, sys
from xinyong import kernels
from xinyong.api import run
from xinyong.scenario import builtin_scenarios, load_scenario

kernels.warm()
late = {}
for name in builtin_scenarios():
    heard = []
    with kernels.on_compile(heard.append):
        run(load_scenario(name, adults=100_000, days=365))
    late[name] = heard
print(json.dumps(late))
"""


@pytest.mark.slow
def test_the_warm_up_compiles_every_kernel_a_builtin_scenario_calls(tmp_path):
    """From an empty cache, `python -m xinyong.kernels` leaves nothing for a built-in
    scenario's first real run to compile (a compile there costs a second of its run)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", WARM_CHECK], env=env, capture_output=True, text=True, check=True
    )
    late = json.loads(done.stdout.strip().splitlines()[-1])
    assert {name: heard for name, heard in late.items() if heard} == {}


def test_stale_caches_are_dropped_once_the_sources_change(tmp_path, monkeypatch):
    """A kernel's cache may hold an old copy of a helper from another file: any change to
    the package's sources drops every cache, and an unchanged package keeps them."""
    from xinyong import kernels

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    cached = [tmp_path / "a" / "lists.f-1.py311.nbi", tmp_path / "a" / "lists.f-1.py311.1.nbc"]
    cached[0].parent.mkdir()
    for path in cached:
        path.write_bytes(b"old")
    assert kernels.drop_stale_caches()  # no record of the sources: dropped
    assert not any(path.exists() for path in cached)
    for path in cached:
        path.write_bytes(b"new")
    assert not kernels.drop_stale_caches()  # the same sources: kept
    assert all(path.exists() for path in cached)
    monkeypatch.setattr(kernels, "sources_digest", lambda: "another")
    assert kernels.drop_stale_caches()
    assert not any(path.exists() for path in cached)
