"""Checkpoints of a run being written, and resuming a killed run from its last one.

A checkpoint is taken at the end of a day, after the recorder booked it. The record and spell
parts on disk are then exactly those of the days so far (the writers are flushed and waited
for), and the checkpoint file holds everything else the remaining days read: the scheme
state's arrays, every random stream's state, the work scheduled for later days (expiries,
checks, appeals), the consequences' books, the recorder's in-memory tables and the positive
behaviour already drawn ahead. The population is not saved: it is regenerated from the seed.

The file (CHECKPOINT, in the run's staging folder) is one NumPy .npz archive without pickles:
the arrays, and the structure around them as JSON in one more array. It is written under a
temporary name and renamed over the last one, so a kill while it is written leaves the
previous checkpoint. A finished run deletes it before it is published; a failed one is
deleted with its staging folder, but for Ctrl-C, which leaves it to be resumed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
import zipfile
from collections import defaultdict
from concurrent.futures import Future
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xinyong.atomic import (
    CHECKPOINT,
    FILES,
    MARKER,
    PARTIAL,
    read_marker,
    replacing,
    run_tables,
)
from xinyong.consequences import StartOfDay
from xinyong.errors import XinyongError
from xinyong.observe import Placed
from xinyong.threads import background

if TYPE_CHECKING:
    from xinyong.engine import Simulation

FORMAT = 2  # 2: each module's state under "modules"
STREAMS = ("records", "spells")  # the tables written while the run goes on
RNGS = (
    "rng_world",
    "rng_assoc",
    "rng_observe",
    "rng_court",
    "rng_appeals",
    "rng_world_positive",
    "rng_observe_positive",
)
# Without --checkpoint-days: every DEFAULT_DAYS days, but only once MIN_SECONDS of the run's
# time have passed since the last one (or the start), and COST_RATIO times what the last one
# cost: checkpoints then take at most 1 / COST_RATIO of a run's time, and short runs none.
DEFAULT_DAYS = 30
MIN_SECONDS = 60.0
COST_RATIO = 50.0
# Before the first checkpoint, its cost is guessed from the state's bytes: the day loop's
# wait and the file's writing took 5.5 to 7 ns a byte at 1 M and 10 M adults
# (benchmarks/bench_checkpoint.py, docs/performance.md).
SECONDS_PER_BYTE = 7e-9
_STRUCTURE = "structure"


def scenario_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- a file of arrays and plain values ---------------------------------------------------------


def _pack(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """`obj` as JSON, its arrays (and NumPy scalars) moved to `arrays`."""
    if isinstance(obj, (np.ndarray, np.generic)):
        key = str(len(arrays))
        arrays[key] = np.asarray(obj)
        return {"a": key, "scalar": isinstance(obj, np.generic)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [_pack(x, arrays) for x in obj]
    if isinstance(obj, tuple):
        return {"t": [_pack(x, arrays) for x in obj]}
    if isinstance(obj, dict):
        return {"d": [[_pack(k, arrays), _pack(v, arrays)] for k, v in obj.items()]}
    raise TypeError(f"cannot checkpoint a {type(obj).__name__}")


def _unpack(obj: Any, arrays: Any) -> Any:
    if isinstance(obj, list):
        return [_unpack(x, arrays) for x in obj]
    if not isinstance(obj, dict):
        return obj
    if "a" in obj:
        value = arrays[obj["a"]]
        return value[()] if obj["scalar"] else value
    if "t" in obj:
        return tuple(_unpack(x, arrays) for x in obj["t"])
    return {_unpack(k, arrays): _unpack(v, arrays) for k, v in obj["d"]}


def write(path: Path, data: dict[str, Any]) -> None:
    """Write `data` whole or not at all (a temporary file renamed over `path`)."""
    _write(path, *snapshot(data))


def snapshot(data: dict[str, Any]) -> tuple[Any, dict[str, np.ndarray]]:
    """`data` as it is now, apart from whatever changes later: its plain values as a new
    structure, copies of its arrays."""
    arrays: dict[str, np.ndarray] = {}
    structure = _pack(data, arrays)
    return structure, {k: np.array(a, copy=True) for k, a in arrays.items()}


def _write(path: Path, structure: Any, arrays: dict[str, np.ndarray]) -> None:
    arrays = {**arrays, _STRUCTURE: np.frombuffer(json.dumps(structure).encode(), np.uint8)}
    with replacing(path, "wb") as f:
        np.savez(f, **arrays)
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read(path: Path) -> dict[str, Any]:
    """A checkpoint written by `write`; one-line errors for a damaged file."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        structure = json.loads(arrays.pop(_STRUCTURE).tobytes().decode())
        data = _unpack(structure, arrays)
    except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise XinyongError(f"damaged checkpoint, cannot resume ({reason})", file=path) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise XinyongError("not a checkpoint this version can resume", file=path)
    return data


# -- one engine's state --------------------------------------------------------------------------


def _placed(p: Placed) -> dict[str, Any]:
    return {"rows": p.view(), "first": p.first, "size": len(p.columns[0]), "counts": p.counts}


