"""Calibration and sensitivity: a fit whose optimum is known by construction, Sobol indices
of a function whose indices are known (Ishigami), and target files that are wrong."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.test_cli import assert_clean_error, cli, line_of, write
from tests.test_reliability import main, one_line
from xinyong.calibration import (
    Param,
    builtin_target_sets,
    calibrate,
    load_targets,
    parse_params,
    sensitivity,
    sobol_indices,
)
from xinyong.calibration.fit import _check_produced, optimise, score
from xinyong.calibration.measure import as_params
from xinyong.errors import XinyongError
from xinyong.replicates import run_replicates
from xinyong.scenario import load_scenario

SOURCE = '{document: "by construction", publisher: "the test", date: "2026"}'


def targets_file(tmp_path: Path, body: str, name: str = "t.yaml") -> Path:
    return write(tmp_path, name, f"name: test\ntargets:\n{body}")


# Sobol indices: the Ishigami function, x in [-pi, pi]^3 (Ishigami & Homma 1990; indices as
# in Saltelli et al. 2008, "Global Sensitivity Analysis: The Primer", p. 179).


def ishigami_indices(a: float = 7.0, b: float = 0.1) -> tuple[list[float], list[float]]:
    v1 = 0.5 * (1 + b * math.pi**4 / 5) ** 2
    v2 = a**2 / 8
    v13 = b**2 * math.pi**8 * (1 / 18 - 1 / 50)  # 8 b^2 pi^8 / 225
    total = v1 + v2 + v13
    first = [v1 / total, v2 / total, 0.0]
    whole = [(v1 + v13) / total, v2 / total, v13 / total]
    return first, whole


def test_sobol_indices_of_the_ishigami_function() -> None:
    params = [Param(f"x{i}", -math.pi, math.pi) for i in (1, 2, 3)]

    def evaluate(X: np.ndarray) -> dict[str, np.ndarray]:
        x1, x2, x3 = X.T
        return {"y": np.sin(x1) + 7 * np.sin(x2) ** 2 + 0.1 * x3**4 * np.sin(x1)}

    got = sobol_indices(params, evaluate, n=4096, seed=3, resamples=200)
    assert got["points"] == 4096 * 5
    first, whole = ishigami_indices()
    for p, s1, st in zip(params, first, whole, strict=True):
        row = got["indices"]["y"][p.key]
        # 95% bootstrap half-widths; 2 of them is about 4 standard errors.
        assert 0 < row["S1_conf"] < 0.05 and 0 < row["ST_conf"] < 0.05, row
        assert abs(row["S1"] - s1) <= 2 * row["S1_conf"] + 0.005, (p.key, row, s1)
        assert abs(row["ST"] - st) <= 2 * row["ST_conf"] + 0.005, (p.key, row, st)


def test_sobol_base_sample_must_be_a_power_of_two() -> None:
    with pytest.raises(XinyongError, match="power of 2"):
        sobol_indices([Param("x", 0, 1)], lambda X: {"y": X[:, 0]}, n=24, seed=1)


# The fit, on an analytic problem: two rating shares that are known functions of two
# parameters, with seed-to-seed noise of a known size.


def analytic(tmp_path: Path):
    path = targets_file(
        tmp_path,
        f"""  - metric: company.rating_share.A
    value: 0.08
    tolerance: 0.01
    source: {SOURCE}
  - metric: [company.rating_share.C, company.rating_share.D]
    value: 0.3
    sd: 0.01
    source: {SOURCE}
