"""Run directories written whole or not at all, by one writer at a time.

A run is written into a hidden staging folder next to its final place (`.NAME.partial-*`)
and renamed into place only once complete; `--overwrite` then swaps the new run with the old
one and deletes the old one's known entries, nothing else. A run directory is known by its
marker file (MARKER), never by the presence of scenario.yaml alone. Writers of a run
directory (a run, an audit) hold an exclusive lock on `.NAME.lock` beside it: a second
writer is refused at once instead of interleaving its files with the first's.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from xinyong import modules
from xinyong.errors import XinyongError

MARKER = "run.json"
MARKER_KIND = "xinyong run directory"
FORMAT = 1
PARTIAL, OLD, LOCK = ".partial-", ".old-", ".lock"
CHECKPOINT = "checkpoint.npz"  # an unfinished run's last checkpoint (checkpoint.py)
SUFFIX_ROOM = 24  # the longest name added to a run's own: ".NAME.partial-XXXXXXXX"

# What a run directory may hold. Anything else in it is someone else's, and stops
# --overwrite instead of being deleted.
FILES = {
    MARKER,
    "scenario.yaml",
    "summary.json",
    "meta.json",
    "metrics.json",
    "report.html",
    "compare.html",
    "compare.csv",
    "compare.json",
    "sweep.json",
    "sweep.csv",
    "sweep.html",
    "shards.json",
    CHECKPOINT,
}
# A run's own tables (a Parquet file or a folder of parts each), in the order they are listed.
CORE_TABLES = (
    "records",
    "spells",
    "appeals",
    "daily",
    "behaviour_daily",
    "persons",
    "children",
    "edges",
)


def run_tables(sc: Any = None) -> tuple[str, ...]:
    """Every table a run directory may hold: its own, then those of the modules of the
    registry (module.Spec.tables), which runs whose scenario switches a module on hold; with
    `sc`, the tables a run of `sc` holds."""
    return CORE_TABLES + modules.tables(sc)


def is_module_table(name: str) -> bool:
    return name in modules.tables()


RUN_DIRS = {"baseline"}  # a run directory inside (the audit's scheme-off world)
SET_DIRS = {"replicates"}  # run directories named seed-S
# Folders of run directories: the seeds compare --replicates had to run (paired/a, paired/b)
# and a sweep's grid points.
NESTED_DIRS = {"paired", "points"}


def marker(complete: bool, **extra: Any) -> dict[str, Any]:
    return {"kind": MARKER_KIND, "format": FORMAT, "complete": complete, **extra}


def read_marker(path: Path) -> dict[str, Any] | None:
    """The marker of a run directory, or None when `path` has none (or not ours)."""
    try:
        data = json.loads((path / MARKER).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("kind") == MARKER_KIND else None


def write_marker(path: Path, data: dict[str, Any]) -> None:
    write_text(path / MARKER, json.dumps(data, indent=2) + "\n")


@contextlib.contextmanager
def replacing(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A file to write whole or not at all: a temporary one, put on disk and renamed over
    `path` once the block ends, or removed if it fails."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text(path: Path, text: str) -> None:
    """Write whole or not at all (`replacing`)."""
    with replacing(path) as f:
        f.write(text)


def _is_lock(name: str) -> bool:
    return name.startswith(".") and name.endswith(LOCK)


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def foreign_entries(path: Path) -> list[Path]:
    """Entries of run directory `path` that no run or audit writes (depth first)."""
    out: list[Path] = []
    for entry in sorted(path.iterdir()):
        name = entry.name
        if entry.is_symlink():
            out.append(entry)
        elif entry.is_file() and (name in FILES or _is_temp(name) or _table_file(name)):
            continue
        elif entry.is_file() and _is_lock(name):
            continue  # the lock of an inner run directory (baseline)
        elif entry.is_dir() and name in run_tables():
            out += [p for p in sorted(entry.iterdir()) if not _part_file(p)]
        elif entry.is_dir() and name == "parts":
            out += [p for p in sorted(entry.iterdir()) if not _part_file(p, SHARD_PART)]
        elif entry.is_dir() and (name in RUN_DIRS or _inner_staging(name)):
            out += foreign_entries(entry)
        elif entry.is_dir() and name in SET_DIRS | NESTED_DIRS:
            for inner in sorted(entry.iterdir()):
                run_dir = name in NESTED_DIRS or inner.name.startswith("seed-")
                if inner.is_dir() and not inner.is_symlink() and run_dir:
                    out += foreign_entries(inner)
                elif not (inner.is_file() and _is_lock(inner.name)):
                    out.append(inner)
        else:
            out.append(entry)
    return out


def _table_file(name: str) -> bool:
    return name.endswith(".parquet") and name.removesuffix(".parquet") in run_tables()


# A table's parts: part-NNNNN.parquet, or a city engine's cKKKKK-part-NNNNN.parquet
# (multi-city runs); a shard's daily sums in parts/ (daily-sNNNN.parquet).
PART = re.compile(r"(c\d+-)?part-\d+\.parquet")
SHARD_PART = re.compile(r"daily-s\d+\.parquet")


def _part_file(p: Path, pattern: re.Pattern[str] = PART) -> bool:
    name = p.name
    return (
        p.is_file()
        and not p.is_symlink()
        and (pattern.fullmatch(name) is not None or _is_temp(name))
    )


def _inner_staging(name: str) -> bool:
    return any(name.startswith(f".{d}{PARTIAL}") or name.startswith(f".{d}{OLD}") for d in RUN_DIRS)


def remove_run(path: Path) -> None:
    """Delete a run directory's known entries and then the folder, if nothing else is in it.
    Entries that are not a run's stay where they are (the folder then stays too)."""
    foreign = set(foreign_entries(path))
    _remove_known(path, foreign)


