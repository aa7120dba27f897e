"""Command line: `xinyong run | validate | show | list | sql`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from xinyong.errors import XinyongError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Simulate and audit social credit systems on synthetic populations.",
)
out_console = Console()
err_console = Console(stderr=True)


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
    scenario: Annotated[str, typer.Argument(help="Built-in scenario name or a YAML file.")] = "r1",
    adults: Annotated[int | None, typer.Option(help="Number of adults.")] = None,
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
) -> None:
    """Run a scenario and write its run directory."""
    from xinyong.api import run as run_scenario
    from xinyong.api import run_replicates
    from xinyong.scenario import load_scenario

    sc = load_scenario(
        scenario, overrides=_overrides(set_ or []), adults=adults, days=days, seed=seed
    )
    path = out or Path("runs") / f"{sc.name}-s{sc.seed}"
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet,
        transient=True,
    ) as progress:
        try:
            if replicates > 1:
                task = progress.add_task(f"{sc.name}: {replicates} seeds", total=replicates)
                result = run_replicates(
                    sc,
                    path,
                    replicates,
                    overwrite=overwrite,
                    on_done=lambda i: progress.update(task, completed=i + 1),
                    ray=ray,
                    cores=cores,
                )
            else:
                task = progress.add_task(f"{sc.name}: {sc.adults:,} adults", total=sc.days)
                result = run_scenario(
                    sc,
                    path,
                    overwrite=overwrite,
                    on_day=lambda t: progress.update(task, completed=t + 1),
                    ray=ray,
                    actors=actors,
                )
        except KeyboardInterrupt:
            err_console.print(f"interrupted; what was written so far is in {path}")
            raise typer.Exit(130) from None
    if not quiet:
        _print_summary(result.summary)
    out_console.print(f"run directory: {path}")


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
    sc = load_scenario(file)
    out_console.print(
        f"ok: scenario '{sc.name}': {sc.adults:,} adults, {sc.days} days, "
        f"{len(sc.cities)} cities, packs {', '.join(sc.packs)}"
    )


@app.command()
def show(
    scenario: Annotated[str, typer.Argument(help="Built-in scenario name or a YAML file.")] = "r1",
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

    doc = audit_run(run_dir, baseline=baseline, report=report)
    table = Table("metric", "value", "95% interval", "meaning", title="audit")
    for name, row in doc["metrics"].items():
        table.add_row(name, _fmt(row["value"]), _interval(row), row["meaning"])
    out_console.print(table)
    flagged = [d for d in doc["disparity"] if d["flag"]]
    for d in flagged:
        out_console.print(
            f"[yellow]outside the four-fifths band:[/yellow] {d['metric']} "
            f"{d['group']}/{d['reference']} = {_fmt(d['ratio'])}"
        )
    out_console.print(
        f"written: {run_dir / 'metrics.json'}" + (f", {run_dir / 'report.html'}" if report else "")
    )


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="The base run directory.")],
    run_b: Annotated[Path, typer.Argument(help="The reform run directory.")],
    out: Annotated[Path, typer.Option(help="HTML comparison to write.")] = Path("compare.html"),
    baseline: Annotated[
        bool, typer.Option(help="Include behaviour metrics (runs scheme-off worlds).")
    ] = False,
) -> None:
    """Differences of every metric between two runs (B - A), with 95% intervals."""
    from xinyong.audit.compare import compare as compare_runs
    from xinyong.audit.report import render_compare

    doc = compare_runs(run_a, run_b, baseline=baseline)
    table = Table("metric", "A", "B", "B - A", "95% interval", title=f"{run_a} vs {run_b}")
    for row in doc["rows"]:
        mark = " *" if row["significant"] else ""
        table.add_row(
            row["metric"],
            _fmt(row["a"]),
            _fmt(row["b"]),
            _fmt(row["difference"]) + mark,
            _interval(row),
        )
    out_console.print(table)
    render_compare(doc, out)
    out_console.print(f"written: {out}  (* = interval excludes 0)")


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

    try:
        rel = RunDir(run_dir).connect().sql(query)
        rows, columns = rel.fetchall(), rel.columns
    except duckdb.Error as exc:
        raise XinyongError(str(exc).splitlines()[0], field="query") from None
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
    person: Annotated[int, typer.Argument(help="Adult id (0 .. adults-1).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """One adult's timeline: records, score, grades, lists, sanctions, children, appeals."""
    from xinyong.audit.explain import explain as explain_person
    from xinyong.audit.explain import render

    report = explain_person(run_dir, person)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    render(report, out_console)


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


def main() -> None:
    from xinyong import memory

    # Before pyarrow is imported: its first native thread would otherwise open a second arena.
    memory.keep_freed()
    try:
        app(args=with_optional_values(sys.argv[1:]))
    except XinyongError as err:
        err_console.print(f"[red]error:[/red] {err.format()}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