""",
    )
    tg = load_targets(path)
    seeds = [0, 1, 2, 3]
    noise = np.random.default_rng(5).normal(0, 0.002, size=(len(seeds), 3))

    def evaluate(points):
        out = []
        for p in points:
            per_seed = [
                {
                    # A share = x / 2; C + D = y^2: the optimum is x = 0.16, y = sqrt(0.3).
                    "company.rating_share.A": p["x"] / 2 + noise[i, 0],
                    "company.rating_share.C": p["y"] ** 2 / 2 + noise[i, 1],
                    "company.rating_share.D": p["y"] ** 2 / 2 + noise[i, 2],
                }
                for i in range(len(seeds))
            ]
            s = score(tg, per_seed)
            out.append((s["loss"], {"targets": s["targets"]}))
        return out

    return evaluate


PARAMS = [Param("x", 0.0, 1.0), Param("y", 0.0, 1.0)]


def losses(study) -> list[tuple[int, float, dict]]:
    return [(t.number, t.value, t.params) for t in study.trials]


def test_the_fit_recovers_a_known_optimum_the_same_way_every_time(tmp_path: Path) -> None:
    evaluate = analytic(tmp_path)
    db = tmp_path / "a.log"
    study = optimise(PARAMS, evaluate, db, trials=60, seed=7, batch=2)
    best = study.best_trial
    assert abs(best.params["x"] - 0.16) < 0.02, best.params
    assert abs(best.params["y"] - math.sqrt(0.3)) < 0.02, best.params
    assert all(row["met"] for row in best.user_attrs["targets"])
    # The same seed gives the same study; stopped after 20 trials and run again, too.
    again = optimise(PARAMS, evaluate, tmp_path / "b.log", trials=60, seed=7, batch=2)
    assert losses(again) == losses(study)
    resumed = tmp_path / "c.log"
    optimise(PARAMS, evaluate, resumed, trials=20, seed=7, batch=2)
    assert losses(optimise(PARAMS, evaluate, resumed, trials=60, seed=7, batch=2)) == losses(study)
    # Another seed searches differently.
    other = optimise(PARAMS, evaluate, tmp_path / "d.log", trials=6, seed=8)
    assert losses(other) != losses(study)[:6]


def test_a_stored_study_of_another_setup_is_refused(tmp_path: Path) -> None:
    evaluate = analytic(tmp_path)
    db = tmp_path / "a.log"
    optimise(PARAMS, evaluate, db, trials=2, seed=1, setup={"seeds": [1, 2]})
    with pytest.raises(XinyongError, match="another setup \\(seeds differ\\)"):
        optimise(PARAMS, evaluate, db, trials=4, seed=1, setup={"seeds": [1, 2, 3]})


def test_score_sums_metrics_and_weighs_by_scale(tmp_path: Path) -> None:
    tg = load_targets(
        targets_file(
            tmp_path,
            f"""  - metric: [company.rating_share.B, company.rating_share.M]
    value: 0.8
    tolerance: 0.05
    source: {SOURCE}
  - metric: mean_score
    value: 1000
    sd: 10
    weight: 2
    source: {SOURCE}
""",
        )
    )
    per_seed = [
        {"company.rating_share.B": 0.6, "company.rating_share.M": 0.1, "mean_score": 1010.0},
        {"company.rating_share.B": 0.7, "company.rating_share.M": 0.1, "mean_score": 1040.0},
    ]
    got = score(tg, per_seed)
    # B+M: 0.7 and 0.8, mean 0.75, (0.75-0.8)/0.05 = -1; mean_score 1025: 2 x (25/10)^2.
    assert got["loss"] == pytest.approx(1 + 12.5)
    first, second = got["targets"]
    assert first["per_seed"] == pytest.approx([0.7, 0.8])
    assert first["achieved"] == pytest.approx(0.75)
    # Student t, 1 degree of freedom: 12.706 x sd / sqrt(2), sd = 0.0707.
    assert first["high"] - first["achieved"] == pytest.approx(12.706 * 0.05, rel=1e-3)
    assert first["met"] is True and second["met"] is False  # 25 from 1000 is past 2 sd
    missing = score(tg, [{"company.rating_share.B": 0.7, "mean_score": 1.0}])
    assert missing["loss"] is None and missing["targets"][0]["achieved"] is None


# The whole command on a small population: `population.child_ratio` makes
# round(child_ratio x adults) children, so 90 children of 300 adults is reached at 0.3.


def test_calibrate_a_small_population_to_a_known_answer(tmp_path: Path) -> None:
    tg = targets_file(
        tmp_path,
        f"""  - metric: children
    value: 90
    tolerance: 5
    mapping: 0.3 children per adult
    source: {SOURCE}
