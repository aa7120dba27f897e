"""`xinyong calibrate`: fit scenario parameters to published targets (docs/calibration.md).

Optuna's TPE sampler proposes parameter values in batches; each proposal is run with the same
K seeds (common random numbers) and scored by

    loss = sum over targets of weight x ((mean over seeds - published value) / scale)^2

where scale is the target's sd, else its tolerance. The study lives in OUT/study.log (Optuna's
journal file): a command stopped half-way goes on from its completed trials, and the sampler
of each batch is seeded with the seed plus the number of trials completed before it, so a
fixed seed gives the same study whether or not it was interrupted between batches.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from xinyong.atomic import locked, marker, read_marker, write_marker, write_text
from xinyong.audit import stats
from xinyong.audit.metrics import ACROSS_SEEDS
from xinyong.calibration.measure import (
    Param,
    ParamsLike,
    as_params,
    base_scenario,
    check_params,
    measure_points,
    unproduced,
)
from xinyong.calibration.targets import Target, Targets, load_targets
from xinyong.errors import XinyongError
from xinyong.replicates import spawned
from xinyong.scenario import Scenario
from xinyong.store import write_json

STUDY = "study.log"
RUNS = ".runs"  # each batch's runs, removed once measured
Evaluate = Callable[[list[dict[str, float | int]]], list[tuple[float | None, dict[str, Any]]]]


def optuna_module() -> Any:
    """Optuna, or a one-line error saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise XinyongError(
            "calibration needs Optuna: pip install 'xinyong[calibrate]'", field="calibrate"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def score(targets: Targets, per_seed: Sequence[dict[str, float | None]]) -> dict[str, Any]:
    """Each target's value per seed (the sum of its metrics), mean and 95% interval across
    seeds, and the loss; `loss` is None when a target has no value in any seed."""
    rows, loss = [], 0.0
    for t in targets:
        values = [_summed(t, seed) for seed in per_seed]
        mean, low, high = stats.mean_interval(values)
        rows.append(
            {
                "target": t.label,
                "value": t.value,
                "tolerance": t.tolerance,
                "sd": t.sd,
                "achieved": mean,
                "low": low,
                "high": high,
                "per_seed": values,
                "met": t.met(mean),
            }
        )
        if mean is None:
            loss = math.nan
        else:
            loss += t.weight * ((mean - t.value) / t.scale) ** 2
    return {"loss": None if math.isnan(loss) else loss, "targets": rows}


def _summed(t: Target, seed: dict[str, float | None]) -> float | None:
    parts = [seed.get(m) for m in t.metric]
    return None if any(p is None for p in parts) else float(sum(parts))  # type: ignore[arg-type]


def optimise(
    params: Sequence[Param],
    evaluate: Evaluate,
    journal: Path,
    *,
    trials: int,
    seed: int,
    batch: int = 1,
    setup: dict[str, Any] | None = None,
) -> Any:
    """Run the study in the file `journal` until `trials` trials are complete, `batch` at a
    time; `evaluate` maps a batch of parameter points to (loss, attributes) each (loss None: the
    trial failed). A stored study of another `setup` is refused. Returns the Optuna study."""
    optuna = optuna_module()
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    dist = optuna.distributions
    space = {
        p.key: dist.IntDistribution(int(p.low), int(p.high))
        if p.integer
        else dist.FloatDistribution(p.low, p.high)
        for p in params
    }
    study = optuna.create_study(
        study_name="xinyong", storage=storage, direction="minimize", load_if_exists=True
    )
    stored = study.user_attrs.get("setup")
    if stored is None:
        study.set_user_attr("setup", setup or {})
    elif stored != (setup or {}):
        changed = sorted(k for k in {*stored, *(setup or {})} if stored.get(k) != setup.get(k))
        raise XinyongError(
            f"holds a study of another setup ({', '.join(changed)} differ); pass --overwrite "
            "to start again or choose another --out",
            file=journal,
        )
    state = optuna.trial.TrialState
    for t in study.get_trials(deepcopy=False, states=(state.RUNNING, state.WAITING)):
        study.tell(t.number, state=state.FAIL)  # asked by a command that was stopped
    startup = 2 * len(params) + 2  # random proposals first: the same for any `trials`
    while True:
        done = len(study.get_trials(deepcopy=False, states=(state.COMPLETE, state.FAIL)))
        if done >= trials:
            return study
        sampler = optuna.samplers.TPESampler(
            seed=seed + done, multivariate=True, n_startup_trials=startup, constant_liar=True
        )
        study = optuna.load_study(study_name="xinyong", storage=storage, sampler=sampler)
        asked = [study.ask(space) for _ in range(min(batch, trials - done))]
        results = evaluate([dict(t.params) for t in asked])
        for trial, (loss, attrs) in zip(asked, results, strict=True):
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
            if loss is None:
                study.tell(trial, state=state.FAIL)
            else:
                study.tell(trial, loss)


def calibrate(
    scenario: str | Path | Scenario,
    targets: str | Path | Targets,
    params: ParamsLike,
    out: str | Path,
    *,
    trials: int = 40,
    replicates: int = 4,
    seed: int | None = None,
    adults: int | None = None,
    days: int | None = None,
    name: str | None = None,
    batch: int | None = None,
    overwrite: bool = False,
    workers: int | None = None,
    ray: str | None = None,
    cores: int = 1,
    on_done: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Fit `params` of `scenario` to `targets`; write into `out` the study (study.log, which a
    later call with the same arguments continues), calibrated.yaml (the scenario: `extends:`
    the original, `set:` the fitted values, `calibration:` their provenance),
    calibration.json, calibration.csv (target against achieved), trials.csv and
    calibration.html. Returns the calibration document."""
    if trials < 1 or replicates < 1:
        raise XinyongError("trials and replicates must be at least 1", field="--trials")
    tg = targets if isinstance(targets, Targets) else load_targets(targets)
    sc, extends = base_scenario(scenario, adults, days, seed)
    params = as_params(params)
    check_params(sc, params)
    for i, t in enumerate(tg):
        for m in t.metric:
            reason = unproduced(m, sc)
            if reason:
                raise tg.error(reason, i)
    path = Path(out)
    seeds = [sc.seed + i for i in range(replicates)]
    setup = {
        "scenario": sc.model_dump(mode="json"),
        "targets": tg.set.model_dump(mode="json"),
        "params": [p.to_dict() for p in params],
        "seeds": seeds,
    }
    batch = batch or max(1, (workers or os.cpu_count() or 1) // replicates)
    with locked(path):
        _prepare(path, overwrite)
        write_marker(path, marker(False, calibration=True))
        if extends is None:
            write_text(path / "base.yaml", sc.to_yaml())
        checked: list[bool] = []

        def evaluate(points: list[dict[str, float | int]]) -> list[tuple[float | None, dict]]:
            scenarios = [sc.with_(**_values(params, p)) for p in points]
            per_point = measure_points(
                scenarios,
                seeds,
                path / RUNS,
                tg.metric_names(),
                workers=workers,
                ray=ray,
                cores=cores,
                on_done=on_done,
                pool=pool,
            )
            if not checked:
                _check_produced(tg, sc, per_point)
                checked.append(True)
            scored = [score(tg, per_seed) for per_seed in per_point]
            return [(s["loss"], {"targets": s["targets"]}) for s in scored]

        # One pool for every batch: spawning processes costs more than a small run.
        at_once = workers or min(batch * replicates, os.cpu_count() or 1)
        with contextlib.nullcontext() if ray is not None else spawned(at_once) as pool:
            study = optimise(
                params,
                evaluate,
                path / STUDY,
                trials=trials,
                seed=sc.seed,
                batch=batch,
                setup=setup,
            )
        doc = _document(study, tg, sc, params, seeds, trials)
        fitted_name = name or f"{sc.name}-calibrated"
        write_text(path / "calibrated.yaml", calibrated_yaml(doc, extends, fitted_name, sc))
        _write_outputs(path, doc)
        write_marker(path, marker(True, calibration=True, loss=doc["best"]["loss"]))
    return doc


def _values(params: Sequence[Param], point: dict[str, float | int]) -> dict[str, float | int]:
    return {p.key: p.value(point[p.key]) for p in params}


def _prepare(path: Path, overwrite: bool) -> None:
    """A new folder, or one of an earlier calibration (continued, or removed on overwrite)."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise XinyongError("exists and is not a folder; choose another --out", file=path)
    if path.is_dir() and any(path.iterdir()):
        mark = read_marker(path)
        if mark is None or not mark.get("calibration"):
            raise XinyongError(
                "exists and is not a calibration folder; choose another --out", file=path
            )
        if overwrite:
            shutil.rmtree(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise XinyongError(f"cannot create the folder ({exc.strerror})", file=path) from None


def _check_produced(
    tg: Targets, sc: Scenario, per_point: list[list[dict[str, float | None]]]
) -> None:
    """Stop when a target names a metric that no run of the first batch produced."""
    for i, t in enumerate(tg):
        for m in t.metric:
            if not any(m in seed for point in per_point for seed in point):
                raise tg.error(f"scenario '{sc.name}' does not produce metric '{m}'", i)


def _document(
    study: Any,
    tg: Targets,
    sc: Scenario,
    params: Sequence[Param],
    seeds: list[int],
    trials: int,
) -> dict[str, Any]:
    complete = [t for t in study.trials if t.value is not None]
    if not complete:
        raise XinyongError("no trial could be scored (a target had no value in any run)")
    best = min(complete, key=lambda t: (t.value, t.number))
    rows = best.user_attrs["targets"]
    return {
        "scenario": sc.name,
        "targets": tg.name,
        "targets_file": tg.file,
        "sources": sorted({f"{t.source.publisher}, {t.source.date}" for t in tg}),
        "params": [p.to_dict() for p in params],
        "adults": sc.adults,
        "days": sc.days,
        "seeds": seeds,
        "study_seed": sc.seed,
        "trials": trials,
        "interval": ACROSS_SEEDS,
        "best": {
            "trial": best.number,
            "loss": best.value,
            "values": _values(params, best.params),
            "targets": rows,
        },
        "history": [
            {"trial": t.number, "loss": t.value, "values": _values(params, t.params)}
            for t in study.trials
            if t.params
        ],
    }


def calibrated_yaml(doc: dict[str, Any], extends: str | None, name: str, sc: Scenario) -> str:
    """The calibrated scenario: the original, the fitted values and their provenance."""
    best = doc["best"]
    provenance = {
        "targets": doc["targets"],
        "sources": doc["sources"],
        "parameters": {p["key"]: [p["low"], p["high"]] for p in doc["params"]},
        "trials": doc["trials"],
        "best_trial": best["trial"],
        "loss": round(best["loss"], 6),
        "replicates": len(doc["seeds"]),
        "seeds": doc["seeds"],
        "adults": doc["adults"],
        "days": doc["days"],
        "date": datetime.date.today().isoformat(),
        "achieved": {
            r["target"]: {k: _round(r[k]) for k in ("value", "achieved", "low", "high")}
            for r in best["targets"]
        },
    }
    data: dict[str, Any] = {
        "name": name,
        "description": f"{sc.name} with {', '.join(best['values'])} fitted to the target set "
        f"{doc['targets']} (xinyong calibrate).",
        "extends": extends or "base.yaml",
        "set": best["values"],  # exactly as the trial ran them
        "calibration": provenance,
    }
    head = (
        f"# Calibrated scenario: `set:` holds the values `xinyong calibrate` fitted to the\n"
        f"# target set {doc['targets']}; `calibration:` says how (docs/calibration.md).\n"
    )
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _round(x: Any) -> Any:
    return float(f"{x:.6g}") if isinstance(x, float) else x


def _write_outputs(path: Path, doc: dict[str, Any]) -> None:
    from xinyong.audit.figures import csv_text
    from xinyong.calibration.pages import render_calibration

    write_json(path / "calibration.json", doc)
    rows = [
        {k: v for k, v in r.items() if k != "per_seed"}
        | {"seeds": len(doc["seeds"]), "interval": ACROSS_SEEDS}
        for r in doc["best"]["targets"]
    ]
    write_text(path / "calibration.csv", csv_text(rows))
    trials = [{"trial": h["trial"], "loss": h["loss"], **h["values"]} for h in doc["history"]]
    write_text(path / "trials.csv", csv_text(trials))
    render_calibration(doc, path / "calibration.html")
