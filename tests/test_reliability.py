"""Reliability through the command line: nothing lost, bad input refused in one line (exit 2,
no traceback), damaged runs explained, impossible sizes refused before any allocation."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import xinyong
from xinyong import cli as cli_module
from xinyong import sizing
from xinyong.atomic import MARKER, read_marker
from xinyong.errors import XinyongError
from xinyong.scheme.schema import PACKS_DIR

PACK = (PACKS_DIR / "rongcheng.yaml").read_text()
TINY = ("--adults", "300", "--days", "12", "--quiet")


def cli(*args: str | Path, cwd: Path | None = None, **kw: object) -> subprocess.CompletedProcess:
    """The real command, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "xinyong.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        **kw,  # type: ignore[arg-type]
    )


def main(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """The command in this process (as typer's CliRunner does): exit code, stdout, stderr.
    An exception that escapes is a traceback and fails the test."""
    capsys.readouterr()
    try:
        cli_module.main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def one_line(code: int, err: str, *parts: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


def refused(res: subprocess.CompletedProcess, *parts: str) -> str:
    return one_line(res.returncode, res.stderr, *parts)


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command that should have been refused must not write runs/ into the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small finished run, copied by the tests that damage it."""
    out = tmp_path_factory.mktemp("made") / "run"
    xinyong.run(xinyong.load_scenario("s1", adults=400, days=30, seed=2), out)
    return out


def copy_of(made: Path, tmp_path: Path, name: str = "run") -> Path:
    dst = tmp_path / name
    shutil.copytree(made, dst)
    return dst


# 1. Atomic runs -------------------------------------------------------------------------


def test_overwrite_never_deletes_a_folder_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "scenario.yaml").write_text("name: my own scenario\n")
    (mine / "notes.txt").write_text("precious")
    code, _, err = main(capsys, "run", "s1", *TINY, "--out", mine, "--overwrite")
    one_line(code, err, "not a run directory")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt", "scenario.yaml"]


def test_overwrite_keeps_what_is_not_the_runs(
    made: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_of(made, tmp_path)
    (run / "records" / "my-notes.txt").write_text("precious")
    code, _, err = main(capsys, "run", "s1", *TINY, "--out", run, "--overwrite")
    one_line(code, err, "my-notes.txt", "not part of a run")
    assert (run / "records" / "my-notes.txt").read_text() == "precious"


def test_overwrite_replaces_a_run_only_when_the_new_one_is_complete(
    made: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_of(made, tmp_path)
    before = (run / "summary.json").read_bytes()
    # A run refused before it starts (an impossible size) leaves the old run as it was.
    code, _, err = main(capsys, "run", "s1", "--adults", "2e9", "--out", run, "--overwrite")
    one_line(code, err, "GiB")
    assert (run / "summary.json").read_bytes() == before
    code, _, err = main(capsys, "run", "s1", *TINY, "--seed", "5", "--out", run, "--overwrite")
    assert code == 0, err
    assert json.loads((run / "summary.json").read_text())["seed"] == 5
    assert read_marker(run)["complete"] is True
    # Nothing is left beside it, the writers' lock included.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_second_writer_is_refused_at_once(
    made: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_of(made, tmp_path)
    new = tmp_path / "new"
    locks = [os.open(tmp_path / f".{p.name}.lock", os.O_RDWR | os.O_CREAT) for p in (run, new)]
    try:
        for fd in locks:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running writer holds it
        code, _, err = main(capsys, "run", "s1", *TINY, "--out", new)
        one_line(code, err, "another xinyong process")
        assert not new.exists()
        code, _, err = main(capsys, "audit", run, "--no-baseline")
        one_line(code, err, "another xinyong process")
        assert not (run / "metrics.json").exists()
    finally:
        for fd in locks:
            os.close(fd)
    code, _, err = main(capsys, "audit", run, "--no-baseline")
    assert code == 0, err


def test_a_killed_run_leaves_nothing_in_place(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ("run", "r1", "--adults", "200000", "--days", "2000", "--quiet", "--out", str(out))
    proc = subprocess.Popen(
        [sys.executable, "-m", "xinyong.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Killed once it is writing: its staging folder holds a table part.
        while proc.poll() is None and not list(tmp_path.glob(".run.partial-*/records/*")):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not out.exists()
    (stage,) = tmp_path.glob(".run.partial-*")
    res = cli("sql", stage, "SELECT count(*) FROM records")
    refused(res, "did not finish")
    # The next run into the same place clears what the killed one left.
    res = cli("run", "s1", *TINY, "--out", out)
    assert res.returncode == 0, res.stderr
    assert not list(tmp_path.glob(".run.partial-*"))


def test_disk_full_leaves_the_old_run(made: Path, tmp_path: Path) -> None:
    """A file-size limit (RLIMIT_FSIZE, as `ulimit -f`) stands for a full disk."""
    run = copy_of(made, tmp_path)
    before = (run / "summary.json").read_bytes()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, 256 << 10))

    res = cli(
        "run", "s1", "--adults", "60000", "--days", "40", "--quiet", "--out", run,
        "--overwrite", preexec_fn=limit,
    )  # fmt: skip
    refused(res, "cannot write the run", "nothing was replaced")
    assert (run / "summary.json").read_bytes() == before
    assert not list(tmp_path.glob(".run.partial-*"))


def test_replicate_sets_are_atomic_and_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "set"
    res = cli("run", "s1", *TINY, "--replicates", "2", "--out", out)
    assert res.returncode == 0, res.stderr
    assert read_marker(out)["seeds"] == [1, 2]  # s1's seed is 1
    code, _, err = main(capsys, "audit", out, "--no-baseline", "--no-report")
    assert code == 0, err
    shutil.rmtree(out / "replicates" / "seed-2")
    code, _, err = main(capsys, "audit", out, "--no-baseline")
    one_line(code, err, "seed-2", "missing")


# 3. Strict input ------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_repeated_keys_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "s.yaml", "extends: r1\nname: a\ndays: 10\nname: b\n")
    code, _, err = main(capsys, "validate", path)
    one_line(code, err, f"{path}:4", "name", "repeats")


def test_aliases_and_huge_files_are_bounded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "self.yaml", "extends: r1\nname: &a [*a]\n")
    one_line(*main(capsys, "validate", path)[::2], "refers to itself")
    laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)
    )
    path = write(tmp_path, "laughs.yaml", laughs)
    one_line(*main(capsys, "validate", path)[::2], "expands to more than")
    one_line(*main(capsys, "validate", "/dev/zero")[::2], "/dev/zero", "not a regular file")
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as f:
        f.truncate(9 << 20)  # sparse: nothing written
    one_line(*main(capsys, "validate", huge)[::2], "huge.yaml", "larger than 8 MiB")


@pytest.mark.parametrize(
    ("setting", "parts"),
    [
        ("days=true", ("days", "valid integer")),
        ("population.adults=12.0", ("population.adults", "valid integer")),
        ("channels.camera.detect=true", ("channels.camera.detect", "not true/false")),
        ("packs.rongcheng.lists.blacklist.permanent=1", ("permanent", "valid boolean")),
        ("consequences.association_list=nolist", ("association_list", "unknown list 'nolist'")),
        (
            "packs.rongcheng.lists.blacklist.consequences.0.effects.0.context=financ",
            ("effects.0.context", "unknown context 'financ'"),
        ),
        ("packs.rongcheng.rules.jaywalking.points=-3000000000", ("points", "-1000000000")),
        ("packs.rongcheng.start_score.value=3000000000", ("start_score.value", "1000000000")),
        ("packs.rongcheng.rules.jaywalking.yearly_cap=100000", ("yearly_cap", "32767")),
        ("population.child_ratio=1e9", ("child_ratio", "32-bit")),
        ("population.edges_per_adult=100000", ("edges_per_adult", "1000")),
        ("behaviours.jaywalking.context=a.b", ("context", "not a name")),
    ],
)
def test_values_are_checked_against_their_meaning_and_storage(
    setting: str, parts: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"  # never written: each setting is refused first
    code, _, err = main(capsys, "run", "r1", "--quiet", "--out", out, "--set", setting)
    one_line(code, err, *parts)


def test_set_block_errors_name_the_line_of_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "s.yaml", "extends: r1\nname: t\nset:\n  seed: 1\n  days: true\n")
    one_line(*main(capsys, "validate", path)[::2], f"{path}:5", "days")


def test_a_custom_pack_may_not_take_a_builtin_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = PACK.replace("title: ", "title: My own ", 1)
    pack = write(tmp_path, "mine.yaml", text)
    scenario = write(
        tmp_path,
        "town.yaml",
        "extends: r1\nname: town\ncities:\n  - {name: a, share: 0.5, pack: rongcheng}\n"
        f"  - {{name: b, share: 0.5, pack: {pack}}}\n",
    )
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("id:"))
    code, _, err = main(capsys, "validate", scenario)
    one_line(code, err, f"{pack}:{line}", "id 'rongcheng' is already taken by the built-in")


@pytest.mark.parametrize("text", ["[/x]", ":100:", "[red]"])
def test_messages_print_as_plain_text(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = main(capsys, "run", "r1", *TINY, "--set", f"channels.a{text}b.detect=0.1")
    one_line(code, err, f"a{text}b")
    missing = tmp_path / f"x{text}.yaml"
    code, _, err = main(capsys, "validate", missing)
    one_line(code, err, str(missing), "not found")


def test_usage_mistakes_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    one_line(*main(capsys, "run", "r1", "--bogus")[::2], "--bogus")
    one_line(*main(capsys, "run", "r1", "--days", "x")[::2], "--days")
    one_line(*main(capsys, "run", "r1", "--adults", "1.5")[::2], "--adults", "whole number")


# 4. Size ----------------------------------------------------------------------------------


def test_impossible_sizes_are_refused_before_allocation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    one_line(*main(capsys, "run", "r1", "--adults", "1e12", "--quiet")[::2], "2147483647")
    line = one_line(*main(capsys, "run", "r1", "--adults", "2e9", "--quiet")[::2], "GiB")
    assert "at most about" in line and "--force" in line


def test_size_check_gives_the_largest_size_that_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    sc = xinyong.load_scenario("r1", adults=10_000_000)
    monkeypatch.setattr(sizing, "available", lambda: 2 * sizing.GIB)
    with pytest.raises(XinyongError) as err:
        sizing.check_size(sc)
    fits = int(err.value.message.split("at most about ")[1].split()[0].replace(",", ""))
    assert sizing.estimate(sc.with_(**{"population.adults": fits})) <= 2 * sizing.GIB
    assert sizing.estimate(sc.with_(**{"population.adults": fits + 1000})) > 2 * sizing.GIB
    sizing.check_size(sc, force=True)  # --force: tried anyway
    with pytest.raises(XinyongError, match="4 runs"):
        sizing.check_size(sc.with_(**{"population.adults": fits // 2}), at_once=4)


# 5. Readers -------------------------------------------------------------------------------


def test_damaged_runs_are_explained(
    made: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = copy_of(made, tmp_path, "cut")
    part = sorted((cut / "records").glob("part-*.parquet"))[0]
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    deleted = copy_of(made, tmp_path, "deleted")
    (deleted / "edges.parquet").unlink()
    broken = copy_of(made, tmp_path, "broken")
    (broken / "summary.json").write_text('{"mean_score": 10')
    unfinished = copy_of(made, tmp_path, "unfinished")
    (unfinished / "summary.json").unlink()
    cases = [
        (cut, ("records", "damaged")),
        (deleted, ("edges", "missing")),
        (broken, ("summary.json", "damaged")),
        (unfinished, ("did not finish",)),
    ]
    for run, parts in cases:
        for args in (
            ("audit", run, "--no-baseline"),
            ("explain", run, "1"),
            ("sql", run, "SELECT count(*) FROM records"),
            ("compare", made, run, "--out", tmp_path / "c.html"),
        ):
            code, _, err = main(capsys, *args)
            line = one_line(code, err, *parts)
            assert "run it again" in line or "did not finish" in line, line
        with pytest.raises(XinyongError):
            xinyong.Run.open(run).table("edges")
    code, _, err = main(capsys, "sql", made, "")
    one_line(code, err, "empty")


def test_summary_and_audit_are_the_same_bit_for_bit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        sc = xinyong.load_scenario("s1", adults=3000, days=40, seed=3)
        xinyong.run(sc, run, rows_per_part=5000)  # many parts, read in parallel
        code, _, err = main(capsys, "audit", run, "--no-report")
        assert code == 0, err
    for name in ("summary.json", "metrics.json"):
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), name


# 6. Paths ---------------------------------------------------------------------------------


def test_paths_with_quotes_and_brackets_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "it's [a] run; DROP"
    code, _, err = main(capsys, "run", "s1", *TINY, "--out", out)
    assert code == 0, err
    code, text, err = main(capsys, "sql", out, "SELECT count(*) AS n FROM persons", "--json")
    assert code == 0, err
    assert json.loads(text)["n"] == 300
    code, _, err = main(capsys, "audit", out, "--no-baseline")
    assert code == 0, err


def test_default_out_stays_under_runs(tmp_path: Path) -> None:
    assert cli_module.default_out("../../etc/x", 3) == Path("runs/etc-x-s3")
    assert cli_module.default_out("..", 0) == Path("runs/run-s0")
    assert len(cli_module.default_out("a" * 500, 1).name) <= cli_module.NAME_MAX + 8
    scenario = write(tmp_path, "evil.yaml", "extends: s1\nname: ../../escaped\n")
    res = cli("run", scenario, *TINY, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "runs" / "escaped-s1" / MARKER).exists()
    assert not (tmp_path.parent / "escaped-s1").exists()


def test_out_that_cannot_be_a_run_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path, "file.txt", "x")
    one_line(*main(capsys, "run", "s1", *TINY, "--out", file)[::2], "not a folder")
    under = file / "run"
    one_line(*main(capsys, "run", "s1", *TINY, "--out", under)[::2], "which is a file")
    long = tmp_path / ("x" * 300)
    one_line(*main(capsys, "run", "s1", *TINY, "--out", long)[::2], "too long")
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            line = one_line(*main(capsys, "run", "s1", *TINY, "--out", ro / "x")[::2])
            assert "cannot write" in line
        finally:
            ro.chmod(0o700)
