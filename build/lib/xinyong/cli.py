"""Command line: run, validate, show, list, sql, audit, compare, sweep, explain and serve."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from xinyong.errors import XinyongError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Simulate and audit social credit systems on synthetic populations.",
)
# Plain text: names, paths and messages come from the user's files and must print as they
# are (no markup such as "[red]", no emoji codes such as ":100:").
out_console = Console(markup=False, emoji=False, highlight=False)
err_console = Console(stderr=True, markup=False, emoji=False, highlight=False)
NAME_MAX = 64  # characters of a scenario name used in the default --out


def _count(text: str | None, option: str) -> int | None:
    """A whole number from the command line, also written 1e6 or 1_000_000."""
    if text is None:
        return None
    try:
        value = float(text.replace("_", "")) if re.search(r"[eE.]", text) else int(text)
    except ValueError:
        raise XinyongError(f"not a whole number: '{text}'", field=option) from None
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise XinyongError(f"not a whole number: '{text}'", field=option)
        value = int(value)
    return value


def default_out(name: str, seed: int) -> Path:
    """runs/NAME-sSEED, with NAME reduced to a safe folder name (no '/', no '..')."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip(".-")[:NAME_MAX] or "run"
    return Path("runs") / f"{slug}-s{seed}"


@contextlib.contextmanager
def _reading(*runs: Path) -> Iterator[None]:
    """Errors of DuckDB or Arrow while a run's tables are read mean a damaged run (a part
    cut short, a page overwritten): one line naming the run and what to do."""
    import duckdb
    import pyarrow as pa

    try:
        yield
    except (duckdb.Error, pa.ArrowException) as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        where = runs[0] if len(runs) == 1 else ", ".join(map(str, runs))
        raise XinyongError(
            f"cannot read the run's tables ({first}): the run is damaged; run it again "
            "with --overwrite",
            file=where,
        ) from None


def _overrides(items: list[str]) -> dict[str, object]:
    from xinyong.scenario import parse_value

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise XinyongError(f"--set takes KEY=VALUE, got '{item}'")
        out[key.strip()] = parse_value(value)
    return out


@app.command()
def run(
    scenario: Annotated[
        str | None,
        typer.Argument(
            help="Built-in scenario name or a YAML file (default r1; with --resume, the run's own)."
        ),
    ] = None,
    adults: Annotated[
        str | None, typer.Option(metavar="N", help="Number of adults (1000000 or 1e6).")
    ] = None,
    days: Annotated[int | None, typer.Option(help="Number of simulated days.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Run directory (default runs/NAME-sSEED).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override any scenario key, e.g. channels.camera.misattribute=0.1"
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run directory.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar or summary table.")] = False,
    replicates: Annotated[
        int, typer.Option(min=1, help="Run K seeds (seed, seed+1, ...) in parallel processes.")
    ] = 1,
    force: Annotated[
        bool, typer.Option(help="Run even when the memory estimate exceeds what is available.")
    ] = False,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="[ADDRESS]",
            help="Run on Ray: whole cities on actors (replicates: as tasks), on the cluster at "
            "ADDRESS, or without one on a local Ray with this machine's cores "
            "(pip install 'xinyong[ray]').",
        ),
    ] = None,
    actors: Annotated[
        int | None, typer.Option(min=1, help="With --ray: shards (default one per CPU).")
    ] = None,
    cores: Annotated[
        int, typer.Option(min=1, help="With --ray and --replicates: CPUs per replicate.")
    ] = 1,
    checkpoint_days: Annotated[
        int | None,
        typer.Option(
            min=0,
            metavar="N",
            help="Checkpoint every N days, for --resume (0: never; default: every 30 days "
            "once a run has gone on for a minute, at most 2% of its time).",
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Continue the killed run of run directory DIR from its last checkpoint.",
        ),
    ] = None,
) -> None:
    """Run a scenario and write its run directory."""
    from xinyong.api import run as run_scenario
    from xinyong.replicates import run_replicates
    from xinyong.scenario import load_scenario

    given = scenario is not None or set_ or adults or days is not None or seed is not None
    if resume is not None:
        _resume(resume, given, scenario, set_, adults, days, seed, out, quiet, force,
                checkpoint_days, replicates > 1 or ray is not None)  # fmt: skip
        return
    if checkpoint_days and (replicates > 1 or ray is not None):
        raise XinyongError(
            "runs on Ray and replicate sets keep no checkpoints", field="--checkpoint-days"
        )
    sc = load_scenario(
        scenario or "r1",
        overrides=_overrides(set_ or []),
        adults=_count(adults, "--adults"),
        days=days,
        seed=seed,
    )
    path = out or default_out(sc.name, sc.seed)
    with _progress(disable=quiet) as progress:
        try:
            if replicates > 1:
                task = progress.add_task(f"{escape(sc.name)}: {replicates} seeds", total=replicates)
                result = run_replicates(
                    sc,
                    path,
                    replicates,
                    overwrite=overwrite,
                    on_done=lambda i: progress.update(task, completed=i + 1),
                    force=force,
                    ray=ray,
                    cores=cores,
                )
            else:
                task = progress.add_task(f"{escape(sc.name)}: {sc.adults:,} adults", total=sc.days)
                result = run_scenario(
                    sc,
                    path,
                    overwrite=overwrite,
                    on_day=lambda t: progress.update(task, completed=t + 1),
                    force=force,
                    ray=ray,
                    actors=actors,
                    checkpoint_days=checkpoint_days,
                )
        except KeyboardInterrupt:
            err_console.print(f"interrupted; nothing was written to {path} (it is as it was)")
            if replicates == 1 and _resumable(path):
                err_console.print(
                    f"to continue from its last checkpoint: xinyong run --resume {path}"
                )
            raise typer.Exit(130) from None
    if not quiet:
        _print_summary(result.summary)
    out_console.print(f"run directory: {path}")


