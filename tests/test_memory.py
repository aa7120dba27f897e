"""The allocator keeps freed memory for the next allocations (xinyong.memory)."""

from __future__ import annotations

import ctypes
import gc
import resource
import subprocess
import sys

import pytest

import xinyong
from xinyong import memory

SIZE = 64 << 20  # above glibc's default threshold, which maps and unmaps such blocks each time


def test_a_freed_block_serves_the_next_allocation_without_fresh_pages() -> None:
    """Reallocating a freed 64 MiB block and writing all of it touches no page new to the
    process (by default: 16,384 page faults, one per 4 KiB page)."""
    if not memory.keep_freed():
        pytest.skip("not glibc's allocator")
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]

    def write_a_block() -> None:
        block = libc.malloc(SIZE)
        assert block
        ctypes.memset(block, 1, SIZE)
        libc.free(block)

    write_a_block()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    write_a_block()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < SIZE // 4096 // 100


def test_a_run_leaves_the_garbage_collector_as_it_found_it() -> None:
    """Objects are kept out of the collector's passes during a run, and given back after."""
    seen: list[int] = []
    sc = xinyong.load_scenario("r1", adults=500, days=3)
    xinyong.run(sc, on_day=lambda t: seen.append(gc.get_freeze_count()))
    assert min(seen) > 0 and gc.get_freeze_count() == 0


def test_importing_xinyong_leaves_the_allocator_alone() -> None:
    """Only the command line and `xinyong.run` tune malloc; importing the package does not."""
    code = (
        "from xinyong import memory\n"
        "calls = []\n"
        "memory.keep_freed = lambda: calls.append(1)\n"
        "import xinyong, xinyong.cli, xinyong.audit.report\n"
        "assert not calls, calls\n"
        "xinyong.run(xinyong.load_scenario('r1', adults=50, days=1), keep_freed_memory=False)\n"
        "assert not calls, calls\n"
        "xinyong.run(xinyong.load_scenario('r1', adults=50, days=1))\n"
        "assert calls == [1], calls\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
