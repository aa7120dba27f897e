"""Runs on Ray (a local Ray with 2 CPUs): the same tables on 1, 2 and 3 actors as in one
process, failures, replicates as tasks, and the core budget inside a worker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import xinyong
from tests.shards import many_cities, run_in_shards, three_cities
from tests.test_shard import digests
from xinyong.errors import XinyongError

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    from xinyong import cluster

    cluster.connect(cpus=2)
    yield ray
    ray.shutdown()


@pytest.mark.parametrize(
    "make",
    [three_cities, pytest.param(many_cities, marks=pytest.mark.slow)],
    ids=["three-cities", "300-cities"],
)
def test_same_tables_in_process_and_on_one_two_three_actors(
    local_ray, tmp_path: Path, make
) -> None:
    sc = make()
    expected = digests(run_in_shards(sc, tmp_path / "in-process", 1))
    for actors in (1, 2, 3):
        out = tmp_path / f"ray-{actors}"
        run = xinyong.run(sc, out, ray="local", actors=actors)
        assert digests(out) == expected, actors
        shards = json.loads((out / "shards.json").read_text())
        assert len(shards) == actors
        assert sorted(k for s in shards for k in s["cities"]) == list(range(len(sc.cities)))
        assert sum(s["records"] for s in shards) == run.summary["records"]
        assert all(s["peak_rss_bytes"] > 0 for s in shards)


def test_a_failed_actor_fails_the_run_without_a_summary(local_ray, tmp_path: Path) -> None:
    from xinyong.cluster import run_on_ray

    out = tmp_path / "run"
    out.mkdir()
    with pytest.raises(XinyongError) as err:
        run_on_ray(three_cities(days=6), out, actors=2, fail_on_day=(1, 3))
    message = err.value.format()
    assert "\n" not in message
    assert "shard 1" in message and "day 3" in message and "failing on day 3" in message
    assert not (out / "summary.json").exists()


def test_replicates_as_ray_tasks(local_ray, tmp_path: Path) -> None:
    sc = xinyong.load_scenario("s1", adults=1000, days=10, seed=5)
    run = xinyong.run_replicates(sc, tmp_path / "reps", 2, ray="local", cores=1)
    single = xinyong.run(sc.with_(seed=6)).summary
    rep = json.loads((tmp_path / "reps/replicates/seed-6/summary.json").read_text())
    assert rep["records"] == single["records"]
    assert run.summary["replicates"] == 2


def test_a_sweep_on_ray_gives_the_runs_of_a_sweep_in_processes(local_ray, tmp_path: Path) -> None:
    from xinyong.sweep import sweep

    sc = xinyong.load_scenario("s1", adults=600, days=8, seed=3)
    grid = {"channels.camera.misattribute": [0.0, 0.3]}
    on_ray = sweep(sc, grid, tmp_path / "ray", replicates=2, ray="local")
    here = sweep(sc, grid, tmp_path / "here", replicates=2, workers=1)
    assert on_ray["points"] == here["points"]


def test_a_worker_uses_only_its_cores(local_ray) -> None:
    @ray.remote(num_cpus=1)
    def inside() -> tuple[int, int, str, bool]:
        import numba

        from xinyong import threads

        threads.set_core_budget(1)
        return (
            threads.usable_cores(),
            numba.get_num_threads(),
            type(threads.background()).__name__,
            threads.Halves().split(10**9),
        )

    assert ray.get(inside.remote()) == (1, 1, "Inline", False)


def test_cli_ray_without_an_address(local_ray, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from xinyong.cli import app, with_optional_values

    out = tmp_path / "cli"
    args = ["run", "three-cities", "--adults", "900", "--days", "4", "--out", str(out)]
    assert with_optional_values(["run", "--ray"]) == ["run", "--ray", "local"]
    assert with_optional_values(["--ray", "head-node:6379"]) == ["--ray", "head-node:6379"]
    argv = with_optional_values([*args, "--ray", "--actors", "2", "--quiet"])
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert len(json.loads((out / "shards.json").read_text())) == 2
    assert (out / "summary.json").exists()


def test_xinyong_works_without_ray() -> None:
    """Ray is optional: without it xinyong imports and runs, and --ray says what is missing."""
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "import xinyong, xinyong.cli, xinyong.cluster\n"
        "sc = xinyong.load_scenario('three-cities', adults=300, days=2)\n"
        "assert xinyong.run(sc).summary['adults'] == 300\n"
        "try:\n"
        "    xinyong.run(sc, ray='local')\n"
        "except xinyong.errors.XinyongError as e:\n"
        "    print(e.format())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "pip install 'xinyong[ray]'" in done.stdout