""",
    )
    out = tmp_path / "fit"
    params = parse_params(["population.child_ratio=0.2..0.4"])
    kw = {"trials": 12, "replicates": 2, "adults": 300, "days": 5, "seed": 4, "batch": 4}
    doc = calibrate("r1", tg, params, out, **kw)
    fitted = doc["best"]["values"]["population.child_ratio"]
    assert abs(fitted - 0.3) <= 5.5 / 300, fitted  # within the tolerance, and rounding
    row = doc["best"]["targets"][0]
    assert row["met"] and row["per_seed"] == [round(fitted * 300)] * 2
    assert len(doc["history"]) == 12
    # The calibrated scenario extends r1, sets the value and says where it came from.
    text = (out / "calibrated.yaml").read_text()
    assert "extends: r1\n" in text
    sc = load_scenario(out / "calibrated.yaml")
    assert sc.name == "r1-calibrated"
    assert sc.population.child_ratio == pytest.approx(fitted, rel=1e-5)
    assert sc.calibration is not None and sc.calibration.targets == "test"
    assert sc.calibration.seeds == (4, 5) and sc.calibration.trials == 12
    assert load_scenario("r1").population.child_ratio == 0.25  # r1 itself is unchanged
    assert (out / "calibration.html").stat().st_size > 100_000  # plotly embedded
    csv = (out / "calibration.csv").read_text().splitlines()
    assert csv[0].startswith("target,value,tolerance,sd,achieved,low,high,met")
    assert len((out / "trials.csv").read_text().splitlines()) == 13
    # Run again with the same arguments: the study is complete, nothing runs, same answer.
    assert calibrate("r1", tg, params, out, **kw)["best"] == doc["best"]
    # With another seed list the stored study is refused.
    with pytest.raises(XinyongError, match="another setup"):
        calibrate("r1", tg, params, out, **{**kw, "replicates": 3})


def test_a_target_the_scenario_does_not_produce(tmp_path: Path) -> None:
    text = f"""  - metric: children
    value: 1
    tolerance: 1
    source: {SOURCE}
  - metric: company.rating_share.A
    value: 0.08
    tolerance: 0.01
    source: {SOURCE}
  - metric: tier_share.Z
    value: 0.08
    tolerance: 0.01
    source: {SOURCE}
