"""The pages of `xinyong calibrate` and `xinyong sensitivity`: figures computed here, laid out
by the templates of this package (calibration.html, sensitivity.html) on the audit's page,
offline, plotly embedded as in every report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from xinyong.audit.figures import FLAG, GOOD, OK, Page, errors, layout
from xinyong.audit.render import write_page

GUIDE = "docs/calibration.md"


def render_calibration(doc: dict[str, Any], path: Path) -> None:
    """Target against achieved (mean and 95% interval across seeds, tolerance band) and the
    loss of every trial with the best so far."""
    page = Page()
    best = doc["best"]
    rows = best["targets"]
    labels = [str(r["target"]) for r in rows]
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
        error_x=errors(scaled, "achieved", "low", "high"),
    )
    fig_targets = page.figure(
        "targets",
        [band, achieved],
        layout(
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
        layout(
            "Loss over trials",
            340,
            xaxis={"title": {"text": "trial"}},
            yaxis={"title": {"text": "loss"}, "type": "log"},
        ),
        [{"trial": h["trial"], "loss": h["loss"], **h["values"]} for h in history],
    )
    write_page(
        "calibration.html",
        path,
        plotly=True,
        packages=(__package__,),
        doc=doc,
        best=best,
        rows=rows,
        trials=len(history),
        figures={"targets": fig_targets, "loss": fig_loss},
        guide=GUIDE,
    )


def render_sensitivity(doc: dict[str, Any], path: Path) -> None:
    """First and total order Sobol indices per metric as bars with their bootstrap
    intervals."""
    page = Page()
    figs = []
    keys = [p["key"] for p in doc["params"]]
    for metric, idx in doc["indices"].items():
        traces = []
        for order, colour, label in (("S1", OK, "first order"), ("ST", FLAG, "total order")):
            values = [idx[k][order] for k in keys]
            half = [idx[k][f"{order}_conf"] for k in keys]
            traces.append(
                go.Bar(
                    x=keys,
                    y=values,
                    name=label,
                    marker={"color": colour},
                    error_y={"type": "data", "array": half, "color": "#333", "thickness": 1.2},
                )
            )
        rows = [{"metric": metric, "parameter": k, **idx[k]} for k in keys]
        chart = layout(
            metric,
            360,
            barmode="group",
            yaxis={"title": {"text": "Sobol index"}, "rangemode": "tozero"},
        )
        figs.append(page.figure(f"sobol-{metric}", traces, chart, rows))
    write_page(
        "sensitivity.html",
        path,
        plotly=True,
        packages=(__package__,),
        doc=doc,
        keys=keys,
        figures=figs,
        guide=GUIDE,
    )