def _resumable(path: Path) -> bool:
    from xinyong.checkpoint import find_stage

    try:
        find_stage(path)
    except XinyongError:
        return False
    return True


def _resume(
    path: Path,
    given: object,
    scenario: str | None,
    set_: list[str] | None,
    adults: str | None,
    days: int | None,
    seed: int | None,
    out: Path | None,
    quiet: bool,
    force: bool,
    checkpoint_days: int | None,
    elsewhere: bool,
) -> None:
    """`run --resume DIR`: the killed run continued from its checkpoint, then published."""
    from xinyong.api import resume
    from xinyong.checkpoint import find_stage
    from xinyong.scenario import load_scenario

    if elsewhere:
        raise XinyongError("runs on Ray and replicate sets cannot be resumed", field="--resume")
    run_dir, stage = find_stage(path)
    if out is not None and out.absolute() != run_dir.absolute():
        raise XinyongError(f"--resume continues {run_dir}; leave --out out", field="--out")
    sc = None
    if given:  # then it must be the run's own
        sc = load_scenario(
            scenario or "r1",
            overrides=_overrides(set_ or []),
            adults=_count(adults, "--adults"),
            days=days,
            seed=seed,
        )
    days_total = (sc or load_scenario(stage / "scenario.yaml")).days
    with _progress(disable=quiet) as progress:
        task = progress.add_task(f"resuming {escape(run_dir.name)}", total=days_total)
        try:
            result = resume(
                path,
                sc,
                on_day=lambda t: progress.update(task, completed=t + 1),
                checkpoint_days=checkpoint_days,
                force=force,
            )
        except KeyboardInterrupt:
            err_console.print(
                f"interrupted; {run_dir} is as it was and can still be resumed from its checkpoint"
            )
            raise typer.Exit(130) from None
    if not quiet:
        _print_summary(result.summary)
    out_console.print(f"run directory: {run_dir}")


