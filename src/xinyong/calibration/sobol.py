"""`xinyong sensitivity`: Sobol indices of run metrics over scenario parameters.

SALib draws a Saltelli design (a scrambled Sobol' sequence, N x (D + 2) points for D
parameters, first and total order only); every point is run with the same seeds (common
random numbers) and its metrics averaged over them; SALib's estimators (Saltelli 2010 for
first order, Jansen for total order) give the indices with 95% bootstrap intervals over the
sample. Those intervals cover the estimator's sampling error for this N with the seeds held
fixed; run-to-run noise left in the averaged outputs counts as variance no parameter
explains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xinyong.api import writing
from xinyong.atomic import check_target, locked, marker, staged, write_marker, write_text
from xinyong.calibration.measure import (
    Param,
    ParamsLike,
    as_params,
    base_scenario,
    check_params,
    measure_points,
    unproduced,
)
from xinyong.calibration.targets import unknown_metric
from xinyong.errors import XinyongError
from xinyong.scenario import Scenario
from xinyong.store import write_json

CONFIDENCE = 0.95


def salib() -> tuple[Any, Any]:
    """SALib's Sobol' sampler and analyser, or a one-line error saying how to install it."""
    try:
        from SALib.analyze import sobol as analyze
        from SALib.sample import sobol as sample
    except ImportError:
        raise XinyongError(
            "sensitivity needs SALib: pip install 'xinyong[calibrate]'", field="sensitivity"
        ) from None
    return sample, analyze


def design_size(n: int, params: int) -> int:
    """Points a Saltelli design of base sample `n` holds (first and total order)."""
    return n * (params + 2)


def sobol_indices(
    params: Sequence[Param],
    evaluate: Callable[[np.ndarray], dict[str, np.ndarray]],
    *,
    n: int,
    seed: int,
    resamples: int = 1000,
) -> dict[str, Any]:
    """First (S1) and total (ST) order indices of each output of `evaluate` (which maps the
    design's rows of parameter values to one array per output), each with the half-width
    of its 95% bootstrap interval (S1_conf, ST_conf)."""
    if n < 2 or n & (n - 1):
        raise XinyongError(f"the base sample must be a power of 2 (got {n})", field="--n")
    sample, analyze = salib()
    problem = {
        "num_vars": len(params),
        "names": [p.key for p in params],
        "bounds": [[p.low, p.high] for p in params],
    }
    X = sample.sample(problem, n, calc_second_order=False, scramble=True, seed=seed)
    outputs = evaluate(X)
    indices: dict[str, dict[str, dict[str, float]]] = {}
    for name, Y in outputs.items():
        Y = np.asarray(Y, dtype=float)
        if not np.isfinite(Y).all():
            raise XinyongError(
                f"metric '{name}' has no value at {int((~np.isfinite(Y)).sum())} of "
                f"{len(Y)} points (a share of nothing?); choose another metric or ranges"
            )
        got = analyze.analyze(
            problem,
            Y,
            calc_second_order=False,
            num_resamples=resamples,
            conf_level=CONFIDENCE,
            seed=seed,
        )
        indices[name] = {
            p.key: {k: float(got[k][j]) for k in ("S1", "S1_conf", "ST", "ST_conf")}
            for j, p in enumerate(params)
        }
    return {"points": len(X), "n": n, "resamples": resamples, "indices": indices}


def sensitivity(
    scenario: str | Path | Scenario,
    params: ParamsLike,
    metrics: Sequence[str],
    out: str | Path,
    *,
    n: int = 32,
    replicates: int = 1,
    seed: int | None = None,
    adults: int | None = None,
    days: int | None = None,
    resamples: int = 1000,
    overwrite: bool = False,
    workers: int | None = None,
    ray: str | None = None,
    cores: int = 1,
    on_done: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Sobol indices of `metrics` over `params` of `scenario`; writes sensitivity.json,
    sensitivity.csv and sensitivity.html into `out` (whole, as a run is)."""
    from xinyong.audit.figures import csv_text
    from xinyong.calibration.pages import render_sensitivity

    if not metrics:
        raise XinyongError("name at least one --metric", field="--metric")
    for m in metrics:
        reason = unknown_metric(m)
        if reason:
            raise XinyongError(reason, field="--metric")
    if replicates < 1:
        raise XinyongError("replicates must be at least 1", field="--replicates")
    sc, _ = base_scenario(scenario, adults, days, seed)
    params = as_params(params)
    check_params(sc, params)
    for m in metrics:
        reason = unproduced(m, sc)
        if reason:
            raise XinyongError(reason, field="--metric")
    seeds = [sc.seed + i for i in range(replicates)]
    path = Path(out)
    with writing(path):
        check_target(path, overwrite)
        with locked(path), staged(path, overwrite) as stage:

            def evaluate(X: np.ndarray) -> dict[str, np.ndarray]:
                points = [
                    sc.with_(**{p.key: p.value(x) for p, x in zip(params, row, strict=True)})
                    for row in X
                ]
                per_point = measure_points(
                    points, seeds, stage / ".runs", metrics,
                    workers=workers, ray=ray, cores=cores, on_done=on_done,
                )  # fmt: skip
                for m in metrics:
                    if not any(m in s for point in per_point for s in point):
                        raise XinyongError(
                            f"scenario '{sc.name}' does not produce metric '{m}'", field="--metric"
                        )
                return {
                    m: np.array([_mean([s.get(m) for s in point]) for point in per_point])
                    for m in metrics
                }

            result = sobol_indices(params, evaluate, n=n, seed=sc.seed, resamples=resamples)
            doc = {
                "scenario": sc.name,
                "params": [p.to_dict() for p in params],
                "metrics": list(metrics),
                "adults": sc.adults,
                "days": sc.days,
                "seeds": seeds,
                "confidence": CONFIDENCE,
                "interval": "bootstrap over the Saltelli sample, seeds held fixed",
                **result,
            }
            write_text(stage / "scenario.yaml", sc.to_yaml())
            write_json(stage / "sensitivity.json", doc)
            rows = [
                {"metric": m, "parameter": k, **v}
                for m, by_key in doc["indices"].items()
                for k, v in by_key.items()
            ]
            write_text(stage / "sensitivity.csv", csv_text(rows))
            render_sensitivity(doc, stage / "sensitivity.html")
            write_marker(stage, marker(True, sensitivity=list(metrics)))
    return doc


def _mean(values: list[float | None]) -> float:
    xs = [v for v in values if v is not None]
    return float(np.mean(xs)) if xs else float("nan")
