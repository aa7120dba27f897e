"""What calibration and sensitivity share: parameter ranges from the command line, and
scenario points run over K seeds (replicates.run_jobs, in processes or on Ray) into per-seed
metric values, flows derived from the run tables included."""

from __future__ import annotations

import contextlib
import math
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xinyong import modules
from xinyong.calibration.targets import flows_known
from xinyong.errors import XinyongError
from xinyong.replicates import replicate_in_set, run_jobs
from xinyong.scenario import (
    SCENARIOS_DIR,
    Scenario,
    _fraction,
    load_scenario,
    parse_value,
    scenario_path,
)
from xinyong.store import RunDir

YEAR = 365  # flows are counted over the last YEAR days of a run (all of it when shorter)


@dataclass(frozen=True)
class Param:
    """A scenario key varied over [low, high]; whole numbers when both bounds are."""

    key: str
    low: float
    high: float
    integer: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "low": self.low, "high": self.high, "integer": self.integer}

    def value(self, x: float) -> float | int:
        """A point of [low, high] as the scenario takes it."""
        return round(x) if self.integer else float(x)


def parse_params(items: Sequence[str], option: str = "--param") -> list[Param]:
    """KEY=LOW..HIGH items (the command line's --param; fractions such as 1/60 too); each key
    once, LOW < HIGH."""
    out: list[Param] = []
    for item in items:
        key, sep, span = item.partition("=")
        low_text, dots, high_text = span.partition("..")
        key = key.strip()
        if not sep or not key or not dots:
            raise XinyongError(f"takes KEY=LOW..HIGH, got '{item}'", field=option)
        try:  # 1/60 as well as 0.0167, as scenarios write rates
            low, high = (_number_or_fraction(t) for t in (low_text, high_text))
        except ValueError:
            low = high = None
        numbers = all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in (low, high)
        )
        if not numbers:
            raise XinyongError(f"LOW and HIGH must be finite numbers, got '{item}'", field=option)
        if not low < high:
            raise XinyongError(f"LOW must be below HIGH, got '{item}'", field=option)
        if any(p.key == key for p in out):
            raise XinyongError(f"'{key}' is given twice", field=option)
        integer = isinstance(low, int) and isinstance(high, int)
        out.append(Param(key, float(low), float(high), integer))
    if not out:
        raise XinyongError("name at least one parameter: KEY=LOW..HIGH", field=option)
    return out


ParamsLike = Sequence["Param | str"] | dict[str, tuple[float, float]]


def as_params(params: ParamsLike) -> list[Param]:
    """Parameters given as Param, "KEY=LOW..HIGH" or {key: (low, high)}: checked as the
    command line's are."""
    if isinstance(params, dict):
        return parse_params([f"{k}={lo}..{hi}" for k, (lo, hi) in params.items()])
    given = {p.key: p for p in params if isinstance(p, Param)}
    items = [p if isinstance(p, str) else f"{p.key}={p.low!r}..{p.high!r}" for p in params]
    checked = parse_params(items)
    return [given.get(p.key, p) for p in checked]


def _number_or_fraction(text: str) -> Any:
    value = _fraction(parse_value(text.strip()))
    if isinstance(value, str):  # YAML 1.1 reads 1e-06 (no dot) as text
        with contextlib.suppress(ValueError):
            return float(value)
    return value


def base_scenario(
    scenario: str | Path | Scenario, adults: int | None, days: int | None, seed: int | None
) -> tuple[Scenario, str | None]:
    """The scenario to run (adults, days and seed applied) and how a calibrated scenario
    refers to it: a built-in name, an absolute path, or None for a Scenario object."""
    if isinstance(scenario, Scenario):
        changes = {"population.adults": adults, "days": days, "seed": seed}
        return scenario.with_(**{k: v for k, v in changes.items() if v is not None}), None
    sc = load_scenario(scenario, adults=adults, days=days, seed=seed)
    file = scenario_path(scenario)
    return sc, file.stem if file.parent == SCENARIOS_DIR else str(file.absolute())


def check_params(scenario: Scenario, params: Sequence[Param], option: str = "--param") -> None:
    """A bad key or a value the scenario refuses stops here, before anything runs."""
    for p in params:
        for x in (p.low, p.high):
            try:
                scenario.with_(**{p.key: p.value(x)})
            except XinyongError as err:
                raise XinyongError(f"{p.key}={p.value(x)}: {err.message}", field=option) from None


ADULT_SPELLS = "spells"  # the adults' list spells; a module's kind of member has its own


def scenario_lists(sc: Scenario) -> dict[str, set[str]]:
    """The lists a scenario has, by the spells table of each: the adults' (their packs' and
    those the modules add) and each kind of member's a module adds."""
    people = {name for pack in sc.packs.values() for name in pack.lists}
    for _, spec in modules.active(sc):
        if spec.adult_packs is not None:
            people |= {name for pack in spec.adult_packs(sc) for name in pack.lists}
    return {ADULT_SPELLS: people, **{e.spells: e.lists(sc) for e in modules.entities(sc)}}


def list_metrics() -> dict[str, str]:
    """Metric heads followed by a list name, and the spells table that list belongs to."""
    heads = ("list_share", "ever_listed_share", "wrongly_listed_share")
    out = dict.fromkeys(heads, ADULT_SPELLS)
    for e in modules.entities():
        out |= dict.fromkeys(
            (f"{e.kind}.list_share", f"{e.kind}.wrongly_listed_share",
             f"flow.listed_per_{e.kind}_year", f"flow.left_per_{e.kind}_year"),
            e.spells,
        )  # fmt: skip
    return out