def _unplaced(d: dict[str, Any]) -> Placed:
    first, n = d["first"], len(d["rows"][0])
    columns = []
    for rows in d["rows"]:
        column = np.empty(d["size"], dtype=rows.dtype)
        column[first : first + n] = rows
        columns.append(column)
    return Placed(tuple(columns), first, n, d["counts"])


def settle(sim: Simulation) -> None:
    """Wait for the engine's helper threads: the day's booking, the record and spell parts,
    the positive behaviour drawn ahead."""
    sim.recorder.release_held()
    for writer in sim.recorder.writers.values():
        writer.flush()
        writer.wait()
    for pending in sim.positive_next.values():
        pending.result()


def _kept(start: StartOfDay) -> tuple:
    """The start of day's fields a checkpoint keeps (not those marked transient)."""
    return tuple(getattr(start, f.name) for f in fields(start) if not f.metadata.get("transient"))


def engine_state(sim: Simulation) -> dict[str, Any]:
    """What the engine's remaining days read besides its population (after `settle`)."""
    scheme, cons, rec = sim.scheme, sim.consequences, sim.recorder
    st = scheme.state
    start = sim.start
    return {
        "next_record_id": sim.next_record_id,
        "rngs": {name: getattr(sim, name).bit_generator.state for name in RNGS},
        "ahead": {day: _placed(f.result()) for day, f in sim.positive_next.items()},
        "start": None if start is None else _kept(start),
        "state": {f.name: getattr(st, f.name) for f in fields(st)},
        "expiries": dict(scheme.expiries),
        "checks": dict(scheme.checks),
        "moved": scheme.moved,
        "ended": scheme.ended,
        "score_sum": scheme.score_sum,
        "members": cons.members,
        "appeals": dict(cons.appeals),
        "kept_by": {p: dict(slots) for p, slots in cons.kept_by.items()},
        "daily": rec.daily,
        "beh_daily": rec.beh_daily,
        "score_sums": rec.score_sums,
        "appeals_filed": rec.appeals_filed,
        "decisions": rec.decisions,
        "booked_days": rec.booked_days,
        "parts": {name: w.parts for name, w in rec.writers.items()},
        "prefix": rec.prefix,
        "modules": {m.spec.name: m.save() for m in sim.modules},
    }


