"""Command line: run, validate, show, params, list, sql, audit, compare, sweep, calibrate,
sensitivity, explain, persona and serve."""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from xinyong.errors import XinyongError
from xinyong.words import count_of, listing, number, plural

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
# Seeds of one set, comparison or grid point: replicates.MAX_REPLICATES (not imported here:
# that loads the engine).
MAX_REPLICATES = 1000


def _count(text: str | None, option: str) -> int | None:
    """A whole number from the command line, also written 1e6 or 1_000_000: the syntax
    `--set` takes (`scenario.parse_number`), for every count of every command."""
    from xinyong.scenario import parse_number

    return None if text is None else int(parse_number(text, option, whole=True))


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
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise XinyongError(f"--set takes KEY=VALUE, got '{item}'")
        out[key.strip()] = _value(key.strip(), value)
    return out


def _value(key: str, text: str) -> object:
    """A --set value (`scenario.parse_value`); a refused one is reported at its key."""
    from xinyong.scenario import parse_value

    try:
        return parse_value(text)
    except XinyongError as err:
        raise XinyongError(err.message, field=f"--set {key[:80]}") from None


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
    days: Annotated[str | None, typer.Option(metavar="N", help="Number of simulated days.")] = None,
    seed: Annotated[str | None, typer.Option(metavar="N", help="Random seed.")] = None,
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
        int,
        typer.Option(
            min=1,
            max=MAX_REPLICATES,
            help="Run K seeds (seed, seed+1, ...) in parallel processes.",
        ),
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
        days=_count(days, "--days"),
        seed=_count(seed, "--seed"),
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
                label = f"{escape(sc.name)}: {sc.adults:,} adults"
                task = progress.add_task(label, total=sc.days)
                with _compiling(progress, task):
                    result = run_scenario(
                        sc,
                        path,
                        overwrite=overwrite,
                        on_day=lambda t: progress.update(task, completed=t + 1, description=label),
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
    days: str | None,
    seed: str | None,
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
            days=_count(days, "--days"),
            seed=_count(seed, "--seed"),
        )
    days_total = (sc or load_scenario(stage / "scenario.yaml")).days
    with _progress(disable=quiet) as progress:
        label = f"resuming {escape(run_dir.name)}"
        task = progress.add_task(label, total=days_total)
        try:
            with _compiling(progress, task):
                result = resume(
                    path,
                    sc,
                    on_day=lambda t: progress.update(task, completed=t + 1, description=label),
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
        table.add_row(key, number(value, 4) if isinstance(value, int | float) else str(value))
    out_console.print(table)


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="A rule pack or scenario YAML file.")],
    scenario: Annotated[
        str, typer.Option(help="Scenario whose behaviour catalogue a pack is checked against.")
    ] = "r1",
) -> None:
    """Check a rule pack or a scenario; print what it holds or the first problem."""
    from xinyong.modules import entities
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
    kind = data.get("kind") if isinstance(data, dict) else None
    for entity in entities():
        if kind == entity.kind and entity.check_pack is not None:
            out_console.print(
                "ok: " + entity.check_pack(data, file, lines, load_scenario(scenario))
            )
            return
    sc = load_scenario(file)
    members = "".join(f", {e.count(sc):,} {e.plural}" for e in entities(sc))
    out_console.print(
        f"ok: scenario '{sc.name}': {sc.adults:,} adults{members}, {sc.days} days, "
        f"{plural(len(sc.cities), 'city')}, "
        f"packs {', '.join([*sc.packs, *(p for e in entities(sc) for p in e.packs(sc))])}"
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


@app.command()
def params(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="As the Markdown table of docs/parameters.md.")
    ] = False,
) -> None:
    """List the declared scenario parameters: key, default, unit, bounds, meaning and the
    source of the default (modules' sections included)."""
    from xinyong.params import describe, shown, table
    from xinyong.scenario import scenario_model

    rows = describe(scenario_model(), "")
    if markdown:
        sys.stdout.write(table(rows))
        return
    # Most defaults are illustrative: a source is named with its meaning where one is
    # declared, so the table keeps the width of a terminal.
    view = Table(box=None, caption="Defaults are illustrative unless a source is named.")
    view.add_column("key", no_wrap=True)  # a key is what --set takes: never cut
    for column in ("default", "unit", "bounds", "meaning"):
        view.add_column(column)
    for r in rows:
        cited = "" if r.source == "illustrative" else f" (source: {r.source})"
        view.add_row(r.key, shown(r.default), r.unit, r.bounds, r.doc + cited)
    out_console.print(view)


