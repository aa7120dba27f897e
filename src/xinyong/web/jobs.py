"""Background jobs: runs and comparisons, each in a worker process of its own.

A bounded pool of `Settings.workers` slots takes jobs from a queue (at most `max_queued`
waiting). Each slot keeps one worker process, started ahead of time with xinyong imported
and its kernels loaded (`warm`), so a run from the page costs what `xinyong run` does, less
the start-up. The worker calls the project's own API (`xinyong.run`, `run_replicates`,
`audit`, `compare`) and reports progress through a pipe. A worker leads a process group of
its own: cancelling a job kills that group (the replicate processes too) and starts a fresh
worker; the run directory is then as it was (runs are written beside and renamed into place)
and the staging folder left behind is removed.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from xinyong.web.settings import Settings

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
SEND_EVERY = 0.1  # seconds between progress messages from a worker


class QueueFullError(Exception):
    """More jobs are waiting than the settings allow."""


@dataclass
class Job:
    """One run or comparison: what it does, where it writes and how far it has got."""

    id: str
    kind: str  # "run" or "compare"
    spec: dict[str, Any] = field(repr=False)
    targets: list[Path] = field(default_factory=list, repr=False)  # what it writes
    state: str = QUEUED
    phase: str = "waiting for a free worker"
    done: int = 0
    total: int = 0
    message: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    result: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    cancel: bool = False

    @property
    def fraction(self) -> float:
        """Progress from 0 to 1 (1 once done)."""
        if self.state == DONE:
            return 1.0
        return min(self.done / self.total, 1.0) if self.total else 0.0

    def public(self) -> dict[str, Any]:
        """The job as the API shows it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "progress": round(self.fraction, 4),
            "message": self.message,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "seconds": None
            if self.started is None
            else round((self.finished or time.time()) - self.started, 3),
            "result": self.result,
            "version": self.version,
        }