"""
    tg = targets_file(tmp_path, text)
    # Known before anything runs: r1 has no companies.
    res = cli(
        "calibrate", "r1", "--targets", str(tg), "--param", "population.child_ratio=0.1..0.5",
        "--out", str(tmp_path / "fit"),
    )  # fmt: skip
    line = line_of(text, "company.rating_share.A") + 2  # after the file's first two lines
    assert_clean_error(
        res, f"t.yaml:{line}:", "targets.1.metric", "no companies", "company.rating_share.A"
    )
    assert not (tmp_path / "fit").exists()
    # Known once the first runs are in: no run has a tier Z.
    seen = {"children": 3.0, "tier_share.A": 0.1, "company.rating_share.A": None}
    per_point = [[seen], [{"children": 2.0}]]
    with pytest.raises(XinyongError) as err:
        _check_produced(load_targets(tg), load_scenario("r1"), per_point)
    assert err.value.line == line_of(text, "tier_share.Z") + 2
    assert "does not produce metric 'tier_share.Z'" in err.value.format()


# Target files: every problem is one line naming the file, the line and the field.

BAD = [
    ("  - metric: mean_score\n    tolerance: 1\n    source: S\n", "targets.0.value", 3),
    ("  - metric: mean_score\n    value: 1\n    source: S\n", "a tolerance", 3),
    ("  - metric: mean_score\n    value: 1\n    tolerance: 1\n    sd: 1\n    source: S\n",
     "not both", 3),
    ("  - metric: mean_score\n    value: abc\n    tolerance: 1\n    source: S\n",
     "targets.0.value", 4),
    ("  - metric: mean_score\n    value: 1\n    tolerance: -1\n    source: S\n",
     "targets.0.tolerance", 5),
    ("  - metric: mean_scor\n    value: 1\n    tolerance: 1\n    source: S\n",
     "unknown metric 'mean_scor'", 3),
    ("  - metric: [children, flow.listed_per_adult_year]\n    value: 1\n    tolerance: 1\n"
     "    source: S\n", "targets.0.metric.1", 3),
    ("  - metric: mean_score\n    value: 1\n    tolerance: 1\n    source: {document: d}\n",
     "targets.0.source.publisher", 6),
    ("  - metric: mean_score\n    value: 1\n    value: 2\n", "key repeats", 5),
    ("  - metric: mean_score\n    value: 1\n    tolerance: 1\n    colour: red\n    source: S\n",
     "targets.0.colour", 6),
    ("  []\n", "at least one target", 2),
]  # fmt: skip


@pytest.mark.parametrize(("body", "says", "line"), BAD)
def test_bad_target_files(tmp_path: Path, body: str, says: str, line: int) -> None:
    source = "{document: d, publisher: p, date: '2020'}"
    path = targets_file(tmp_path, body.replace("source: S", f"source: {source}"))
    with pytest.raises(XinyongError) as err:
        load_targets(path)
    assert says in err.value.format()
    assert err.value.file == str(path) and err.value.line == line, err.value.format()


def test_bad_target_files_from_the_command_line(tmp_path: Path, capsys) -> None:
    path = targets_file(tmp_path, "  - metric: mean_score\n    value: [1]\n    tolerance: 1\n")
    code, _, err = main(capsys, "calibrate", "r1", "--targets", path, "--param", "days=1..2")
    one_line(code, err, f"{path}:4:", "targets.0.value")
    code, _, err = main(capsys, "calibrate", "r1", "--targets", "tax-2099", "--param", "days=1..2")
    one_line(code, err, "unknown target set 'tax-2099'", "tax-rating-2021")
    missing = tmp_path / "none.yaml"
    code, _, err = main(capsys, "calibrate", "r1", "--targets", missing, "--param", "days=1..2")
    one_line(code, err, "none.yaml: file not found")


@pytest.mark.parametrize(
    ("items", "says"),
    [
        (["days=5"], "KEY=LOW..HIGH"),
        (["days=9..2"], "LOW must be below HIGH"),
        (["days=a..b"], "finite numbers"),
        (["days=1..nan"], "finite numbers"),
        (["days=1..2", "days=3..4"], "given twice"),
        ([], "at least one"),
    ],
)
def test_bad_parameter_ranges(items: list[str], says: str) -> None:
    with pytest.raises(XinyongError, match=says):
        parse_params(items)


def test_parameter_ranges() -> None:
    whole, real, tiny = parse_params(
        [
            "days=30..90",
            "channels.camera.detect=1/10..0.5",
            "observation.false_report_rate=1e-06..2e-4",
        ]
    )
    assert tiny == Param("observation.false_report_rate", 1e-6, 2e-4)  # 1e-06: text to YAML 1.1
    assert whole == Param("days", 30, 90, integer=True) and whole.value(44.6) == 45
    assert real == Param("channels.camera.detect", 0.1, 0.5) and real.value(0.25) == 0.25
    # The Python API takes the same ranges as a mapping or Params (checked alike).
    assert as_params({"days": (30, 90)}) == [whole]
    assert as_params([Param("x", 0, 1)]) == [Param("x", 0.0, 1.0, integer=False)]
    with pytest.raises(XinyongError, match="below HIGH"):
        as_params({"x": (1.0, 0.5)})


def test_a_parameter_or_metric_the_scenario_refuses(capsys) -> None:
    code, _, err = main(capsys, "calibrate", "r1", "--targets", "tax-rating-2021", "--param",
                        "nope.x=0..1")  # fmt: skip
    one_line(code, err, "--param", "nope.x")
    code, _, err = main(capsys, "sensitivity", "r1", "--param", "channels.camera.detect=0..1",
                        "--metric", "x.y")  # fmt: skip
    one_line(code, err, "unknown metric 'x.y'")
    code, _, err = main(capsys, "sensitivity", "r1", "--param", "channels.camera.detect=0..1",
                        "--metric", "company.list_share.tax_a_list")  # fmt: skip
    one_line(code, err, "has no companies")


def test_builtin_target_sets_load() -> None:
    names = builtin_target_sets()
    assert {"tax-rating-2019", "tax-rating-2020", "tax-rating-2021"} <= set(names)
    assert {"court-defaulters-2024", "abnormal-operations"} <= set(names)
    for name in names:
        tg = load_targets(name)
        for t in tg:
            assert t.source.publisher and t.source.date and t.mapping
    rated = load_targets("tax-rating-2021")
    assert sum(t.value for t in rated) == pytest.approx(1.0)  # A, B+M and C+D: all rated
    flows = load_targets("court-defaulters-2024")
    assert flows.set.targets[0].value == pytest.approx(2.457e6 / 1.15e9, rel=1e-3)
    assert flows.set.targets[1].value == pytest.approx(2.821e6 / 1.15e9, rel=1e-3)


@pytest.mark.slow
def test_sensitivity_of_a_metric_known_by_construction(tmp_path: Path) -> None:
    """The number of children is round(child_ratio x adults) and nothing else: the camera's
    detection rate has no effect at all (total index 0), the child ratio all of it."""
    doc = sensitivity(
        "r1",
        {"population.child_ratio": (0.1, 0.5), "channels.camera.detect": (0.1, 0.9)},
        ["children"],
        tmp_path / "sens",
        n=16,
        adults=200,
        days=5,
        resamples=200,
    )
    got = doc["indices"]["children"]
    assert doc["points"] == 16 * 4
    assert got["channels.camera.detect"]["ST"] == 0 and got["channels.camera.detect"]["S1"] == 0
    ratio = got["population.child_ratio"]
    # 1 within twice the 95% half-widths (about 4 standard errors; they are wide at N = 16).
    for order in ("S1", "ST"):
        assert abs(ratio[order] - 1) <= 2 * ratio[f"{order}_conf"], ratio
        assert ratio[f"{order}_conf"] < 1, ratio
    assert (tmp_path / "sens" / "sensitivity.html").stat().st_size > 100_000
    rows = (tmp_path / "sens" / "sensitivity.csv").read_text().splitlines()
    assert rows[0] == "metric,parameter,S1,S1_conf,ST,ST_conf" and len(rows) == 3


@pytest.mark.slow
def test_c1_2021_matches_the_2021_rating(tmp_path: Path) -> None:
    """The built-in calibrated scenario reproduces the 2021 tax rating shares within a
    percentage point, as a mean over 4 seeds at 10,000 adults x 730 days."""
    sc = load_scenario("c1-2021", adults=10_000, days=730, seed=1)
    assert sc.calibration is not None and sc.calibration.targets == "tax-rating-2021"
    assert load_scenario("c1").calibration is None  # the reference scenario is as it was
    run = run_replicates(sc, tmp_path / "c1-2021", 4)
    s = run.summary
    shares = {
        "A": s["company.rating_share.A"],
        "B+M": s["company.rating_share.B"] + s["company.rating_share.M"],
        "C+D": s["company.rating_share.C"] + s["company.rating_share.D"],
    }
    for name, published in {"A": 0.0828, "B+M": 0.8258, "C+D": 0.0914}.items():
        assert abs(shares[name] - published) <= 0.01, (name, shares)