@app.command(name="list")
def list_builtins() -> None:
    """List the built-in scenarios, rule packs, personas and calibration target sets."""
    from xinyong.calibration.targets import builtin_target_sets
    from xinyong.modules import entities
    from xinyong.persona import builtin_personas
    from xinyong.scenario import builtin_scenarios
    from xinyong.scheme.schema import builtin_packs

    out_console.print("scenarios: " + ", ".join(builtin_scenarios()), soft_wrap=True)
    out_console.print("packs: " + ", ".join(builtin_packs()), soft_wrap=True)
    for entity in entities():
        found = builtin_packs(entity.kind)
        out_console.print(f"{entity.kind} packs: " + ", ".join(found), soft_wrap=True)
    out_console.print("personas: " + ", ".join(builtin_personas()), soft_wrap=True)
    out_console.print("target sets: " + ", ".join(builtin_target_sets()), soft_wrap=True)


@app.command()
def audit(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    baseline: Annotated[
        bool, typer.Option(help="Run the scheme-off world for the behaviour metrics.")
    ] = True,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
    all_: Annotated[
        bool, typer.Option("--all", help="Print every metric and disparity, not the key ones.")
    ] = False,
) -> None:
    """Audit a run: metrics with intervals into metrics.json, and an offline HTML report.
    Prints the key findings and the key metrics (every metric with --all)."""
    from xinyong.audit.audit import audit as audit_run
    from xinyong.audit.compare import KEY_METRICS, flat_rows
    from xinyong.audit.report import key_findings

    with _reading(run_dir):
        doc = audit_run(run_dir, baseline=baseline, report=report)
    findings = key_findings(doc)
    if findings:
        out_console.print(Text("key findings", style="bold"))
        bullets = Table.grid(padding=(0, 1))  # wrapped lines stay under their sentence
        for text, _, _ in findings:
            bullets.add_row("-", Text(_plain(text)))
        out_console.print(bullets)
    rows = flat_rows(doc) if not all_ else doc["metrics"]
    shown = list(rows) if all_ else [m for m in KEY_METRICS if m in rows]
    out_console.print(Text("every metric" if all_ else "key metrics", style="bold"))
    for name in shown:
        _print_metric(name, rows[name])
    out_console.print(f"intervals: {doc['interval_meaning']}")
    if doc.get("correction"):
        out_console.print(f"multiple comparisons: {doc['correction']}")
    if doc.get("warning"):
        out_console.print(Text(doc["warning"], style="yellow"))
    flagged = [d for d in doc["disparity"] if d["flag"]]
    for d in flagged if all_ else []:
        out_console.print(
            Text.assemble(
                ("outside the four-fifths band:", "yellow"),
                f" {d['metric']}, {d['group']} against {d['reference']}: "
                f"{number(d['ratio'])} times ({plural(d['numerator'], 'person')} against "
                f"{plural(d['reference_numerator'], 'person')}"
                f"{' per run' if 'numerator_total' in d else ''})",
            )
        )
    if not all_:
        rest = len(doc["metrics"]) - sum(m in doc["metrics"] for m in shown)
        more = [plural(rest, "more metric")] if rest > 0 else []
        if flagged:
            more.append(f"{plural(len(flagged), 'disparity', 'disparities')} outside the "
                        "four-fifths band")  # fmt: skip
        if more:
            out_console.print(f"{listing(more)}: xinyong audit --all, metrics.json or the report")
    written = [run_dir / "metrics.json"]
    if report:
        written += [run_dir / name for name in ("report.html", "cities.html")]
    out_console.print("written: " + ", ".join(str(p) for p in written if p.exists()))


