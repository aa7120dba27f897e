"""The server's bounds, and the names it gives run directories.

Every bound is a setting (`xinyong serve --max-adults ...`); a request past one is refused
with a 4xx answer that names the bound. Run ids are folder names directly under --runs: a
plain name (letters, digits, '_', '-', '.'; not starting with '.'), never a path.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
DESIGN_ID = re.compile(r"[0-9a-f]{16}")
COMPARE_DIR = "compare"  # comparisons under --runs (not run directories)
DESIGNS_DIR = ".designs"  # saved designs under --runs (hidden: not run directories)
LOCALHOST = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Settings:
    """Where runs go and how much one request may ask for."""

    runs: Path = field(default_factory=lambda: Path("runs"))
    max_adults: int = 1_000_000
    max_days: int = 3_650
    max_replicates: int = 8
    workers: int = 1  # runs at once; more wait in the queue
    max_queued: int = 8  # jobs waiting beyond those running
    max_body_bytes: int = 2 << 20  # a request's body (a resolved scenario is about 40 kB)
    max_designs: int = 1_000
    warm: bool = True  # keep a worker process started, its kernels loaded, for the next run
    # Names the server answers to (the Host header): localhost's, plus `serve --host` and
    # `--allow-host`; any other is refused (DNS rebinding).
    hosts: tuple[str, ...] = LOCALHOST

    def run_path(self, run_id: str) -> Path:
        """The folder of run `run_id` under `runs`; ValueError for anything but a plain name."""
        return _inside(self.runs, run_id, RUN_ID)

    def compare_path(self, compare_id: str) -> Path:
        return _inside(self.runs / COMPARE_DIR, compare_id, RUN_ID)

    def design_path(self, design_id: str) -> Path:
        return _inside(self.runs / DESIGNS_DIR, design_id, DESIGN_ID, ".yaml")


def _inside(root: Path, name: str, pattern: re.Pattern[str], suffix: str = "") -> Path:
    if not isinstance(name, str) or not pattern.fullmatch(name):
        raise ValueError(f"not an id: {name!r}")
    path = root / f"{name}{suffix}"
    # A plain name cannot leave `root`; a symbolic link in its place could.
    if path.is_symlink():
        raise ValueError(f"not an id: {name!r}")
    return path


def new_id(name: str, taken: set[str] | None = None) -> str:
    """A fresh run id from a scenario name: NAME-YYYYMMDD-HHMMSS-XXXX."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-_")[:40] or "run"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    while True:
        rid = f"{slug}-{stamp}-{secrets.token_hex(2)}"
        if not taken or rid not in taken:
            return rid
