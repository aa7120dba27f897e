"""Comparisons, sweeps and the Python findings API: intervals of the right kind, paired by
seed, files where users look for them; and (slow) the false-alarm rate of a null reform."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

import xinyong
from tests.conftest import quiet_scenario
from tests.test_audit import EVENTS, TINY, tiny_run
from tests.test_cli import cli
from xinyong.audit import stats
from xinyong.audit.compare import compare, difference
from xinyong.audit.figures import TITLE_CHARS, wrap


def test_difference_by_hand() -> None:
    # Paired: per-seed differences 1, 2, 3: mean 2, sd 1, t(2) = 4.303.
    d = difference([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [5, 6, 7], [5, 6, 7])
    assert (d["kind"], d["seeds"], d["difference"]) == ("paired-seeds", [5, 6, 7], 2.0)
    assert d["high"] - 2.0 == pytest.approx(4.303 / math.sqrt(3))
    assert d["low"] < 0 < d["high"] and not d["significant"]
    # Different seeds: Welch. Both variances of the mean 1/3, df = 4, t(4) = 2.776.
    d = difference([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [1, 2, 3], [11, 12, 13])
    assert (d["kind"], d["difference"]) == ("across-seeds", 3.0)
    assert d["high"] - 3.0 == pytest.approx(2.776 * math.sqrt(2 / 3))
    assert d["significant"]
    # One run a side: within-run intervals combined, and never called significant.
    row = {"low": 0.0, "high": 2 * stats.Z95}  # se 1
    d = difference([10.0], [20.0], [1], [1], row, row)
    assert d["kind"] == "within-run" and d["excludes_zero"] and not d["significant"]
    assert d["high"] - 10.0 == pytest.approx(stats.Z95 * math.sqrt(2))


def test_p_values_and_the_benjamini_hochberg_correction_by_hand() -> None:
    # Student t quantiles: two-sided p of t(0.975, df) is 0.05.
    for t, df in ((12.7062, 1), (2.7764, 4), (2.2281, 10)):
        assert stats.t_p_value(t, df) == pytest.approx(0.05, abs=1e-4)
    assert stats.t_p_value(0.0, 3) == 1.0
    # Paired differences 1, 2, 3: t = 2 / (1 / sqrt 3) = 3.46 on 2 df, p = 0.074.
    d = difference([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [5, 6, 7], [5, 6, 7])
    assert d["p_value"] == pytest.approx(0.0742, abs=1e-3)
    # p sorted 0.01, 0.03, 0.04, 0.2 of m = 4: p m / rank = 0.04, 0.06, 0.053, 0.2, then the
    # running minimum from the top: 0.04, 0.053, 0.053, 0.2.
    q = stats.benjamini_hochberg([0.01, 0.04, 0.03, 0.2])
    assert q == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.2])


def test_compare_corrects_for_the_number_of_metrics() -> None:
    """Three metrics over four paired seeds: one clear difference, one at p = 0.04 (called
    significant alone, not after the correction for three: q = 0.04 x 3 / 2), one null."""
    from xinyong.audit.compare import compare_sides

    seeds = [1, 2, 3, 4]
    a = {"clear": [0.0] * 4, "edge": [0.0] * 4, "null": [1.0, 2.0, 3.0, 4.0]}
    # Differences 1.25, 1.25, 1.25, 3.25: mean 1.75, sd 1, t = 3.5 on 3 df (t(0.98, 3) = 3.48).
    edge = [1.25, 1.25, 1.25, 3.25]
    b = {"clear": [10.0, 10.5, 9.5, 10.2], "edge": edge, "null": [1.0, 2.0, 3.0, 4.0]}

    def side(values: dict) -> dict:
        rows = {k: {"value": sum(v) / 4, "meaning": k} for k, v in values.items()}
        return {"path": "x", "scenario": "s", "seeds": seeds, "replicates": 4, "rows": rows,
                "values": values}  # fmt: skip

    doc = compare_sides(side(a), side(b), [])
    rows = {r["metric"]: r for r in doc["rows"]}
    assert rows["edge"]["p_value"] == pytest.approx(0.0394, abs=1e-3)
    assert rows["edge"]["significant_uncorrected"] and not rows["edge"]["significant"]
    assert rows["edge"]["q_value"] == pytest.approx(3 / 2 * rows["edge"]["p_value"])
    assert rows["clear"]["significant"] and not rows["null"]["significant"]
    assert rows["null"]["p_value"] == 1.0 and "Benjamini-Hochberg" in doc["correction"]


def test_across_seed_intervals_respect_bounds_at_small_counts() -> None:
    """A share of 0 and 2 in 400 over two seeds: the t interval would go below 0; 2 of 400 in
    each seed: it would shrink to a point. Both get at least the pooled counts' Wilson. A
    ratio of 0 against 3 people gets no interval and is never significant."""
    from xinyong.audit.metrics import disparity_row
    from xinyong.replicates import combine

    def doc(k: int, k1: int, k0: int) -> dict:
        r, lo, hi = stats.ratio_of_shares(k1, 500, k0, 500)
        row = {"value": k / 400, "low": None, "high": None, "count": k, "of": 400}
        return {
            "run": {"seed": 1, "adults": 400},
            "metrics": {"share": row},
            "disparity": [
                disparity_row("m", "minority", "majority", k1 / 500, k0 / 500, r, lo, hi,
                              numerator=k1, denominator=500, reference_numerator=k0,
                              reference_denominator=500)
            ],
        }  # fmt: skip

    combined = combine([doc(0, 0, 1), doc(2, 0, 2)])
    share = combined["metrics"]["share"]
    wilson = stats.wilson(2, 800)
    assert share["low"] == pytest.approx(0.0) and share["high"] >= wilson[2]
    assert (share["count_total"], share["of_total"]) == (2, 800)
    same = combine([doc(2, 0, 1), doc(2, 0, 2)])["metrics"]["share"]
    assert same["value"] == 0.005
    assert (same["low"], same["high"]) == pytest.approx(stats.wilson(4, 800)[1:])
    ratio = combined["disparity"][0]
    assert ratio["ratio_low"] is None and ratio["significant"] is False
    assert ratio["status"].startswith("too few")
    # One run's rows are screened (flag) but never called significant.
    assert doc(0, 30, 10)["disparity"][0]["significant"] is None


def test_across_seed_intervals_stop_at_zero_unless_the_metric_is_signed() -> None:
    """Days under a sanction of 0 and 200 in two seeds: mean 100, t interval 100 +- 12.706 x
    100 (t of 1 degree of freedom), cut at 0 below; a change of -0.1 and 0.1 keeps its
    negative bound."""
    from xinyong.audit.registry import NEGATIVE_EVENTS_CHANGE, UNDESERVED_SANCTION_PERSON_DAYS
    from xinyong.replicates import combine

    def doc(days: int, change: float) -> dict:
        metrics: dict = {}
        UNDESERVED_SANCTION_PERSON_DAYS.put(metrics, days)
        NEGATIVE_EVENTS_CHANGE.put(metrics, change)
        return {"run": {"seed": 1, "adults": 400}, "metrics": metrics, "disparity": []}

    got = combine([doc(0, -0.1), doc(200, 0.1)])["metrics"]
    days = got["undeserved_sanction_person_days"]
    assert days["value"] == 100 and days["low"] == 0.0
    assert days["high"] == pytest.approx(100 + 12.7062 * 100, rel=1e-4)
    change = got["negative_events_change"]
    assert change["low"] == pytest.approx(-12.7062 * 0.1, rel=1e-4)


def test_one_run_a_side_is_labelled_and_never_significant(tmp_path: Path) -> None:
    base = tiny_run(tmp_path / "a", days=10)
    reform = tmp_path / "b" / "run"
    sc = quiet_scenario(days=10, overrides={**TINY, "channels.camera.misattribute": 0.0})
    xinyong.run(sc, reform, script=EVENTS)
    doc = compare(base, reform)
    assert doc["interval"] == "within-run" and "run-to-run" in doc["warning"]
    assert doc["parameters"] == [{"key": "channels.camera.misattribute", "a": 1.0, "b": 0.0}]
    rows = {r["metric"]: r for r in doc["rows"]}
    assert rows["false_record_share.camera"]["difference"] == -1.0
    assert not any(r["significant"] for r in doc["rows"])
    assert rows["wrongly_listed_share.blacklist"]["kind"] == "within-run"
    # The command writes into B's folder and names both runs and the change.
    res = cli("compare", str(base), str(reform))
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.split())
    assert "channels.camera.misattribute: 1.0 -> 0.0" in text and "run-to-run" in text
    html = (reform / "compare.html").read_text("utf-8")
    assert "What differs between A and B" in html and "one run a side" in html.lower()
    table = pd.read_csv(reform / "compare.csv")
    assert "false_record_share.camera" in set(table["metric"])
    assert json.loads((reform / "compare.json").read_text())["interval"] == "within-run"


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    """S1 base and a reform without camera misattribution, 3 seeds each, paired."""
    tmp = tmp_path_factory.mktemp("paired")
    common = {"adults": 1500, "days": 60, "seed": 20}
    base, reform = tmp / "base", tmp / "reform"
    xinyong.run(xinyong.load_scenario("s1", **common), base)
    sc = xinyong.load_scenario("s1", **common, overrides={"channels.camera.misattribute": 0.0})
    xinyong.run(sc, reform)
    return base, reform, compare(base, reform, replicates=3, workers=2)


def test_compare_replicates_pairs_by_seed(paired) -> None:
    base, reform, doc = paired
    assert doc["a"]["seeds"] == doc["b"]["seeds"] == [20, 21, 22]
    assert doc["interval"] == "paired-seeds" and "warning" not in doc
    # The missing seeds were run into B's folder; seed 20 is each side's own run.
    runs = sorted(p.name for p in (reform / "paired" / "a").iterdir() if p.name[0] != ".")
    assert runs == ["seed-21", "seed-22"]  # beside them, hidden, their writers' lock files
    rows = {r["metric"]: r for r in doc["rows"]}
    row = rows["wrong_record_share"]

    def per_seed(side: Path, where: str) -> list[float]:
        dirs = [side] + [reform / "paired" / where / f"seed-{s}" for s in (21, 22)]
        return [json.loads((d / "summary.json").read_text())["wrong_record_share"] for d in dirs]

    diffs = [b - a for a, b in zip(per_seed(base, "a"), per_seed(reform, "b"), strict=True)]
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    assert row["difference"] == pytest.approx(mean)
    assert row["high"] - row["difference"] == pytest.approx(4.303 * sd / math.sqrt(3))
    # No camera misattribution: far fewer wrong records in every seed, significantly for the
    # metric alone; the correction for the many metrics compared decides the verdict.
    assert all(d < 0 for d in diffs) and row["significant_uncorrected"]
    assert row["p_value"] < 0.05 and row["q_value"] >= row["p_value"]
    assert row["significant"] == (row["q_value"] <= 0.05)
    assert rows["false_record_share.camera"]["b"] == 0.0


def test_a_reform_that_changes_nothing_differs_by_exactly_zero(paired) -> None:
    """Paired by seed, the same scenario draws the same world: every difference is 0."""
    base, _, _ = paired
    doc = compare(base, base, replicates=2, workers=2)
    assert doc["parameters"] == []
    assert all(r["difference"] in (0, None) for r in doc["rows"])
    assert not any(r["significant"] for r in doc["rows"])


def test_sweep_writes_one_curve_per_key_metric(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    res = cli(
        "sweep",
        "s1",
        "--set",
        "channels.camera.misattribute=0,0.3",
        "--replicates",
        "2",
        "--adults",
        "1000",
        "--days",
        "30",
        "--out",
        str(out),
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["keys"] == ["channels.camera.misattribute"] and doc["seeds"] == [1, 2]
    values = [p["values"]["channels.camera.misattribute"] for p in doc["points"]]
    assert values == [0, 0.3]
    share = [p["metrics"]["wrong_record_share"] for p in doc["points"]]
    assert share[0]["value"] < share[1]["value"]
    assert all(s["interval"] == "across-seeds" and s["low"] <= s["value"] for s in share)
    table = pd.read_csv(out / "sweep.csv")
    assert set(table["metric"]) == set(doc["metrics"])
    assert len(table) == 2 * len(doc["metrics"])
    html = (out / "sweep.html").read_text("utf-8")
    assert html.count("Plotly.newPlot(") == len(doc["metrics"])
    # Each chart titled by what its metric means, not by its id (which stays in the data).
    meaning = doc["meanings"]["wrong_record_share"]
    assert meaning.startswith("share of negative records")
    first = wrap(meaning[:1].upper() + meaning[1:].split(": ")[0], TITLE_CHARS)[0]
    assert f'"text":"{first}' in html and '"text":"wrong_record_share' not in html
    # Each grid point is a replicate run directory the audit reads.
    point = out / doc["points"][0]["folder"]
    assert (point / "replicates" / "seed-2" / "summary.json").exists()
    assert xinyong.audit(point, baseline=False).interval == "across-seeds"


def test_python_findings_api(tmp_path: Path) -> None:
    sc = quiet_scenario(days=10, overrides=TINY)
    run = xinyong.run(sc, tmp_path / "run", script=EVENTS)
    audit = xinyong.audit(run, baseline=False)
    assert isinstance(audit, xinyong.Audit) and audit.interval == "within-run"
    assert audit["ever_wrongly_listed_share.blacklist"] == 0.5
    frame = audit.metrics
    assert frame.loc["ever_wrongly_listed_share.blacklist", "count"] == 1
    assert isinstance(audit.disparity, pd.DataFrame)
    assert any("1 at some point" in line for line in audit.key_findings)
    # In memory: the same metrics.
    memory = xinyong.audit(xinyong.run(sc, script=EVENTS), baseline=False)
    assert memory.metrics["value"].equals(frame["value"])
    story = xinyong.explain(run, 1)
    assert story.verdict.startswith("Was wrongly on the blacklist for 5 days")
    assert list(story.mattered["behaviour"]) == ["jaywalking"]
    reform = xinyong.run(sc.with_(**{"channels.camera.misattribute": 0.0}), script=EVENTS)
    comparison = xinyong.compare(xinyong.run(sc, script=EVENTS), reform)
    assert comparison.interval == "within-run" and comparison.significant == []
    assert comparison.table.loc["false_record_share.camera", "difference"] == -1.0
    assert list(comparison.parameters["key"]) == ["channels.camera.misattribute"]
    assert run.table("records").to_pandas().shape[0] == 2  # pandas comes with the project


@pytest.mark.slow
def test_a_null_reform_is_not_called_significant_beyond_the_nominal_rate() -> None:
    """M = 40 null comparisons (the same scenario, K = 4 seeds a side, disjoint seeds) per
    metric and method (paired t over seed pairs, Welch). Under the null each interval
    excludes 0 with probability 5%; with 5 metrics x 2 methods, each count must stay at or
    below the Binomial(40, 0.05) quantile of 1 - 1e-3 / 10 (Bonferroni)."""
    names = [
        "mean_score",
        "list_share.blacklist",
        "wrongly_listed_share.blacklist",
        "neg_records_per_adult_year",
        "appeals_filed_per_1000",
    ]
    M, K = 40, 4
    summaries = [
        xinyong.run(xinyong.load_scenario("s1", adults=1500, days=120, seed=1000 + i)).summary
        for i in range(2 * M * K)
    ]

    def values(block: int, name: str) -> list[float]:
        return [s[name] for s in summaries[block * K : (block + 1) * K]]

    bound = 0
    while _binomial_tail(M, 0.05, bound + 1) > 1e-4:
        bound += 1
    calls = {}
    for name in names:
        for method in ("paired", "welch"):
            hits = 0
            for m in range(M):
                a, b = values(2 * m, name), values(2 * m + 1, name)
                seeds_b = list(range(K)) if method == "paired" else list(range(K, 2 * K))
                hits += difference(a, b, list(range(K)), seeds_b)["significant"]
            calls[(name, method)] = hits
    assert bound == 9  # P(X >= 10) <= 1e-4 < P(X >= 9) for X ~ Binomial(40, 0.05)
    assert max(calls.values()) <= bound, calls
    # And overall the rate is near 5% (400 correlated calls: a loose bound).
    assert sum(calls.values()) / (M * len(calls)) < 0.1, calls


def _binomial_tail(n: int, p: float, k: int) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))


def test_every_metric_is_documented(tmp_path: Path) -> None:
    """Each metric name of metrics.json and summary.json appears in docs/model.md (its
    first dotted part, as the docs write `name.{list}`)."""
    text = (Path(__file__).parents[1] / "docs" / "model.md").read_text("utf-8")
    doc = xinyong.audit(tiny_run(tmp_path), baseline=True).doc
    names = set(doc["metrics"]) | {
        k for k, v in doc["run"].items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    missing = sorted(n for n in names if f"`{n.split('.')[0]}" not in text)
    assert missing == []
    assert "MODEL.md" not in text and "shared/" not in text


def test_readme_python_example_runs() -> None:
    """The README's Python block, on a smaller population."""
    readme = (Path(__file__).parents[1] / "README.md").read_text("utf-8")
    block = readme.split("```python\n", 1)[1].split("```", 1)[0]
    code = block.replace("adults=50_000, days=365", "adults=1500, days=60")
    assert code != block
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    spells = scope["base"].sql(
        'SELECT list, count(*) AS spells, count("end") AS ended FROM spells GROUP BY list'
    )
    assert spells.num_rows > 0
    assert scope["comparison"].interval == "within-run"


@pytest.mark.slow
def test_a_script_without_a_main_guard_gets_one_clear_line(tmp_path: Path) -> None:
    """Parallel seeds from a plain script: spawned workers import the script again. Without
    `if __name__ == "__main__":` the worker stops quietly and the caller says what to add
    (no BrokenProcessPool, no lock conflict from the workers' own runs)."""
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text(
        "import xinyong\n"
        f"out = {str(tmp_path)!r}\n"
        "sc = xinyong.load_scenario('s1', adults=400, days=5)\n"
        "xinyong.run(sc, out=out + '/a')\n"
        "xinyong.run(sc.with_(seed=2), out=out + '/b')\n"
        "xinyong.compare(out + '/a', out + '/b', replicates=2)\n"
    )
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("xinyong.errors.XinyongError") and '__name__ == "__main__"' in last
    assert "BrokenProcessPool" not in res.stderr and "another xinyong" not in res.stderr