def unproduced(metric: str, sc: Scenario) -> str | None:
    """Why `sc` cannot produce `metric` (a metric of a kind of member it does not have, a
    list it does not have), or None; what only a run can tell is checked after the first
    runs."""
    lists = scenario_lists(sc)
    for e in modules.entities():
        if metric.startswith((f"{e.kind}.", f"flow.{e.kind}_", f"flow.listed_per_{e.kind}_",
                              f"flow.left_per_{e.kind}_")) and e.spells not in lists:  # fmt: skip
            return f"scenario '{sc.name}' has no {e.plural}: it does not produce metric '{metric}'"
    named: list[tuple[str, str]] = []
    for head, table in list_metrics().items():
        if metric.startswith(head + "."):
            named.append((metric[len(head) + 1 :], table))
    for head in ("flow.listed_per_adult_year", "flow.left_per_adult_year"):
        if metric.startswith(head + "."):
            named.append((metric[len(head) + 1 :], "any"))
    for e in modules.entities(sc):
        head = f"flow.{e.kind}_share_of_listed."
        if metric.startswith(head):
            theirs, _, person = metric.removeprefix(head).partition(".")
            named += [(theirs, e.spells), (person, ADULT_SPELLS)]
    kinds = {e.spells: f"{e.kind} list" for e in modules.entities()}
    for name, table in named:
        have = set().union(*lists.values()) if table == "any" else lists[table]
        if name not in have:
            what = kinds.get(table, "list of adults" if table == ADULT_SPELLS else "list")
            known = ", ".join(sorted(have)) or "none"
            return (
                f"scenario '{sc.name}' has no {what} '{name}' (it has: {known}): it does not "
                f"produce metric '{metric}'"
            )
    return None


def flows(path: Path, sc: Scenario) -> dict[str, float | None]:
    """Entries onto and exits from every list (recorded world) over the last year of the run
    of `sc` in `path`: per adult, per member of the list's own kind, and each kind's share of
    the entries beside each adults' list."""
    con = RunDir(path).connect(threads=1)
    days = sc.days

    def one(sql: str) -> Any:
        return con.sql(sql).fetchall()[0][0]

    start = max(days - YEAR, 0)
    years = (days - start) / YEAR
    adults = one("SELECT count(*) FROM persons")
    tables = {r[0] for r in con.sql("SHOW TABLES").fetchall()}
    counts = {t: dict.fromkeys(names, (0, 0)) for t, names in scenario_lists(sc).items()}
    for table, by_list in counts.items():
        if table not in tables:
            continue
        rows = con.sql(
            f"""SELECT list, count(*) FILTER (WHERE start >= {start}),
                       count(*) FILTER (WHERE "end" IS NOT NULL AND "end" >= {start})
                FROM {table} WHERE world = 'recorded' GROUP BY list"""
        ).fetchall()
        by_list.update({name: (int(entered), int(left)) for name, entered, left in rows})
    out: dict[str, float | None] = {}

    def per(n: int, of: int) -> float | None:
        return n / of / years if of and years else None

    for by_list in counts.values():
        for name, (entered, left) in by_list.items():
            out[f"flow.listed_per_adult_year.{name}"] = per(entered, adults)
            out[f"flow.left_per_adult_year.{name}"] = per(left, adults)
    for e in modules.entities(sc):
        members = one(f"SELECT count(*) FROM {e.table}") if e.table in tables else 0
        for name, (entered, left) in counts[e.spells].items():
            out[f"flow.listed_per_{e.kind}_year.{name}"] = per(entered, members)
            out[f"flow.left_per_{e.kind}_year.{name}"] = per(left, members)
            for p, (p_in, _) in counts[ADULT_SPELLS].items():
                total = entered + p_in
                out[f"flow.{e.kind}_share_of_listed.{name}.{p}"] = (
                    entered / total if total else None
                )
    return out


def needs_flows(metrics: Sequence[str]) -> bool:
    return any(m.startswith(tuple(f + "." for f in flows_known())) for m in metrics)


def measure_points(
    points: Sequence[Scenario],
    seeds: Sequence[int],
    folder: Path,
    metrics: Sequence[str],
    *,
    workers: int | None = None,
    ray: str | None = None,
    cores: int = 1,
    on_done: Callable[[int], None] | None = None,
    pool: Executor | None = None,
) -> list[list[dict[str, float | None]]]:
    """Run every point with every seed into `folder` (removed after); for each point, one
    dict per seed of the named metrics that the run produced (None: not defined, such as a
    share of nothing)."""
    jobs = [
        (sc.with_(seed=s), folder / f"point-{i}" / f"seed-{s}")
        for i, sc in enumerate(points)
        for s in seeds
    ]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        summaries = run_jobs(
            jobs,
            workers=workers,
            on_done=on_done,
            worker=replicate_in_set,
            ray=ray,
            cores=cores,
            pool=pool,
        )
        derive = needs_flows(metrics)
        values = []
        for (sc, out), summary in zip(jobs, summaries, strict=True):
            got = {**summary, **(flows(out, sc) if derive else {})}
            values.append({m: _number(got[m]) for m in metrics if m in got})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    k = len(seeds)
    return [values[i * k : (i + 1) * k] for i in range(len(points))]


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return float(x)