def _print_summary(summary: dict) -> None:
    table = Table(title="summary", show_header=False)
    for key, value in summary.items():
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        table.add_row(key, text)
    out_console.print(table)


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="A rule pack or scenario YAML file.")],
    scenario: Annotated[
        str, typer.Option(help="Scenario whose behaviour catalogue a pack is checked against.")
    ] = "r1",
) -> None:
    """Check a rule pack or a scenario; print what it holds or the first problem."""
    from xinyong.scenario import load_scenario
    from xinyong.scheme.schema import parse_pack
    from xinyong.yamlio import load_yaml

    data, lines = load_yaml(file)
    if isinstance(data, dict) and data.get("kind") in ("municipal", "national"):
        catalogue = set(load_scenario(scenario).behaviours)
        pack = parse_pack(data, file, lines, catalogue)
        out_console.print(
            f"ok: pack '{pack.id}' ({pack.kind}): {len(pack.rules)} rules, "
            f"{len(pack.lists)} lists, tiers {', '.join(pack.tier_names) or 'none'}"
        )
        return
    if isinstance(data, dict) and data.get("kind") == "company":
        from xinyong.scheme.company_schema import CompanyPack
        from xinyong.scheme.schema import validated

        base = load_scenario("c1" if scenario == "r1" else scenario)
        behaviours = set(base.companies.behaviours) if base.companies is not None else None
        cpack = validated(CompanyPack, data, file, lines, "a company pack", behaviours)
        rated = "a rating, " if cpack.rating is not None else ""
        out_console.print(
            f"ok: company pack '{cpack.id}': {rated}{len(cpack.lists)} company lists, "
            f"{len(cpack.person_lists)} person lists"
        )
        return
    sc = load_scenario(file)
    companies = f", {sc.companies.count(sc.adults):,} companies" if sc.companies else ""
    out_console.print(
        f"ok: scenario '{sc.name}': {sc.adults:,} adults{companies}, {sc.days} days, "
        f"{len(sc.cities)} cities, packs {', '.join([*sc.packs, *sc.company_packs])}"
    )


