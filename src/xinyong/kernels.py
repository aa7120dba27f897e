"""When numba compiles: saying so while it happens, and compiling ahead of a first run.

numba compiles a kernel the first time it is called and keeps the result on disk; after
set-up, or after `make kernels` drops the caches, the first run compiles every kernel it
calls (about a minute on a 2-core machine) before its first day ends. `python -m
xinyong.kernels` does that on a tiny population, so that the first real run is warm.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

COMPILING = "compiling kernels"
COMPILE_NOTE = (
    "compiling kernels, once after set-up or a source change: up to a minute or two before "
    "the first day moves (`make kernels` does it ahead)"
)


@contextlib.contextmanager
def on_compile(callback: Callable[[str], None]) -> Iterator[None]:
    """Call `callback(kernel name)` each time numba compiles a kernel inside the block (on
    any thread); loading a kernel from numba's cache calls nothing."""
    from numba.core import event

    class Compiling(event.Listener):
        def on_start(self, ev: Any) -> None:
            callback(ev.data["dispatcher"].py_func.__qualname__)

        def on_end(self, ev: Any) -> None:
            pass

    with event.install_listener("numba:compile", Compiling()):
        yield


# Scenario, adults, days: together they call every kernel a run calls. Past a year, so
# that appeals are upheld and a year's records expire at once (the dense path of the list
# checks); several cities for the cross-city ties; c1 and p1c for the modules' kernels; s1
# long enough that step 5 switches to drawing meetings; cities for the packs' score
# features (diminishing scales, recalculation). A kernel left out is compiled in the middle
# of a user's first run of that scenario (a second of a 1 M-adult S1 run, say).
WARM_RUNS = (
    ("r1", 2_000, 400),
    ("c1", 2_000, 400),
    ("p1c", 2_000, 60),
    ("s1", 2_000, 120),
    ("three-cities", 3_000, 60),
    ("cities", 2_000, 400),
)


def warm(runs: tuple[tuple[str, int, int], ...] = WARM_RUNS) -> int:
    """Run small scenarios in memory, compiling every kernel that a run of them calls into
    numba's cache; the number of functions compiled."""
    from xinyong.api import run
    from xinyong.scenario import load_scenario

    names: set[str] = set()
    with on_compile(names.add):
        for name, adults, days in runs:
            run(load_scenario(name, adults=adults, days=days))
    return len(names)


PACKAGE = Path(__file__).resolve().parent
STAMP = "kernels-sources.sha256"  # the sources the package's kernel caches were made from


def sources_digest() -> str:
    """A digest of every source file of the package."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        h.update(str(path.relative_to(PACKAGE)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def drop_stale_caches() -> bool:
    """Drop numba's caches of the package when any of its sources changed since they were
    made; whether it did. numba keys a kernel's cache on its own file only, and that cache
    holds the helpers the kernel calls from other files: after a change to sorting.py, say,
    lists.py's kernels still ran the old sort (the Makefile drops them too, by timestamps;
    this serves the benchmarks, run without make)."""
    root = Path(os.environ.get("NUMBA_CACHE_DIR") or PACKAGE)
    stamp = root / "__pycache__" / STAMP
    digest = sources_digest()
    if stamp.is_file() and stamp.read_text() == digest:
        return False
    for pattern in ("*.nbi", "*.nbc"):
        for path in root.rglob(pattern):
            path.unlink(missing_ok=True)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)
    return True


def main() -> None:
    """`python -m xinyong.kernels`: drop stale caches and compile ahead, saying how long it
    took."""
    if drop_stale_caches():
        print("sources changed since the kernels were compiled: caches dropped", file=sys.stderr)
    print(f"{COMPILING} for the first run (up to a minute or two, once)", file=sys.stderr)
    start = time.monotonic()
    count = warm()
    print(f"{count} functions compiled in {time.monotonic() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
