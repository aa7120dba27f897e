"""The pages of `xinyong calibrate` and `xinyong sensitivity` (offline HTML, plotly embedded
as in every report)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from xinyong.atomic import write_text
from xinyong.audit.report import (
    FLAG,
    GOOD,
    OK,
    _errors,
    _html,
    _layout,
    _num,
    _Page,
    _table,
    _text,
    _tr,
)

GUIDE = "docs/calibration.md"


def render_calibration(doc: dict[str, Any], path: Path) -> None:
    """Target against achieved (mean and 95% interval across seeds, tolerance band) and the
    loss of every trial with the best so far."""
    page = _Page()
    best = doc["best"]
    rows = best["targets"]
    labels = [_text(r["target"]) for r in rows]
    # Targets differ in units (shares, flows per adult): each is drawn as its distance from
    # the published value in tolerances (2 sd where an sd is given), the band at +-1.
    reach = [r["tolerance"] if r["tolerance"] is not None else 2 * r["sd"] for r in rows]

    def away(x: float | None, r: dict, unit: float) -> float | None:
        return None if x is None else (x - r["value"]) / unit

    scaled = [
        {k: away(r[k], r, unit) for k in ("achieved", "low", "high")}
        for r, unit in zip(rows, reach, strict=True)
    ]
    band = go.Bar(
        x=[2] * len(rows),
        base=[-1] * len(rows),
        y=labels,
        orientation="h",
        name="within tolerance",
        marker={"color": "rgba(46,139,87,0.15)"},
        hoverinfo="skip",
    )
    achieved = go.Scatter(
        x=[q["achieved"] for q in scaled],
        y=labels,
        mode="markers",
        name="achieved (95% interval across seeds)",
        marker={"size": 10, "color": [GOOD if r["met"] else FLAG for r in rows]},
        error_x=_errors(scaled, "achieved", "low", "high"),
    )
    fig_targets = page.figure(
        "targets",
        [band, achieved],
        _layout(
            "Achieved against published, in tolerances (0: the published value)",
            140 + 50 * len(rows),
            xaxis={"title": {"text": "(achieved - published) / tolerance"}, "zeroline": True},
            yaxis={"automargin": True},
        ),
        [{k: v for k, v in r.items() if k != "per_seed"} for r in rows],
    )
    history = doc["history"]
    scored = [h for h in history if h["loss"] is not None]
    running, low = [], float("inf")
    for h in scored:
        low = min(low, h["loss"])
        running.append(low)
    losses = [
        go.Scatter(
            x=[h["trial"] for h in scored],
            y=[h["loss"] for h in scored],
            mode="markers",
            name="trial",
            marker={"color": OK, "size": 7},
        ),
        go.Scatter(
            x=[h["trial"] for h in scored],
            y=running,
            mode="lines",
            name="best so far",
            line={"color": FLAG, "width": 2, "shape": "hv"},
        ),
    ]
    fig_loss = page.figure(
        "loss",
        losses,
        _layout(
            "Loss over trials",
            340,
            xaxis={"title": {"text": "trial"}},
            yaxis={"title": {"text": "loss"}, "type": "log"},
        ),
        [{"trial": h["trial"], "loss": h["loss"], **h["values"]} for h in history],
    )
    table = _table(
        ["target", "published", "tolerance / sd", "achieved", "95% interval", "within"],
        "".join(
            _tr(
                not r["met"],
                _text(r["target"]),
                _num(r["value"]),
                _num(r["tolerance"]) if r["tolerance"] is not None else f"sd {_num(r['sd'])}",
                _num(r["achieved"]),
                f"{_num(r['low'])} to {_num(r['high'])}",
                "yes" if r["met"] else "no",
            )
            for r in rows
        ),
    )
    fitted = _table(
        ["parameter", "fitted", "range searched"],
        "".join(
            _tr(False, _text(p["key"]), _num(best["values"][p["key"]]),
                f"{_num(p['low'])} to {_num(p['high'])}")
            for p in doc["params"]
        ),
    )  # fmt: skip
    title = f"Xinyong calibration: {_text(doc['scenario'])} to {_text(doc['targets'])}"
    note = (
        f"Best of {_num(len(history))} trials: trial {_num(best['trial'])}, loss "
        f"{_num(best['loss'])}. Each trial ran {_num(len(doc['seeds']))} seeds "
        f"({_text(doc['seeds'])}) at {_num(doc['adults'])} adults for {_num(doc['days'])} days; "
        "an achieved value is the mean over those seeds, its interval a 95% Student t "
        "interval across them (run-to-run variation, not the uncertainty of the published "
        f"figure). Sources: {_text('; '.join(doc['sources']))}. How to read this: {GUIDE}."
    )
    body = (
        f"<header><h1>{title}</h1><p class=note>{note}</p></header>"
        f"<section><h2>Targets</h2>{fig_targets}{table}</section>"
        f"<section><h2>Fitted values</h2>{fitted}</section>"
        f"<section><h2>Search</h2>{fig_loss}</section>"
    )
    write_text(path, _html(title, body, with_plotly=True))


def render_sensitivity(doc: dict[str, Any], path: Path) -> None:
    """First and total order Sobol indices per metric as bars with their bootstrap
    intervals."""
    page = _Page()
    figs = []
    keys = [p["key"] for p in doc["params"]]
    for metric, idx in doc["indices"].items():
        traces = []
        for order, colour, label in (("S1", OK, "first order"), ("ST", FLAG, "total order")):
            values = [idx[k][order] for k in keys]
            half = [idx[k][f"{order}_conf"] for k in keys]
            traces.append(
                go.Bar(
                    x=[_text(k) for k in keys],
                    y=values,
                    name=label,
                    marker={"color": colour},
                    error_y={"type": "data", "array": half, "color": "#333", "thickness": 1.2},
                )
            )
        rows = [{"metric": metric, "parameter": k, **idx[k]} for k in keys]
        layout = _layout(
            metric,
            360,
            barmode="group",
            yaxis={"title": {"text": "Sobol index"}, "rangemode": "tozero"},
        )
        figs.append(page.figure(f"sobol-{metric}", traces, layout, rows))
    title = f"Xinyong sensitivity: {_text(doc['scenario'])}"
    note = (
        f"Sobol indices over {_text(', '.join(keys))} from {_num(doc['points'])} parameter "
        f"points (Saltelli design, base sample {_num(doc['n'])}), each run with "
        f"{_num(len(doc['seeds']))} seed(s) ({_text(doc['seeds'])}) and averaged. First order: "
        "the share of the metric's variance due to the parameter alone; total order: "
        "including its interactions. Error bars: 95% bootstrap intervals over the sample "
        f"({_num(doc['resamples'])} resamples); they cover the estimator's sampling error at "
        "this sample size with the seeds held fixed, not the model's run-to-run variation "
        f"across other seeds. How to read this: {GUIDE}."
    )
    body = (
        f"<header><h1>{title}</h1><p class=note>{note}</p></header>"
        f"<section><h2>Indices</h2>{''.join(figs)}</section>"
    )
    write_text(path, _html(title, body, with_plotly=True))