@app.command()
def show(
    scenario: Annotated[
        str | None,
        typer.Argument(
            help="Built-in scenario name or a YAML file (default r1; with --resume, the run's own)."
        ),
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a key.")] = None,
) -> None:
    """Print the resolved scenario (packs embedded) as YAML."""
    from xinyong.scenario import load_scenario

    sys.stdout.write(load_scenario(scenario, overrides=_overrides(set_ or [])).to_yaml())


@app.command(name="list")
def list_builtins() -> None:
    """List the built-in scenarios and rule packs."""
    from xinyong.scenario import builtin_scenarios
    from xinyong.scheme.schema import builtin_packs

    out_console.print("scenarios: " + ", ".join(builtin_scenarios()))
    out_console.print("packs: " + ", ".join(builtin_packs()))


@app.command()
def audit(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    baseline: Annotated[
        bool, typer.Option(help="Run the scheme-off world for the behaviour metrics.")
    ] = True,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
) -> None:
    """Audit a run: metrics with intervals into metrics.json, and an offline HTML report."""
    from xinyong.audit.audit import audit as audit_run

    with _reading(run_dir):
        doc = audit_run(run_dir, baseline=baseline, report=report)
    table = Table("metric", "value", "people", "95% interval", "meaning", title="audit")
    for name, row in doc["metrics"].items():
        people = "" if row.get("count") is None else f"{_fmt(row['count'])} of {_fmt(row['of'])}"
        table.add_row(name, _fmt(row["value"]), people, _interval(row), row["meaning"])
    out_console.print(table)
    out_console.print(f"intervals: {doc['interval_meaning']}")
    if doc.get("correction"):
        out_console.print(f"multiple comparisons: {doc['correction']}")
    if doc.get("warning"):
        out_console.print(Text(doc["warning"], style="yellow"))
    for d in doc["disparity"]:
        if d["flag"]:
            out_console.print(
                Text.assemble(
                    ("outside the four-fifths band:", "yellow"),
                    f" {d['metric']} {d['group']}/{d['reference']} = {_fmt(d['ratio'])} "
                    f"({d['numerator']} vs {d['reference_numerator']} people)",
                )
            )
    out_console.print(
        f"written: {run_dir / 'metrics.json'}" + (f", {run_dir / 'report.html'}" if report else "")
    )


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="The base run directory.")],
    run_b: Annotated[Path, typer.Argument(help="The reform run directory.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for compare.html/.csv/.json (default: RUN_B), or an .html path."),
    ] = None,
    baseline: Annotated[
        bool, typer.Option(help="Include behaviour metrics (runs scheme-off worlds).")
    ] = False,
    replicates: Annotated[
        int | None,
        typer.Option(
            min=2,
            help="Pair K seeds (A's seed, +1, ...): runs the missing ones for both sides and "
            "gives intervals across seeds. The way to call a difference significant.",
        ),
    ] = None,
) -> None:
    """Differences of every metric between two runs (B - A), with 95% intervals."""
    from xinyong.audit.compare import compare as compare_runs
    from xinyong.audit.compare import outputs, write_comparison

    with _reading(run_a, run_b), _progress(disable=replicates is None, eta=False) as progress:
        task = progress.add_task("seeds", total=None)
        doc = compare_runs(
            run_a,
            run_b,
            baseline=baseline,
            replicates=replicates,
            out=None if out is None or str(out).endswith(".html") else out,
            on_done=lambda i: progress.update(task, completed=i + 1),
        )
    a, b = doc["a"], doc["b"]
    for label, side in (("A (base)", a), ("B (reform)", b)):
        seeds = ", ".join(map(str, side["seeds"]))
        out_console.print(f"{label}: {side['path']} ({side['scenario']}, seeds {seeds})")
    if doc["parameters"]:
        for p in doc["parameters"]:
            out_console.print(f"  changed: {p['key']}: {p['a']} -> {p['b']}")
    else:
        out_console.print("  no scenario parameter differs")
    if out_console.width >= 140:
        table = Table("metric", "A", "B", "B - A", "95% interval", "kind", title="B against A")
        for row in doc["rows"]:
            mark = " *" if row["significant"] else ""
            table.add_row(
                row["metric"],
                _fmt(row["a"]),
                _fmt(row["b"]),
                _fmt(row["difference"]) + mark,
                _interval(row),
                row["kind"],
            )
        out_console.print(table)
    else:  # a narrow terminal: one line a metric, names in full
        for row in doc["rows"]:
            mark = " *" if row["significant"] else ""
            out_console.print(
                f"{row['metric']}: {_fmt(row['a'])} -> {_fmt(row['b'])}, B - A = "
                f"{_fmt(row['difference'])}{mark} {_interval(row)}",
                highlight=False,
                soft_wrap=True,
            )
    out_console.print(f"intervals: {doc['interval_meaning']}")
    if doc.get("correction"):
        out_console.print(f"multiple comparisons: {doc['correction']}")
    if doc.get("warning"):
        out_console.print(Text(doc["warning"], style="yellow"))
    files = outputs(run_b, out)
    write_comparison(doc, files)
    out_console.print(
        f"written: {files['html']}, {files['csv']}, {files['json']}"
        + (
            ""
            if doc.get("warning")
            else "  (* = significant after the Benjamini-Hochberg correction)"
        )
    )