class Worker:
    """A worker process of one slot, its own process group leader."""

    def __init__(self, warm: bool) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        # Not a daemon: a replicate set starts processes of its own.
        self.proc = ctx.Process(target=worker_main, args=(child, warm), name="xinyong-worker")
        self.proc.start()
        child.close()

    def alive(self) -> bool:
        return self.proc.is_alive()

    def kill(self) -> None:
        """End the worker and every process it started."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class JobManager:
    """The queue and its worker slots."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.jobs: dict[str, Job] = {}
        self._queue: list[Job] = []
        self._lock = threading.Condition()
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._workers: list[Worker | None] = [None] * max(settings.workers, 1)

    def start(self) -> None:
        for slot in range(len(self._workers)):
            if self.settings.warm:
                self._workers[slot] = Worker(warm=True)
            t = threading.Thread(target=self._slot, args=(slot,), daemon=True, name=f"slot-{slot}")
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Cancel what runs, drop what waits, end the workers."""
        with self._lock:
            self._stopping = True
            for job in self._queue:
                self._finish(job, CANCELLED, "the server stopped")
            self._queue.clear()
            for job in self.jobs.values():
                if job.state == RUNNING:
                    job.cancel = True
            self._lock.notify_all()
        for t in self._threads:
            t.join(10)
        for w in self._workers:
            if w is not None:
                w.kill()

    def submit(self, job: Job) -> Job:
        with self._lock:
            if self._stopping:
                raise QueueFullError("the server is stopping")
            if len(self._queue) >= self.settings.max_queued:
                raise QueueFullError(
                    f"{len(self._queue)} jobs are waiting already (at most "
                    f"{self.settings.max_queued}); try again when one has finished"
                )
            self.jobs[job.id] = job
            self._queue.append(job)
            job.version += 1
            self._lock.notify_all()
        return job

    def cancel(self, job_id: str) -> Job | None:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                return None
            if job.state == QUEUED:
                self._queue.remove(job)
                self._finish(job, CANCELLED, "cancelled before it started")
            elif job.state == RUNNING:
                job.cancel = True
                job.phase = f"cancelling ({job.phase})"
                job.version += 1
            self._lock.notify_all()
            return job

    def wait(self, job_id: str, version: int, timeout: float) -> Job | None:
        """The job once its version passes `version` (or after `timeout` seconds)."""
        with self._lock:
            job = self.jobs.get(job_id)
            if job is not None and job.version <= version and job.state not in FINISHED:
                self._lock.wait(timeout)
            return self.jobs.get(job_id)

    def busy(self) -> set[str]:
        """Ids of jobs queued or running (their folders are not finished runs yet)."""
        with self._lock:
            return {j.id for j in self.jobs.values() if j.state not in FINISHED}

    def _finish(self, job: Job, state: str, message: str | None = None) -> None:
        job.state = state
        job.message = message
        job.finished = time.time()
        job.phase = {DONE: "done", FAILED: "failed", CANCELLED: "cancelled"}[state]
        job.version += 1
        self._lock.notify_all()

    def _next(self) -> Job | None:
        with self._lock:
            while not self._queue and not self._stopping:
                self._lock.wait()
            if self._stopping:
                return None
            job = self._queue.pop(0)
            job.state, job.started, job.phase = RUNNING, time.time(), "starting"
            job.version += 1
            self._lock.notify_all()
            return job

    def _slot(self, slot: int) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            worker = self._workers[slot]
            if worker is None or not worker.alive():
                worker = self._workers[slot] = Worker(warm=False)
            try:
                keep = self._drive(job, worker)
            except Exception as exc:  # a bug of ours: the job fails, the slot goes on
                with self._lock:
                    self._finish(job, FAILED, f"{exc.__class__.__name__}: {exc}")
                keep = False
            if job.state != DONE:
                if not keep:
                    worker.kill()
                cleanup(job.targets)
            if not keep:
                self._workers[slot] = None
                with self._lock:
                    if not self._stopping and self.settings.warm:
                        self._workers[slot] = Worker(warm=True)

    def _drive(self, job: Job, worker: Worker) -> bool:
        """Run `job` on `worker` to its end; False when the worker must be replaced."""
        worker.conn.send(job.spec)
        while True:
            if job.cancel:
                auditing = "auditing" in job.phase
                message = (
                    "cancelled during the audit: the run directory is complete, its audit is not "
                    "(xinyong audit RUN)"
                    if auditing and job.kind == "run"
                    else "cancelled; the run directories are as they were"
                )
                # Gone before the job reads as cancelled: whoever sees that finds nothing left.
                worker.kill()
                cleanup(job.targets)
                with self._lock:
                    self._finish(job, CANCELLED, message)
                return False
            try:
                ready = worker.conn.poll(0.05)
                msg = worker.conn.recv() if ready else None
            except (EOFError, OSError):
                msg = ("error", "the worker process ended unexpectedly (out of memory?)")
            if msg is None:
                if not worker.alive():
                    msg = ("error", "the worker process ended unexpectedly (out of memory?)")
                else:
                    continue
            kind, payload = msg
            with self._lock:
                if kind == "progress":
                    job.phase = payload.get("phase", job.phase)
                    job.done, job.total = payload.get("done", 0), payload.get("total", 0)
                    job.version += 1
                    self._lock.notify_all()
                    continue
                if kind == "done":
                    job.result = payload
                    job.done = job.total
                    self._finish(job, DONE)
                    return True
                self._finish(job, FAILED, str(payload))
                return kind == "failed" and worker.alive()


def cleanup(targets: list[Path]) -> None:
    """What a killed job leaves: staging folders of run directories beside each target
    (and the target itself when it is a comparison folder that never finished)."""
    from xinyong.atomic import read_marker, remove_run

    for target in targets:
        parent = target.parent
        if not parent.is_dir():
            continue
        for entry in parent.iterdir():
            name = entry.name
            if not name.startswith(f".{target.name}."):
                continue
            if name.endswith(".lock") and entry.is_file():
                entry.unlink(missing_ok=True)
            elif entry.is_dir() and read_marker(entry) is not None:
                with contextlib.suppress(OSError):
                    remove_run(entry)
        if target.is_dir() and (target / ".web-compare").exists():
            shutil.rmtree(target, ignore_errors=True)


# The worker process.


def worker_main(conn: Connection, warm: bool) -> None:
    """Import xinyong (and load its kernels), then run the jobs the server sends."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)  # a process group of its own: a cancel ends its children too
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    import xinyong

    if warm:
        with contextlib.suppress(Exception):
            xinyong.run(xinyong.load_scenario("r1", adults=200, days=2))
    while True:
        try:
            spec = conn.recv()
        except (EOFError, OSError):
            return
        if spec is None:
            return
        progress = _Reporter(conn)
        try:
            result = EXECUTE[spec["kind"]](spec, progress)
            conn.send(("done", result))
        except xinyong.XinyongError as err:
            conn.send(("failed", err.format()))
        except MemoryError:
            conn.send(("failed", "out of memory (a smaller run)"))
        except Exception as exc:
            tb = traceback.format_exc(limit=3).strip().splitlines()[-1]
            conn.send(("failed", f"{exc.__class__.__name__}: {exc} ({tb})"))