def restore_engine(sim: Simulation, saved: dict[str, Any]) -> None:
    """Put a freshly built engine where `engine_state` found the one that was saved."""
    scheme, cons, rec = sim.scheme, sim.consequences, sim.recorder
    st = scheme.state
    for f in fields(st):
        mine, theirs = getattr(st, f.name), saved["state"][f.name]
        if mine.shape != theirs.shape or mine.dtype != theirs.dtype:
            raise XinyongError(f"the checkpoint's {f.name} does not fit this scenario")
        mine[...] = theirs  # in place: the kernels' views hold these arrays
    for name, state in saved["rngs"].items():
        getattr(sim, name).bit_generator.state = state
    sim.next_record_id = saved["next_record_id"]
    sim.positive_next = {}
    for day, placed in saved["ahead"].items():
        done: Future = Future()
        done.set_result(_unplaced(placed))
        sim.positive_next[day] = done
    sim.start = None if saved["start"] is None else StartOfDay(*saved["start"])
    scheme.expiries = defaultdict(list, saved["expiries"])
    scheme.checks = defaultdict(list, saved["checks"])
    scheme.moved, scheme.ended = saved["moved"], saved["ended"]
    scheme.score_sum[...] = saved["score_sum"]
    cons.members = saved["members"]
    cons.appeals = defaultdict(list, saved["appeals"])
    kept: defaultdict[int, defaultdict[int, list[list[int]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for p, slots in saved["kept_by"].items():
        kept[p] = defaultdict(list, slots)
    cons.kept_by = kept
    rec.daily, rec.beh_daily, rec.score_sums = (
        saved["daily"], saved["beh_daily"], saved["score_sums"],
    )  # fmt: skip
    rec.appeals_filed, rec.decisions = saved["appeals_filed"], saved["decisions"]
    rec.booked_days = saved["booked_days"]
    for name, parts in saved["parts"].items():
        rec.writers[name].parts = parts
    if set(saved["modules"]) != {m.spec.name for m in sim.modules}:
        raise XinyongError("the checkpoint holds other modules than this scenario switches on")
    for module in sim.modules:
        module.restore(saved["modules"][module.spec.name])


def part_names(saved: dict[str, Any], table: str) -> set[str]:
    """The parts of a streamed table an engine had written at its checkpoint."""
    prefix, parts = saved["prefix"], saved["parts"].get(table, 0)
    return {f"{prefix}part-{k:05d}.parquet" for k in range(parts)}


# -- taking checkpoints ----------------------------------------------------------------------


@dataclass
class Checkpoints:
    """When a run checkpoints, and the checkpoint's header (the scenario's digest, the run's
    options). `every`: days between checkpoints as asked (None: DEFAULT_DAYS, as often as
    their cost justifies)."""

    folder: Path
    every: int | None
    days: int
    header: dict[str, Any]
    elapsed: float = 0.0  # the run's seconds before this process took it up (resumed)
    last_day: int = 0  # the first day after the last checkpoint
    cost: float = 0.0  # seconds the day loop waited for the last checkpoint
    write_cost: float = 0.0  # seconds the last checkpoint's file took to write

    def __post_init__(self) -> None:
        self.started = self.last_time = time.perf_counter()
        # The file is written on a thread of its own while the run goes on: the day loop
        # waits only for the copy of the state (and the parts' flush).
        self.writer = background()
        self.writing: Future | None = None

    def wait(self) -> None:
        """Until the last checkpoint is on disk (re-raises a failed write here)."""
        if self.writing is not None:
            writing, self.writing = self.writing, None
            writing.result()

    def close(self) -> None:
        """Wait for the last checkpoint and stop the writer's thread."""
        try:
            self.wait()
        finally:
            self.writer.shutdown()

    def due(self, t: int, engines: list[Simulation]) -> bool:
        if t + 1 >= self.days:  # the run is about to finish anyway
            return False
        if t + 1 - self.last_day < (self.every or DEFAULT_DAYS):
            return False
        if self.every is None:
            cost = self.cost + self.write_cost
            if cost == 0:  # none taken yet
                state = (sim.scheme.state for sim in engines)
                size = sum(getattr(st, f.name).nbytes for st in state for f in fields(st))
                cost = SECONDS_PER_BYTE * size
            since = time.perf_counter() - self.last_time
            return since >= max(MIN_SECONDS, COST_RATIO * cost)
        return True

    def after_day(self, t: int, engines: list[Simulation]) -> None:
        """Checkpoint at the end of day t if one is due."""
        if not self.due(t, engines):
            return
        took = time.perf_counter()
        self.wait()
        for sim in engines:
            settle(sim)
        data = {
            **self.header,
            "format": FORMAT,
            "day": t + 1,  # the first day still to run
            "elapsed": self.elapsed + took - self.started,
            "engines": [engine_state(sim) for sim in engines],
        }
        copied = snapshot(data)
        written = time.perf_counter()
        self.writing = self.writer.submit(self._written, written, self.folder / CHECKPOINT, *copied)
        self.last_day, self.last_time = t + 1, time.perf_counter()
        self.cost = self.last_time - took

    def _written(self, began: float, path: Path, structure: Any, arrays: Any) -> None:
        _write(path, structure, arrays)
        # The writer's time counts too (as if it had taken a core from the run), so that
        # checkpoints stay rare where the cores are busy.
        self.write_cost = time.perf_counter() - began


def restore(engines: list[Simulation], data: dict[str, Any]) -> int:
    """Restore every engine (in the order saved); the first day still to run."""
    saved = data["engines"]
    if len(saved) != len(engines):
        raise XinyongError("the checkpoint holds another number of cities than this run")
    for sim, state in zip(engines, saved, strict=True):
        if state["prefix"] != sim.recorder.prefix:
            raise XinyongError("the checkpoint holds other cities than this run")
        restore_engine(sim, state)
    return int(data["day"])


# -- resuming ------------------------------------------------------------------------------------

_STAGE = re.compile(r"\.(.+)" + re.escape(PARTIAL) + r"[^/]+")


def _resumable(stage: Path) -> bool:
    mark = read_marker(stage)
    return (
        stage.is_dir()
        and mark is not None
        and not mark.get("complete")
        and (stage / CHECKPOINT).is_file()
    )


def find_stage(path: Path) -> tuple[Path, Path]:
    """(the run directory, the staging folder to resume it from) for `path`, which names
    either; refused in one line when there is nothing to resume."""
    path = Path(path)
    named = _STAGE.fullmatch(path.name)
    if named and _resumable(path):
        return path.parent / named.group(1), path
    escaped = "".join(f"[{c}]" if c in "*?[]" else c for c in path.name)
    found = [s for s in path.parent.glob(f".{escaped}{PARTIAL}*") if _resumable(s)]
    if not found:
        raise XinyongError(
            "nothing to resume: no unfinished run with a checkpoint (runs keep checkpoints "
            "every --checkpoint-days N days; a run killed before its first has none)",
            file=path,
        )
    return path, max(found, key=lambda s: (s / CHECKPOINT).stat().st_mtime)


def rewind(stage: Path, data: dict[str, Any]) -> None:
    """Delete what the killed run wrote after its checkpoint: the parts of the streamed tables
    past it and whatever the end of the run had begun to write."""
    keep = {MARKER, "scenario.yaml", CHECKPOINT, *STREAMS}
    tables = run_tables()
    ends = {f"{t}.parquet" for t in tables} | (set(tables) - set(STREAMS)) | {"parts"} | FILES
    for entry in list(stage.iterdir()):
        name = entry.name
        if name in keep or not (name in ends or (name.startswith(".") and name.endswith(".tmp"))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for table in STREAMS:
        names: set[str] = set()
        for saved in data["engines"]:
            names |= part_names(saved, table)
        folder = stage / table
        present = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
        missing = names - present
        if missing:
            raise XinyongError(
                f"{table}/{min(missing)} of the checkpoint is missing: cannot resume",
                file=stage,
            )
        for name in present - names:
            (folder / name).unlink()