@app.command()
def sweep(
    scenario: Annotated[str, typer.Argument(help="Built-in scenario name or a YAML file.")],
    set_: Annotated[
        list[str],
        typer.Option(
            "--set",
            help="KEY=V1,V2,... to sweep (repeat for a grid); KEY=V holds a key fixed.",
        ),
    ],
    replicates: Annotated[int, typer.Option(min=2, help="Seeds at each grid point.")] = 4,
    adults: Annotated[int | None, typer.Option(help="Number of adults.")] = None,
    days: Annotated[int | None, typer.Option(help="Number of simulated days.")] = None,
    seed: Annotated[int | None, typer.Option(help="First seed.")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder (default runs/sweep-NAME).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing sweep folder.")] = False,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="[ADDRESS]",
            help="Each run as a Ray task, on the cluster at ADDRESS or, without one, on a "
            "local Ray (pip install 'xinyong[ray]').",
        ),
    ] = None,
    cores: Annotated[int, typer.Option(min=1, help="With --ray: CPUs per run.")] = 1,
) -> None:
    """Run a grid of parameter values, K seeds each; one curve per key metric (HTML + CSV)."""
    from xinyong.scenario import load_scenario, parse_value
    from xinyong.sweep import grid_points
    from xinyong.sweep import sweep as run_sweep

    grid: dict[str, list] = {}
    for item in set_:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise XinyongError(f"--set takes KEY=V1,V2,..., got '{item}'", field="--set")
        grid[key.strip()] = [parse_value(v.strip()) for v in values.split(",")]
    fixed = {k: v[0] for k, v in grid.items() if len(v) == 1}
    grid = {k: v for k, v in grid.items() if len(v) > 1} or {k: [v] for k, v in fixed.items()}
    sc = load_scenario(scenario, overrides=fixed, adults=adults, days=days, seed=seed)
    for point in grid_points(grid):
        sc.with_(**point)  # a bad key or value stops here, before anything runs
    path = out or Path("runs") / f"sweep-{sc.name}"
    total = len(grid_points(grid)) * replicates
    with _progress() as progress:
        task = progress.add_task(f"{escape(sc.name)}: {total} runs", total=total)
        doc = run_sweep(
            sc,
            grid,
            path,
            replicates=replicates,
            overwrite=overwrite,
            on_done=lambda i: progress.update(task, completed=i + 1),
            ray=ray,
            cores=cores,
        )
    table = Table(*doc["keys"], "metric", "mean", "95% interval (across seeds)", title="sweep")
    for p in doc["points"]:
        for name, row in p["metrics"].items():
            table.add_row(
                *(str(p["values"][k]) for k in doc["keys"]),
                name,
                _fmt(row["value"]),
                _interval(row),
            )
    out_console.print(table)
    out_console.print(f"written: {path / 'sweep.html'}, {path / 'sweep.csv'}")


def _progress(disable: bool = False, eta: bool = True) -> Progress:
    """A progress bar on stderr, gone once done."""
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn()]
    if eta:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, console=err_console, disable=disable, transient=True)


def _interval(row: dict) -> str:
    return "" if row["low"] is None else f"[{_fmt(row['low'])}, {_fmt(row['high'])}]"


def _fmt(value: object) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@app.command()
def sql(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    query: Annotated[str, typer.Argument(help="SQL over the run's tables (records, spells, ...).")],
    as_json: Annotated[bool, typer.Option("--json", help="Rows as JSON lines.")] = False,
) -> None:
    """Query a run directory with DuckDB."""
    import duckdb

    from xinyong.store import RunDir

    if not query.strip():
        raise XinyongError("the query is empty; give one, e.g. 'SELECT count(*) FROM records'")
    with _reading(run_dir):
        con = RunDir(run_dir).connect()
    try:
        rel = con.sql(query)
        if rel is None:  # a statement without rows (SET, CREATE ...)
            return
        rows, columns = rel.fetchall(), rel.columns
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise XinyongError(first, field="query") from None
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(dict(zip(columns, row, strict=True)), default=str) + "\n")
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    out_console.print(table)


