"""Resume (issue 19 item 2): a run killed with kill -9 and resumed from its last checkpoint
writes the tables an uninterrupted run writes; checkpoints change no table."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from pathlib import Path
from unittest.mock import ANY

import pytest

import xinyong
from tests.test_golden import digest
from tests.test_reliability import cli, main, one_line, refused
from xinyong.atomic import run_tables
from xinyong.checkpoint import CHECKPOINT, Checkpoints
from xinyong.engine import Simulation
from xinyong.scenario import load_scenario
from xinyong.store import RunDir


def digests(path: Path) -> dict[str, str]:
    """Each table's digest, whatever its parts (their boundaries differ with checkpoints)."""
    run = xinyong.Run.open(path)
    held = [name for name in run_tables() if RunDir(path).has(name)]
    return {name: digest(run.table(name).combine_chunks()) for name in held}


def killed(out: Path, *args: str, sig: int = signal.SIGKILL) -> Path:
    """`xinyong run ... --out out` killed with `sig` once it has written its second
    checkpoint's parts; its staging folder."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "xinyong.cli", "run", *args, "--quiet", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    pattern = f".{out.name}.partial-*/records/*part-00001.parquet"
    try:
        while proc.poll() is None and not list(out.parent.glob(pattern)):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.01)
    finally:
        proc.send_signal(sig)
        _, err = proc.communicate()
    if sig == signal.SIGINT:  # Ctrl-C: the staging folder is kept, and the way on is said
        assert proc.returncode == 130, err
        assert f"xinyong run --resume {out}" in " ".join(err.split())
    else:
        assert proc.returncode == -sig, "the run finished before it was killed"
    assert not out.exists()
    (stage,) = out.parent.glob(f".{out.name}.partial-*")
    assert (stage / CHECKPOINT).is_file()
    return stage


@pytest.mark.parametrize(
    ("name", "adults", "days", "sig"),
    [
        pytest.param("s1", 3000, 800, signal.SIGKILL, marks=pytest.mark.slow),
        ("c1", 3000, 400, signal.SIGKILL),
        pytest.param("three-cities", 6000, 300, signal.SIGKILL, marks=pytest.mark.slow),
        # The city packs' own state: Suqian's points waiting for the recalculation, Weihai's
        # hours, Fuzhou's last negative records (the bonus of day 365).
        pytest.param("cities", 3000, 400, signal.SIGKILL, marks=pytest.mark.slow),
        ("s1", 3000, 400, signal.SIGINT),
    ],
    ids=["s1-kill-9", "c1-kill-9", "three-cities-kill-9", "cities-kill-9", "s1-ctrl-c"],
)
def test_a_killed_run_resumes_to_the_same_tables(
    tmp_path: Path, name: str, adults: int, days: int, sig: int
) -> None:
    size = ("--adults", str(adults), "--days", str(days), "--seed", "5")
    out = tmp_path / "run"
    killed(out, name, *size, "--checkpoint-days", "10", sig=sig)
    # Another scenario than the run's is refused, and leaves the run resumable.
    res = cli("run", name, "--adults", str(adults + 1), "--resume", out, "--quiet")
    refused(res, "is not the scenario given")
    res = cli("run", "--resume", out, "--quiet")
    assert res.returncode == 0, res.stderr
    assert not list(tmp_path.glob(".run.partial-*"))
    assert not (out / CHECKPOINT).exists()
    ref = tmp_path / "ref"
    sc = load_scenario(name, adults=adults, days=days, seed=5)
    xinyong.run(sc, ref, checkpoint_days=0)
    assert digests(out) == digests(ref)
    assert (out / "summary.json").read_bytes() == (ref / "summary.json").read_bytes()


def test_checkpoints_change_no_table(tmp_path: Path) -> None:
    sc = load_scenario("s1", adults=2000, days=40, seed=3)
    with_checkpoints = xinyong.run(sc, tmp_path / "a", checkpoint_days=7)
    without = xinyong.run(sc, tmp_path / "b", checkpoint_days=0)
    assert len(list((tmp_path / "a" / "records").iterdir())) == 6  # one part a checkpoint
    assert not (tmp_path / "a" / CHECKPOINT).exists()
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    assert with_checkpoints.summary == {**without.summary, "wall_seconds": ANY}


def test_nothing_to_resume_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = main(capsys, "run", "--resume", tmp_path / "none")
    one_line(code, err, "nothing to resume")
    finished = tmp_path / "done"
    xinyong.run(load_scenario("s1", adults=300, days=5), finished)
    code, _, err = main(capsys, "run", "--resume", finished)
    one_line(code, err, "nothing to resume")
    code, _, err = main(capsys, "run", "--resume", finished, "--replicates", "2")
    one_line(code, err, "cannot be resumed")


def test_default_checkpoints_are_rare_and_cheap(tmp_path: Path) -> None:
    """Without --checkpoint-days: every 30 days, once a minute has passed and 50 times the
    last checkpoint's cost (guessed from the state's bytes before the first); never on the
    last day."""
    sc = load_scenario("s1", adults=2000, days=100)
    sim = Simulation(sc, None)
    cks = Checkpoints(tmp_path, None, sc.days, {})
    try:
        assert not cks.due(29, [sim])  # 30 days, but not a minute
        cks.last_time -= 61
        assert cks.due(29, [sim]) and not cks.due(28, [sim]) and not cks.due(99, [sim])
        cks.cost = 2.0  # a checkpoint of 2 s: one at most every 100 s
        assert not cks.due(29, [sim])
        cks.last_time -= 40
        assert cks.due(29, [sim])
    finally:
        cks.close()