def _plain(html_text: str) -> str:
    """A sentence of the report as plain text (no tags, no entities)."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_text))


def _print_metric(name: str, row: dict) -> None:
    """A metric on its own line, its name whole, then its value, interval, people and
    meaning; long lines wrap between words."""
    parts = [f"{name} = {number(row['value'])}"]
    if row.get("low") is not None:
        parts.append(_interval(row))
    if row.get("count") is not None:
        parts.append(f"({count_of(row['count'], row['of'])})")
    out_console.print(Text(" ".join(parts)), overflow="fold")
    if row.get("meaning"):
        out_console.print(Padding(Text(row["meaning"], style="dim"), (0, 0, 0, 4)))


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
            max=MAX_REPLICATES,
            help="Pair K seeds (A's seed, +1, ...): runs the missing ones for both sides and "
            "gives intervals across seeds. The way to call a difference significant.",
        ),
    ] = None,
) -> None:
    """Differences of every metric between two runs (B - A), with 95% intervals."""
    from xinyong.audit.compare import compare as compare_runs
    from xinyong.audit.compare import outputs, write_comparison

    with _reading(run_a, run_b), _progress(disable=replicates is None, eta=False) as progress:
        task = progress.add_task("runs of the missing seeds", total=None)
        doc = compare_runs(
            run_a,
            run_b,
            baseline=baseline,
            replicates=replicates,
            out=None if out is None or str(out).endswith(".html") else out,
            on_done=lambda i: progress.update(task, completed=i + 1),
            on_total=lambda n: progress.update(task, total=n),
        )
    a, b = doc["a"], doc["b"]
    for label, side in (("A (base)", a), ("B (reform)", b)):
        seeds = ", ".join(map(str, side["seeds"]))
        word = "seed" if len(side["seeds"]) == 1 else "seeds"
        out_console.print(f"{label}: {side['path']} ({side['scenario']}, {word} {seeds})")
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
                number(row["a"]),
                number(row["b"]),
                number(row["difference"]) + mark,
                _interval(row),
                row["kind"],
            )
        out_console.print(table)
    else:  # a narrow terminal: one line a metric, names in full
        for row in doc["rows"]:
            mark = " *" if row["significant"] else ""
            out_console.print(
                f"{row['metric']}: {number(row['a'])} -> {number(row['b'])}, B - A = "
                f"{number(row['difference'])}{mark} {_interval(row)}",
                highlight=False,
                soft_wrap=True,
            )
    out_console.print(f"intervals: {doc['interval_meaning']}")
    if doc.get("correction"):
        out_console.print(f"multiple comparisons: {doc['correction']}")
    if doc.get("warning"):
        out_console.print(Text(doc["warning"], style="yellow"))
    files = outputs(run_b, out)
    try:
        write_comparison(doc, files)
    except OSError as exc:  # a write error names no file of its own
        reason = os.strerror(exc.errno) if exc.errno else exc.__class__.__name__
        raise XinyongError(
            f"cannot write the comparison ({reason})", file=exc.filename or files["html"].parent
        ) from None
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
    replicates: Annotated[
        int, typer.Option(min=2, max=MAX_REPLICATES, help="Seeds at each grid point.")
    ] = 4,
    adults: Annotated[
        str | None, typer.Option(metavar="N", help="Number of adults (1000000 or 1e6).")
    ] = None,
    days: Annotated[str | None, typer.Option(metavar="N", help="Number of simulated days.")] = None,
    seed: Annotated[str | None, typer.Option(metavar="N", help="First seed.")] = None,
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
    from xinyong.scenario import load_scenario
    from xinyong.sweep import grid_points
    from xinyong.sweep import sweep as run_sweep

    grid: dict[str, list] = {}
    for item in set_:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise XinyongError(f"--set takes KEY=V1,V2,..., got '{item}'", field="--set")
        grid[key.strip()] = [_value(key.strip(), v.strip()) for v in values.split(",")]
    fixed = {k: v[0] for k, v in grid.items() if len(v) == 1}
    grid = {k: v for k, v in grid.items() if len(v) > 1} or {k: [v] for k, v in fixed.items()}
    sc = load_scenario(
        scenario,
        overrides=fixed,
        adults=_count(adults, "--adults"),
        days=_count(days, "--days"),
        seed=_count(seed, "--seed"),
    )
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
                number(row["value"]),
                _interval(row),
            )
    out_console.print(table)
    out_console.print(f"written: {path / 'sweep.html'}, {path / 'sweep.csv'}")


RAY_OPTION = typer.Option(
    "--ray",
    metavar="[ADDRESS]",
    help="Each run as a Ray task, on the cluster at ADDRESS or, without one, on a local Ray "
    "(pip install 'xinyong[ray]').",
)
PARAM_HELP = "KEY=LOW..HIGH: a scenario key and its range (repeat; whole numbers stay whole)."


@app.command()
def calibrate(
    scenario: Annotated[str, typer.Argument(help="Built-in scenario name or a YAML file.")],
    targets: Annotated[
        str, typer.Option(help="Built-in target set (xinyong list) or a YAML file.")
    ],
    param: Annotated[list[str], typer.Option(help=PARAM_HELP)],
    trials: Annotated[int, typer.Option(min=1, help="Trials in all (a rerun goes on).")] = 40,
    replicates: Annotated[int, typer.Option(min=1, help="Seeds each trial is run with.")] = 4,
    batch: Annotated[
        int | None, typer.Option(min=1, help="Trials run at once (default: cores / seeds).")
    ] = None,
    adults: Annotated[int | None, typer.Option(help="Number of adults.")] = None,
    days: Annotated[int | None, typer.Option(help="Number of simulated days.")] = None,
    seed: Annotated[int | None, typer.Option(help="First seed; also seeds the search.")] = None,
    name: Annotated[
        str | None, typer.Option(help="Name of the calibrated scenario (default NAME-calibrated).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder (default runs/calibrate-NAME); kept to go on.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Start the study again.")] = False,
    ray: Annotated[str | None, RAY_OPTION] = None,
    cores: Annotated[int, typer.Option(min=1, help="With --ray: CPUs per run.")] = 1,
) -> None:
    """Fit parameters to published targets (Optuna): a calibrated scenario, a page and CSVs."""
    from xinyong.calibration import calibrate as fit
    from xinyong.calibration import load_targets, parse_params
    from xinyong.scenario import load_scenario

    tg = load_targets(targets)
    params = parse_params(param)
    sc = load_scenario(scenario, adults=adults, days=days, seed=seed)
    path = out or Path("runs") / f"calibrate-{sc.name}"
    with _progress() as progress:
        task = progress.add_task(f"{escape(sc.name)}: {trials} trials x {replicates} seeds")
        done = [0]

        def tick(_: int) -> None:
            done[0] += 1
            progress.update(task, completed=done[0], total=max(done[0], trials * replicates))

        doc = fit(
            scenario, tg, params, path, trials=trials, replicates=replicates, seed=seed,
            adults=adults, days=days, name=name, batch=batch, overwrite=overwrite, ray=ray,
            cores=cores, on_done=tick,
        )  # fmt: skip
    best = doc["best"]
    table = Table(
        "target", "published", "achieved", "95% interval (across seeds)", "within",
        title=f"best of {len(doc['history'])} trials: loss {number(best['loss'])}",
    )  # fmt: skip
    for r in best["targets"]:
        table.add_row(
            r["target"], number(r["value"]), number(r["achieved"]), _interval(r),
            "yes" if r["met"] else "no",
        )  # fmt: skip
    out_console.print(table)
    for key, value in best["values"].items():
        out_console.print(f"{key} = {number(value)}")
    out_console.print(
        f"written: {path / 'calibrated.yaml'}, {path / 'calibration.html'}, "
        f"{path / 'calibration.csv'}"
    )


@app.command()
def sensitivity(
    scenario: Annotated[str, typer.Argument(help="Built-in scenario name or a YAML file.")],
    param: Annotated[list[str], typer.Option(help=PARAM_HELP)],
    metric: Annotated[list[str], typer.Option(help="A summary metric or flow (repeat).")],
    n: Annotated[
        int, typer.Option("--n", min=2, help="Base sample, a power of 2: N x (params + 2) runs.")
    ] = 32,
    replicates: Annotated[int, typer.Option(min=1, help="Seeds each point is run with.")] = 1,
    resamples: Annotated[int, typer.Option(min=10, help="Bootstrap resamples.")] = 1000,
    adults: Annotated[int | None, typer.Option(help="Number of adults.")] = None,
    days: Annotated[int | None, typer.Option(help="Number of simulated days.")] = None,
    seed: Annotated[int | None, typer.Option(help="First seed; also seeds the design.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder (default runs/sensitivity-NAME).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing folder.")] = False,
    ray: Annotated[str | None, RAY_OPTION] = None,
    cores: Annotated[int, typer.Option(min=1, help="With --ray: CPUs per run.")] = 1,
) -> None:
    """Sobol indices (first and total order, SALib) of metrics over parameters: page and CSV."""
    from xinyong.calibration import parse_params
    from xinyong.calibration import sensitivity as sobol
    from xinyong.calibration.sobol import design_size
    from xinyong.scenario import load_scenario

    params = parse_params(param)
    sc = load_scenario(scenario, adults=adults, days=days, seed=seed)
    path = out or Path("runs") / f"sensitivity-{sc.name}"
    total = design_size(n, len(params)) * replicates
    with _progress() as progress:
        task = progress.add_task(f"{escape(sc.name)}: {total} runs", total=total)
        doc = sobol(
            scenario, params, metric, path, n=n, replicates=replicates, seed=seed, adults=adults,
            days=days, resamples=resamples, overwrite=overwrite, ray=ray, cores=cores,
            on_done=lambda i: progress.update(task, completed=i + 1),
        )  # fmt: skip
    table = Table(
        "metric", "parameter", "first order", "95% interval", "total order", "95% interval",
        title=f"Sobol indices ({doc['points']} points; intervals: {doc['interval']})",
    )  # fmt: skip
    for m, by_key in doc["indices"].items():
        for key, v in by_key.items():
            table.add_row(
                m, key, number(v["S1"]), _pm(v["S1"], v["S1_conf"]), number(v["ST"]),
                _pm(v["ST"], v["ST_conf"]),
            )  # fmt: skip
    out_console.print(table)
    out_console.print(f"written: {path / 'sensitivity.html'}, {path / 'sensitivity.csv'}")


def _pm(value: float, half: float) -> str:
    return f"[{number(value - half)}, {number(value + half)}]"


def _progress(disable: bool = False, eta: bool = True) -> Progress:
    """A progress bar on stderr, gone once done; its spinner turns while nothing else moves
    (kernels compiling, a day's last step)."""
    columns = [
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    if eta:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, console=err_console, disable=disable, transient=True)


@contextlib.contextmanager
def _compiling(progress: Progress, task: TaskID) -> Iterator[None]:
    """While numba compiles, the bar says so (the next day puts its label back), and the
    first compile leaves one line saying why the first run waits."""
    from xinyong.kernels import COMPILE_NOTE, COMPILING, on_compile

    said = []

    def compiling(_: str) -> None:
        if not said:
            said.append(True)
            err_console.print(COMPILE_NOTE, soft_wrap=True)
        progress.update(task, description=COMPILING)

    with on_compile(compiling):
        yield


def _interval(row: dict) -> str:
    return "" if row["low"] is None else f"[{number(row['low'])}, {number(row['high'])}]"


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
    member: Annotated[
        str,
        typer.Argument(
            metavar="ID",
            help="Adult id (0 .. adults-1), or KIND=ID for another kind of member (company=12).",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    all_: Annotated[
        bool, typer.Option("--all", help="The full listing: every record, score step, spell.")
    ] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a timeline page to this file.")
    ] = None,
) -> None:
    """One adult's story (or, with KIND=ID such as company=12, another kind of member's): a
    verdict, the records that mattered and why."""
    from xinyong.audit.explain import render, render_story
    from xinyong.audit.hooks import explainer

    kind, sep, ident_text = member.rpartition("=")
    kind = kind.strip() if sep else "adult"
    ident = _count(ident_text, "ID")
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
def persona(
    name: Annotated[str, typer.Argument(help="A built-in persona (xinyong list) or a YAML file.")],
    packs: Annotated[
        str | None,
        typer.Option(help="City packs, comma-separated (ids or YAML files; default the eight)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for persona.html, .csv and .json (default runs/persona-NAME)."),
    ] = None,
) -> None:
    """The same life in several cities: a persona's acts run exactly through each city's
    pack; score, grade, lists, sanctions and privileges side by side."""
    from xinyong.persona import DEFAULT_PACKS, load_persona, run_persona, write_outputs

    who = load_persona(name)
    refs = [p.strip() for p in packs.split(",") if p.strip()] if packs else list(DEFAULT_PACKS)
    if not refs:
        raise XinyongError("name at least one pack", field="packs")
    lives = run_persona(who, refs)
    table = Table(title=f"{who.name}, {who.days} days")
    for col in ("city scheme", "score", "grade", "lists", "sanctions", "privileges",
                "days listed", "own acts alone"):  # fmt: skip
        table.add_column(col)
    for life in lives:
        s = life.summary()
        table.add_row(
            s["pack"], f"{s['score']} (from {s['start']})", s["grade"],
            ", ".join(s["lists"]) or "-", ", ".join(s["sanctions"]) or "-",
            ", ".join(s["privileges"]) or "-",
            ", ".join(f"{k} {v}" for k, v in s["days_on"].items()) or "-",
            f"{s['shadow_score']}, {s['shadow_grade']}",
        )  # fmt: skip
    out_console.print(table)
    paths = write_outputs(who, lives, out or Path("runs") / f"persona-{who.name}")
    out_console.print("written: " + ", ".join(str(p) for p in paths.values()))


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
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            help="Another name the server answers to (its Host header), e.g. this machine's "
            "name on the network; localhost's names and --host always are."
        ),
    ] = None,
) -> None:
    """Serve the web application: design a scheme, run it, read the findings, compare."""
    from xinyong.web import LOCALHOST, Settings
    from xinyong.web import serve as serve_app

    if host not in LOCALHOST:
        err_console.print(
            f"warning: listening on {host}: anyone who can reach this address can start runs "
            "on this machine (there is no login); the default is 127.0.0.1. It answers to "
            f"the Host names localhost, {host} and each --allow-host NAME",
            soft_wrap=True,
        )
    settings = Settings(
        runs=runs,
        max_adults=max_adults,
        max_days=max_days,
        max_replicates=max_replicates,
        workers=workers,
        max_queued=max_queued,
        hosts=(*LOCALHOST, *(allow_host or [])),
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


def _plain_flags(group: Any) -> None:
    """On/off options take no value: their help shows no `<bool>` after them (Typer's
    default), --help's included."""
    from typer._click import Context

    for command in [group, *getattr(group, "commands", {}).values()]:
        helper = command.get_help_option(Context(command))
        for param in [*command.params, *([helper] if helper is not None else [])]:
            if getattr(param, "is_flag", False):
                param.metavar = ""


def main(argv: list[str] | None = None) -> None:
    """The `xinyong` command. Every error the user can act on is one line on stderr and exit
    code 2: bad input, a usage mistake, a damaged run, a system refusal (disk, permission)."""
    from typer._click.exceptions import ClickException, NoArgsIsHelpError

    from xinyong import memory

    # Before pyarrow is imported: its first native thread would otherwise open a second arena.
    memory.keep_freed()
    command = typer.main.get_command(app)
    _plain_flags(command)
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
