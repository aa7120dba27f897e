"""Freed memory kept in the process for the next allocations, where glibc's malloc is in use.

By default glibc gives large freed blocks back to the operating system at once and serves
each thread from an arena of its own, so a run's temporaries keep arriving in memory new to
the process; on a virtual machine the first touch of such memory costs more than the work done
on it (docs/performance.md: 100 M adults x 30 days 143.7 -> 127.0 s). With one arena and high
thresholds, freed blocks serve the next allocations instead. Importing `xinyong` changes
nothing: the command line sets this up first thing, and `xinyong.run` when it starts (its
`keep_freed_memory=False` leaves the process's allocator alone); `release()` gives the free
memory back after each run.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -2, -3, -8
KEEP = {
    M_ARENA_MAX: 1,  # threads share the main arena: what one frees, another reuses
    M_MMAP_THRESHOLD: 1 << 30,  # blocks up to 1 GiB from the heap, not mapped each time
    M_TRIM_THRESHOLD: 2**31 - 1,  # free memory at the heap's top stays until release()
    M_TOP_PAD: 64 << 20,  # the heap grows 64 MiB at a time
}


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to tune
        return None


def keep_freed() -> bool:
    """Keep freed memory for reuse (idempotent). False where the allocator is not glibc's."""
    libc = _glibc()
    if libc is None:
        return False
    for option, value in KEEP.items():
        libc.mallopt(option, value)
    return True


def release() -> None:
    """Give the free memory back to the operating system."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
