"""Runs on Ray: whole cities on actors (`run_on_ray`), replicates as tasks (`replicates`).

Ray is an optional extra (`pip install 'xinyong[ray]'`), imported only here and only when a
run asks for it. A sharded run puts bins of whole cities (shard.pack_bins: by adults) on
actors, each reserving its share of the cluster's CPUs and told to use only those
(threads.set_core_budget: numba's threads and the engine's helper threads). A day is one
barrier: every actor runs the day for its cities, given every city's boundary adults listed
at its start, and hands back its own for the next day. Each actor writes its cities' Parquet
parts into the one run directory (a folder every node can reach); the driver merges the
daily tables and computes the summary over all parts.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xinyong.errors import XinyongError
from xinyong.scenario import Scenario

if TYPE_CHECKING:
    from xinyong.shard import Boundary

LOCAL = ("", "local", "auto-local")  # --ray without an address: a local Ray, this machine's cores


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise XinyongError("--ray needs Ray: pip install 'xinyong[ray]'") from None
    return ray


def connect(address: str | None = None, cpus: int | None = None) -> Any:
    """Ray, connected: to the cluster at `address`, or a local Ray with `cpus` (default: the
    cores this process may use) when there is none."""
    ray = _ray()
    if not ray.is_initialized():
        if address is None or address in LOCAL:
            from xinyong.threads import usable_cores

            # Ray turns token authentication on for a local cluster it starts and says so in
            # a warning, which would land inside the progress bar: the cluster is ours.
            notice = logging.getLogger("ray._private.authentication.authentication_token_setup")
            level = notice.level
            notice.setLevel(logging.ERROR)
            try:
                ray.init(
                    num_cpus=cpus or usable_cores(),
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            finally:
                notice.setLevel(level)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    return ray


def _scenario(text: str) -> Scenario:
    from xinyong.scenario import validate_scenario
    from xinyong.yamlio import parse_yaml

    data, lines = parse_yaml(text, "<scenario>")
    return validate_scenario(data, "<scenario>", lines)


class ShardActor:
    """A shard (shard.Shard) in a Ray worker, given `cores` of the cluster's CPUs."""

    def __init__(
        self,
        scenario: str,
        cities: list[int],
        out: str | None,
        rows_per_part: int,
        cores: int,
        fail_on_day: int | None = None,
    ) -> None:
        from xinyong import memory
        from xinyong.shard import Shard
        from xinyong.threads import set_core_budget

        memory.keep_freed()
        set_core_budget(cores)
        self.fail_on_day = fail_on_day  # tests: a shard that fails mid-run
        self.shard = Shard(_scenario(scenario), cities, Path(out) if out else None, rows_per_part)

    def boundary(self, t: int) -> Boundary:
        return self.shard.boundary(t)

    def step(self, t: int, start: Boundary) -> Boundary:
        if t == self.fail_on_day:
            raise RuntimeError(f"failing on day {t}, as asked")
        return self.shard.step(t, start)

    def finish(self) -> Any:
        partial = self.shard.finish()
        # Peak resident memory of this worker (Linux: kilobytes).
        partial.peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return partial


def _one_line(exc: BaseException) -> str:
    """A Ray error as one line: the shard's own exception where Ray kept it."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = str(exc).strip().splitlines()
    message = text[-1] if text else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def run_on_ray(
    sc: Scenario,
    out: Path | None,
    *,
    address: str | None = None,
    actors: int | None = None,
    rows_per_part: int = 2_000_000,
    on_day: Callable[[int], None] | None = None,
    fail_on_day: tuple[int, int] | None = None,
) -> Any:
    """The scenario's cities in bins on `actors` actors (default: one per CPU of the cluster,
    at most one per city). `fail_on_day` (shard, day): make a shard fail, for tests."""
    from xinyong.shard import Layout, exchange, merge, pack_bins

    ray = connect(address)
    cpus = float(ray.cluster_resources().get("CPU", 1))
    sizes = Layout.of(sc).sizes
    wanted = actors or max(1, int(cpus))
    bins = pack_bins(sizes, wanted)
    per = cpus / len(bins)  # an equal share each: bins are about equal in cost
    remote = ray.remote(ShardActor)
    text = sc.to_yaml()
    handles = [
        remote.options(num_cpus=per, max_restarts=0, max_task_retries=0).remote(
            text,
            cities,
            str(out) if out is not None else None,
            rows_per_part,
            max(1, int(per)),
            fail_on_day[1] if fail_on_day is not None and fail_on_day[0] == i else None,
        )
        for i, cities in enumerate(bins)
    ]

    def gather(calls: list[Any], when: str) -> list[Any]:
        results = []
        for i, call in enumerate(calls):
            try:
                results.append(ray.get(call))
            except ray.exceptions.RayError as exc:
                cities = bins[i]
                raise XinyongError(
                    f"shard {i} (cities {cities[0]}..{cities[-1]}) failed {when}: {_one_line(exc)}"
                ) from None
        return results

    try:
        start = exchange(gather([h.boundary.remote(0) for h in handles], "starting"))
        for t in range(sc.days):
            shared = ray.put(start)  # once for every actor
            start = exchange(gather([h.step.remote(t, shared) for h in handles], f"on day {t}"))
            if on_day is not None:
                on_day(t)
        partials = gather([h.finish.remote() for h in handles], "writing its tables")
    finally:
        for h in handles:
            ray.kill(h)
    outcome = merge(sc, out, partials)
    for shard, partial in zip(outcome.shards, sorted(partials, key=lambda p: p.cities[0]),
                              strict=True):  # fmt: skip
        shard["peak_rss_bytes"] = partial.peak_rss
    return outcome


def _task(
    worker: Callable[[Scenario, Path], dict[str, Any]], scenario: str, out: str, cores: int
) -> dict[str, Any]:
    from xinyong.threads import set_core_budget

    set_core_budget(cores)
    return worker(_scenario(scenario), Path(out))


def replicates(
    scenarios: list[Scenario],
    outs: list[Path],
    *,
    worker: Callable[[Scenario, Path], dict[str, Any]],
    address: str | None = None,
    cores: int = 1,
    on_done: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Each scenario run by `worker` (scenario, folder) -> summary as a Ray task reserving
    `cores` CPUs (and using only those), into its folder; their summaries, in order. The
    worker is passed in (the runner's), so this module never imports the runner back."""
    ray = connect(address)
    task = ray.remote(num_cpus=cores, max_retries=0)(_task)
    pending = {
        task.remote(worker, sc.to_yaml(), str(out), cores): i
        for i, (sc, out) in enumerate(zip(scenarios, outs, strict=True))
    }
    summaries: dict[int, dict[str, Any]] = {}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        i = pending.pop(done[0])
        try:
            summaries[i] = ray.get(done[0])
        except ray.exceptions.RayError as exc:
            for ref in pending:
                ray.cancel(ref)
            raise XinyongError(f"replicate {i} failed: {_one_line(exc)}") from None
        if on_done is not None:
            on_done(len(summaries) - 1)
    return [summaries[i] for i in range(len(scenarios))]
