"""Replicates: one scenario run with seeds seed, seed+1, ... and their results combined.

A replicate run directory holds one run per seed under `replicates/seed-S/`; its top-level
summary.json (and metrics.json once audited) holds each metric's mean over the seeds with a
95% Student t interval **across seeds**: the interval that includes run-to-run variation.
This module sits between the runner (`xinyong.api`) and the audit (`xinyong.audit`), so that
neither imports the other back.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import current_process, get_context
from pathlib import Path
from typing import Any

from xinyong.api import Run, on_disk, run, simulate, writing
from xinyong.atomic import check_target, locked, marker, staged, write_marker, write_text
from xinyong.audit import stats
from xinyong.audit.metrics import ACROSS_SEEDS, disparity_row
from xinyong.errors import XinyongError
from xinyong.scenario import Scenario
from xinyong.sizing import check_size
from xinyong.store import RunDir, write_json

REPLICATES = "replicates"
CURVES = ("survival", "wrongful_survival")  # a document's survival curves per list
MAX_REPLICATES = 1000  # seeds of one set (a process each); the CLI's and the API's bound
SPAWN_GUARD = (
    "a worker process stopped while starting: a script that runs seeds in parallel must "
    'keep its code under `if __name__ == "__main__":` (each worker imports the script again)'
)


def check_spawn_safe() -> None:
    """In a worker still starting (importing a script that has no `if __name__ ==
    "__main__":` guard), stop quietly before the script starts runs of its own: the parent
    says why, in one line. The test is multiprocessing's own for that case."""
    if getattr(current_process(), "_inheriting", False):
        raise SystemExit(1)


def replicate_dirs(path: Path) -> list[Path]:
    """The run directories a path stands for: its replicates (by seed, each checked), or
    itself."""
    return RunDir(path).replicate_dirs()


def _replicate(scenario: Scenario, out: Path) -> dict[str, Any]:
    """A run of its own (written atomically into `out`)."""
    return run(scenario, out, overwrite=True).summary


def replicate_in_set(scenario: Scenario, out: Path) -> dict[str, Any]:
    """A run into the staging folder of a set, which is published whole."""
    out.mkdir(parents=True)
    write_marker(out, marker(False))
    return simulate(scenario, out, None, 2_000_000).summary


def run_seeds(
    scenario: Scenario,
    dirs: dict[int, Path],
    *,
    workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
) -> dict[int, dict[str, Any]]:
    """Run `scenario` once per seed into dirs[seed], in spawned processes; summaries by seed."""
    jobs = [(scenario.with_(seed=s), d) for s, d in dirs.items()]
    summaries = run_jobs(jobs, workers=workers, on_done=on_done)
    return dict(zip(dirs, summaries, strict=True))


def run_jobs(
    jobs: list[tuple[Scenario, Path]],
    *,
    workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
    worker: Callable[[Scenario, Path], dict[str, Any]] = _replicate,
    ray: str | None = None,
    cores: int = 1,
    pool: Executor | None = None,
) -> list[dict[str, Any]]:
    """Run each (scenario, directory) in a pool of spawned processes (`pool`, kept by a
    caller that runs many batches, or a new one), or as Ray tasks of `cores` CPUs each on
    the cluster at `ray` ("local": a local Ray); their summaries."""
    if not jobs:
        return []
    if ray is not None:
        from xinyong.cluster import replicates as on_ray

        scenarios, outs = (list(x) for x in zip(*jobs, strict=True))
        return on_ray(scenarios, outs, worker=worker, address=ray, cores=cores, on_done=on_done)
    check_spawn_safe()
    summaries: list[dict[str, Any]] = [{} for _ in jobs]
    try:
        with (
            contextlib.nullcontext(pool)
            if pool is not None
            else spawned(workers or min(len(jobs), os.cpu_count() or 1)) as pool
        ):
            futures = {pool.submit(worker, sc, d): i for i, (sc, d) in enumerate(jobs)}
            for done, fut in enumerate(as_completed(futures)):
                summaries[futures[fut]] = fut.result()
                if on_done is not None:
                    on_done(done)
    except BrokenProcessPool:
        raise XinyongError(SPAWN_GUARD) from None
    return summaries