def _remove_known(path: Path, foreign: set[Path]) -> None:
    for entry in path.iterdir():
        if entry in foreign:
            continue
        if any(f.is_relative_to(entry) for f in foreign):
            if entry.is_dir() and not entry.is_symlink():
                _remove_known(entry, foreign)
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    with contextlib.suppress(OSError):  # not empty: something of someone else's is left
        path.rmdir()


def _oserror(exc: OSError, path: Path, doing: str) -> XinyongError:
    reason = os.strerror(exc.errno) if exc.errno else exc.__class__.__name__
    return XinyongError(f"cannot {doing}: {reason}", file=exc.filename or path)


def check_target(out: Path, overwrite: bool) -> None:
    """Refuse at once an --out that cannot become a run directory, before any simulation."""
    name = out.name
    if not name or name in (".", ".."):
        raise XinyongError("not a folder name for a run directory", file=out)
    try:
        limit = os.pathconf(_existing_ancestor(out), "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    if len(os.fsencode(name)) + SUFFIX_ROOM > limit:
        raise XinyongError(
            f"name is too long for a run directory (at most {limit - SUFFIX_ROOM} bytes)",
            file=out,
        )
    if len(os.fsencode(str(out.absolute()))) + SUFFIX_ROOM + 64 > 4096:
        raise XinyongError("path is too long for a run directory", file=out)
    ancestor = _existing_ancestor(out.parent)
    if not ancestor.is_dir():
        raise XinyongError(f"is under {ancestor}, which is a file, not a folder", file=out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise XinyongError("exists and is not a folder; choose another --out", file=out)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise XinyongError(f"cannot write in {ancestor} (read-only or no permission)", file=out)
    if out.is_dir():
        try:
            entries = list(out.iterdir())
        except OSError as exc:
            raise _oserror(exc, out, "read the folder") from None
        if not entries:
            return
        if read_marker(out) is None:
            raise XinyongError(
                f"exists and is not a run directory (no {MARKER}; runs made before run "
                "directories had one: delete it yourself); choose another --out",
                file=out,
            )
        if not overwrite:
            raise XinyongError("run directory exists; pass --overwrite to replace it", file=out)
        foreign = foreign_entries(out)
        if foreign:
            raise XinyongError(
                f"holds {foreign[0]}, which is not part of a run: move it away before "
                "--overwrite replaces the run",
                file=out,
            )


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the exclusive writer's lock of run directory `path` (`.NAME.lock` beside it);
    refuse at once when another process holds it. The lock file is removed on release."""
    lock = path.parent / f".{path.name}{LOCK}"
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise _oserror(exc, path, "create the run directory's lock") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise XinyongError(
                "another xinyong process is writing this run directory; wait for it to "
                "finish or choose another --out",
                file=path,
            ) from None
        # The holder before us removes the file before it lets go: a lock taken on a file
        # no longer at `lock` locks nothing anyone else sees, so open the new one.
        try:
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()  # while still held, so that no one locks the removed file unseen
        os.close(fd)


@contextlib.contextmanager
def staged(out: Path, overwrite: bool) -> Iterator[Path]:
    """A fresh staging folder beside `out`; on success it replaces `out` (under the lock the
    caller holds), on any failure it is removed and `out` is left as it was; interrupted
    (Ctrl-C) after a checkpoint, it is kept for `xinyong run --resume`."""
    check_target(out, overwrite)
    _clear_leftovers(out)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}{PARTIAL}", dir=out.parent))
        umask = os.umask(0)
        os.umask(umask)
        stage.chmod(0o777 & ~umask)  # mkdtemp's 0700 would become the run directory's mode
    except OSError as exc:
        raise _oserror(exc, out, "create the staging folder") from None
    try:
        write_marker(stage, marker(False))
        yield stage
        check_target(out, overwrite)  # again: the folder may have changed meanwhile
        publish(stage, out)
    except KeyboardInterrupt:
        if not (stage / CHECKPOINT).is_file():
            shutil.rmtree(stage, ignore_errors=True)
        raise
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _clear_leftovers(out: Path) -> None:
    """Staging and old folders of runs that were killed (we hold the lock: no one else is
    writing them). Only marked run directories are touched, and only their known entries."""
    for stale in out.parent.glob(f".{_glob_escape(out.name)}.*"):
        rest = stale.name[len(out.name) + 1 :]
        if not (rest.startswith(PARTIAL) or rest.startswith(OLD)) or not stale.is_dir():
            continue
        if read_marker(stale) is not None:
            with contextlib.suppress(OSError):
                remove_run(stale)


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


def publish(stage: Path, out: Path) -> None:
    """Put the complete run `stage` at `out`: a plain rename when `out` is absent or empty,
    otherwise an atomic exchange (Linux renameat2), then the old run's entries deleted."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        os.rename(stage, out)
    elif _exchange(stage, out):
        remove_run(stage)  # now the old run
    else:
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}{OLD}", dir=out.parent))
        old.rmdir()
        os.rename(out, old)
        os.rename(stage, out)
        remove_run(old)
    _sync_dir(out.parent)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically where the system can (renameat2 RENAME_EXCHANGE)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    res = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if res == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _sync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