class _Reporter:
    """Progress messages to the server, at most one per SEND_EVERY seconds (and the last)."""

    def __init__(self, conn: Connection) -> None:
        self.conn, self.last = conn, 0.0

    def __call__(self, phase: str, done: int, total: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or done >= total or now - self.last >= SEND_EVERY:
            self.last = now
            self.conn.send(("progress", {"phase": phase, "done": done, "total": total}))


Progress = Callable[..., None]


def execute_run(spec: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Run a scenario into its run directory (seeds in parallel for replicates), then audit
    it: metrics.json and report.html, as `xinyong run` and `xinyong audit` do."""
    import xinyong

    sc, out, k = spec["scenario"], Path(spec["out"]), spec["replicates"]
    started = time.perf_counter()
    if k > 1:
        progress("running seeds", 0, k, force=True)
        xinyong.run_replicates(sc, out, k, on_done=lambda i: progress("running seeds", i + 1, k))
    else:
        from xinyong.kernels import COMPILING, on_compile

        progress("simulating", 0, sc.days, force=True)
        said: list[str] = []

        def compiling(name: str) -> None:  # the bar waits: say why, once (a day moves it on)
            if not said:
                said.append(name)
                progress(f"{COMPILING} (once after set-up or a change)", 0, sc.days, force=True)

        with on_compile(compiling):
            xinyong.run(sc, out, on_day=lambda t: progress("simulating", t + 1, sc.days))
    run_seconds = time.perf_counter() - started
    progress("auditing", 1, 1, force=True)
    audit = xinyong.audit(out, baseline=spec.get("baseline", True), report=True)
    return {
        "run": out.name,
        "run_seconds": round(run_seconds, 3),
        "seconds": round(time.perf_counter() - started, 3),
        "key_findings": audit.key_findings,
    }


def execute_compare(spec: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """A reform (B, run now from a design when asked) against a base run (A), paired over
    `replicates` seeds, the missing seeds run into the comparison's folder."""
    import xinyong
    from xinyong.audit.compare import compare
    from xinyong.replicates import replicate_dirs
    from xinyong.store import RunDir

    a, out, k = Path(spec["a"]), Path(spec["out"]), spec["replicates"]
    out.mkdir(parents=True, exist_ok=True)
    (out / ".web-compare").write_text("a comparison the server is writing\n")
    if spec.get("reform") is not None:
        sc, b = spec["reform"], Path(spec["b"])
        progress("simulating the reform", 0, sc.days, force=True)
        xinyong.run(sc, b, on_day=lambda t: progress("simulating the reform", t + 1, sc.days))
        progress("auditing the reform", 1, 1, force=True)
        xinyong.audit(b, baseline=spec.get("baseline", True), report=True)
    else:
        b = Path(spec["b"])
    missing = 0
    if k > 1:
        first = min(RunDir(d).summary()["seed"] for d in replicate_dirs(a))
        for side in (a, b):
            have = {RunDir(d).summary().get("seed") for d in replicate_dirs(side)}
            missing += sum(first + i not in have for i in range(k))
    progress("running paired seeds" if missing else "comparing", 0, max(missing, 1), force=True)
    doc = compare(
        a,
        b,
        replicates=k if k > 1 else None,
        out=out,
        on_done=lambda i: progress("running paired seeds", i + 1, max(missing, 1)),
    )
    progress("writing the comparison", 1, 1, force=True)
    xinyong.Comparison(doc).write(out)
    (out / ".web-compare").unlink()
    return {"compare": out.name, "b": b.name, "significant": xinyong.Comparison(doc).significant}


EXECUTE: dict[str, Callable[[dict[str, Any], Progress], dict[str, Any]]] = {
    "run": execute_run,
    "compare": execute_compare,
}