def spawned(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` spawned processes (numba and forked threads do not mix)."""
    return ProcessPoolExecutor(workers, mp_context=get_context("spawn"))


def run_replicates(
    scenario: Scenario,
    out: str | Path,
    replicates: int,
    *,
    overwrite: bool = False,
    workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
    force: bool = False,
    ray: str | None = None,
    cores: int = 1,
) -> Run:
    """Run seeds seed, seed+1, ... in parallel processes into out/replicates/seed-S/; the
    top-level summary.json holds each metric's mean and 95% interval over the replicates.
    Workers are spawned processes: call this under `if __name__ == "__main__":` in scripts.
    `ray`: as Ray tasks of `cores` CPUs each instead, on the cluster at this address ("" or
    "local": a local Ray). The set appears only once every replicate is complete, as `run`
    does."""
    check_spawn_safe()
    if not 1 <= replicates <= MAX_REPLICATES:
        raise XinyongError(
            f"replicates are 1 to {MAX_REPLICATES:,} (asked {replicates:,})", field="replicates"
        )
    path = Path(out)
    seeds = [scenario.seed + i for i in range(replicates)]
    workers = workers or min(replicates, os.cpu_count() or 1)
    if ray is None:  # on Ray the memory is the cluster's
        check_size(scenario, at_once=workers, force=force)
    with writing(path):
        check_target(path, overwrite)
        with locked(path), staged(path, overwrite) as stage:
            write_text(stage / "scenario.yaml", scenario.to_yaml())
            started = time.perf_counter()
            jobs = [(scenario.with_(seed=s), stage / REPLICATES / f"seed-{s}") for s in seeds]
            summaries = run_jobs(
                jobs,
                workers=workers,
                on_done=on_done,
                worker=replicate_in_set,
                ray=ray,
                cores=cores,
            )
            summary = combine_summaries(summaries)
            write_json(stage / "summary.json", on_disk(summary))
            wall = round(time.perf_counter() - started, 3)
            write_marker(stage, marker(True, seeds=seeds, wall_seconds=wall))
    return Run(summary, path, scenario=scenario)


def combine(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """One audit document over replicates: each metric's mean with a t interval across seeds,
    cut at 0 unless the metric is signed (its `count` of `of`: means per run; summed over
    seeds as `count_total` of `of_total`; a share's interval is also at least the Wilson
    interval of those pooled counts, and a disparity ratio's the Katz interval of its pooled
    counts, and its counts are means per run with `_total` beside); survival curves
    (`survival`, `wrongful_survival` and a module's tables' `survival`) are the means of the
    seeds' curves with across-seed bands; other matrices and tables are those of the first
    replicate."""
    doc = dict(docs[0])
    doc["replicates"] = len(docs)
    if len(docs) == 1:
        return doc
    doc["run"] = combine_summaries([d["run"] for d in docs])
    metrics = {}
    for name, row in docs[0]["metrics"].items():
        values = [d["metrics"].get(name, {}).get("value") for d in docs]
        v, lo, hi = stats.mean_interval(values)
        combined = {**row, "value": v, "low": lo, "high": hi, "interval": ACROSS_SEEDS}
        combined["per_seed"] = values
        if not row.get("signed"):  # a share, count or number of days is never below 0
            combined["low"], combined["high"] = stats.clip(lo, hi, 0.0)
        if row.get("count") is not None:
            counts = [d["metrics"].get(name, {}).get("count") for d in docs]
            ofs = [d["metrics"].get(name, {}).get("of") for d in docs]
            combined["count"] = stats.mean_interval(counts)[0]
            combined["of"] = stats.mean_interval(ofs)[0]  # per run, as the count is
            combined["count_total"] = sum(c for c in counts if c is not None)
            combined["of_total"] = sum(n for n in ofs if n is not None)
            # A share's seeds alone understate its uncertainty at small counts (4 firms in
            # four seeds give a t interval of a few hundredths of a point): the interval is
            # the wider of the t interval, cut to [0, 1], and the pooled counts' Wilson.
            pooled = stats.wilson(combined["count_total"], combined["of_total"])[1:]
            combined["low"], combined["high"] = stats.hull(stats.clip(lo, hi, 0.0, 1.0), pooled)
        metrics[name] = combined
    doc["metrics"] = metrics
    disparity = []
    for i, row in enumerate(docs[0]["disparity"]):
        same = [d["disparity"][i] for d in docs if i < len(d["disparity"])]
        r, lo, hi = stats.mean_interval([s["ratio"] for s in same])
        value = stats.mean_interval([s["value"] for s in same])[0]
        ref = stats.mean_interval([s["reference_value"] for s in same])[0]

        def total(key: str, rows: list[dict] = same) -> int | None:
            got = [s.get(key) for s in rows if s.get(key) is not None]
            return sum(got) if got else None

        counts = {
            k: total(k)
            for k in ("numerator", "denominator", "reference_numerator", "reference_denominator")
        }
        # The ratio of the counts pooled over seeds (Katz, or Poisson for rates) bounds the
        # interval at small counts; with no case in a numerator there is none to give.
        pooled_of = stats.ratio_of_rates if row.get("rates") else stats.ratio_of_shares
        k1, n1, k0, n0 = counts.values()
        pooled = pooled_of(k1, n1, k0, n0)[1:] if None not in (k1, n1, k0, n0) else (None, None)
        if None in pooled:
            lo = hi = None
        else:
            lo, hi = stats.hull(stats.clip(lo, hi, 0.0), pooled)
        # The small-number rule reads the counts pooled over seeds (all the people seen);
        # the row then gives them per run, as every number of a set, with the totals beside.
        combined = disparity_row(
            row["metric"],
            row["group"],
            row["reference"],
            value,
            ref,
            r,
            lo,
            hi,
            **counts,
            interval=ACROSS_SEEDS,
            rates=bool(row.get("rates")),
        )
        for key in ("value", "reference_value", *counts):
            mean, low, high = stats.mean_interval([s.get(key) for s in same])
            combined[f"{key}_low"], combined[f"{key}_high"] = stats.clip(low, high, 0.0)
            if key in counts:
                combined[f"{key}_total"], combined[key] = counts[key], mean
        disparity.append(combined)
    doc["disparity"] = disparity
    for key in CURVES:
        doc[key] = mean_curves([d.get(key) or {} for d in docs])
    for key, section in doc.items():  # a module's tables: their curves too
        if isinstance(section, dict) and isinstance(section.get("survival"), dict):
            mine = [(d.get(key) or {}).get("survival") or {} for d in docs]
            doc[key] = {**section, "survival": mean_curves(mine)}
    return doc


def mean_curves(by_seed: list[dict[str, dict]]) -> dict[str, dict]:
    """Survival curves per list over seeds: each list's mean curve over the seeds that have
    one, with its across-seed band (`stats.mean_curve`)."""
    lists = list(dict.fromkeys(lst for curves in by_seed for lst in curves))
    return {
        lst: stats.mean_curve([curves[lst] for curves in by_seed if lst in curves]) for lst in lists
    }


def combine_summaries(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each numeric summary key over replicates, with `intervals` {key: [low, high]}
    (Student t across seeds). Wall times are left out: the same seeds give the same summary,
    byte for byte (the set's wall time is in its run.json)."""
    out: dict[str, Any] = {}
    intervals: dict[str, list] = {}
    per_seed: dict[str, list] = {}
    for key, value in summaries[0].items():
        if key == "wall_seconds":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or key == "seed":
            out[key] = value
            continue
        per_seed[key] = [s.get(key) for s in summaries]
        m, lo, hi = stats.mean_interval(per_seed[key])
        out[key] = m
        intervals[key] = [lo, hi]
    out["seeds"] = [s.get("seed") for s in summaries]
    out["replicates"] = len(summaries)
    out["intervals"] = intervals
    out["per_seed"] = per_seed
    out["interval"] = ACROSS_SEEDS
    return out