@app.command()
def explain(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    person: Annotated[int | None, typer.Argument(help="Adult id (0 .. adults-1).")] = None,
    company: Annotated[
        int | None, typer.Option("--company", help="Explain this company instead of an adult.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    all_: Annotated[
        bool, typer.Option("--all", help="The full listing: every record, score step, spell.")
    ] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a timeline page to this file.")
    ] = None,
) -> None:
    """One adult's (or, with --company, one company's) story: a verdict, the records that
    mattered and why."""
    from xinyong.audit.explain import render, render_story
    from xinyong.audit.hooks import explainer

    if (person is None) == (company is None):
        raise XinyongError("give an adult id or --company ID (one of them)", field="person")
    kind, ident = ("adult", person) if company is None else ("company", company)
    found = explainer(kind)
    if html is not None and found.html is None:
        raise XinyongError(f"--html draws an adult's timeline, not a {kind}'s", field="html")
    with _reading(run_dir):
        report = found.explain(run_dir, ident)
    if html is not None and found.html is not None:
        found.html(report, html)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    if kind != "adult":
        found.console(_escaped(report), Console(emoji=False, highlight=False))
        return
    # The report's sections use markup of their own: its texts (names from the packs) are
    # escaped instead, and emoji codes stay off.
    console = Console(emoji=False, highlight=False)
    (render if all_ else render_story)(_escaped(report), console)
    if html is not None:
        out_console.print(f"written: {html}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (localhost only by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    runs: Annotated[Path, typer.Option(help="Folder of run directories.")] = Path("runs"),
    max_adults: Annotated[int, typer.Option(min=1, help="Most adults one run may have.")] = (
        1_000_000
    ),
    max_days: Annotated[int, typer.Option(min=1, help="Most days one run may have.")] = 3650,
    max_replicates: Annotated[int, typer.Option(min=1, help="Most seeds a run pairs.")] = 8,
    workers: Annotated[int, typer.Option(min=1, help="Runs at once (more wait in a queue).")] = 1,
    max_queued: Annotated[int, typer.Option(min=0, help="Most jobs waiting in the queue.")] = 8,
) -> None:
    """Serve the web application: design a scheme, run it, read the findings, compare."""
    from xinyong.web import LOCALHOST, Settings
    from xinyong.web import serve as serve_app

    if host not in LOCALHOST:
        err_console.print(
            f"warning: listening on {host}: anyone who can reach this address can start runs "
            "on this machine (there is no login); the default is 127.0.0.1",
            soft_wrap=True,
        )
    settings = Settings(
        runs=runs,
        max_adults=max_adults,
        max_days=max_days,
        max_replicates=max_replicates,
        workers=workers,
        max_queued=max_queued,
    )
    shown = f"[{host}]" if ":" in host else host
    out_console.print(f"serving http://{shown}:{port}/ (runs in {runs}); Ctrl-C stops")
    serve_app(settings, host=host, port=port)


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def _error(message: str) -> None:
    err_console.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True)


OPTIONAL_VALUE = {"--ray": "local"}  # options whose value may be left out, and its default


def with_optional_values(args: list[str]) -> list[str]:
    """`--ray` alone (last, or before another option) as `--ray local`: click would take the
    next word as its value, and Typer has no options with an optional value."""
    out: list[str] = []
    for i, arg in enumerate(args):
        out.append(arg)
        if arg in OPTIONAL_VALUE and (i + 1 == len(args) or args[i + 1].startswith("-")):
            out.append(OPTIONAL_VALUE[arg])
    return out


def main(argv: list[str] | None = None) -> None:
    """The `xinyong` command. Every error the user can act on is one line on stderr and exit
    code 2: bad input, a usage mistake, a damaged run, a system refusal (disk, permission)."""
    from typer._click.exceptions import ClickException, NoArgsIsHelpError

    from xinyong import memory

    # Before pyarrow is imported: its first native thread would otherwise open a second arena.
    memory.keep_freed()
    command = typer.main.get_command(app)
    try:
        args = with_optional_values(sys.argv[1:] if argv is None else argv)
        code = command.main(args=args, prog_name="xinyong", standalone_mode=False)
    except NoArgsIsHelpError:
        sys.exit(2)  # the help is printed already (click's exit code for it)
    except ClickException as exc:
        where = f"{exc.ctx.command_path}: " if getattr(exc, "ctx", None) else ""
        _error(where + " ".join(exc.format_message().split()))
        sys.exit(2)
    except XinyongError as err:
        _error(err.format())
        sys.exit(2)
    except OSError as exc:
        # Met outside the places that explain them (a report to an unwritable path, a full
        # disk while writing compare.html).
        reason = os.strerror(exc.errno) if exc.errno else str(exc) or exc.__class__.__name__
        _error(f"{exc.filename}: {reason}" if exc.filename else reason)
        sys.exit(2)
    except MemoryError:
        _error("out of memory (a smaller run, or --force only where the estimate is wrong)")
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
