"""The comparison page (`xinyong compare`) and the sweep page (`xinyong sweep`): their charts
computed here, their layout in templates/compare.html and templates/sweep.html."""

from __future__ import annotations

import html
import textwrap
from pathlib import Path

import plotly.graph_objects as go

from xinyong.audit.figures import FLAG, OK, PALETTE, Page, errors, layout
from xinyong.audit.format import interval, num, value
from xinyong.audit.registry import KEY_METRICS
from xinyong.audit.render import write_page
from xinyong.audit.summary import summary_meaning
from xinyong.words import label, metric_words, number


def render_compare(doc: dict, path: Path) -> None:
    """Write the comparison of two runs (`xinyong compare`) to `path`."""
    page = Page()
    rows = doc.get("rows") or []
    by_name = {r.get("metric"): r for r in rows}
    figs = []
    for name in KEY_METRICS:
        r = by_name.get(name)
        if r is None or r.get("a") is None or r.get("b") is None:
            continue
        figs.append(_side_by_side(page, r))
    write_page(
        "compare.html",
        path,
        plotly=page.count > 0,
        doc=doc,
        a=doc.get("a") or {},
        b=doc.get("b") or {},
        rows=rows,
        figures=figs,
        significant=sum(bool(r.get("significant")) for r in rows),
        corrected=sum(r.get("q_value") is not None for r in rows),
        uncorrected=sum(bool(r.get("significant_uncorrected")) for r in rows),
        tested=any(r.get("kind") in ("paired-seeds", "across-seeds") for r in rows),
        download=[_flat(r) for r in rows],
    )


def _flat(r: dict) -> dict:
    keys = ("metric", "a", "a_low", "a_high", "b", "b_low", "b_high", "difference", "low")
    keys += ("high", "kind", "significant", "meaning")
    return {k: r.get(k) for k in keys}


def _side_by_side(page: Page, r: dict) -> str:
    name = str(r.get("metric"))
    pts = [
        {"side": "A (base)", "value": r.get("a"), "low": r.get("a_low"), "high": r.get("a_high")},
        {"side": "B (reform)", "value": r.get("b"), "low": r.get("b_low"), "high": r.get("b_high")},
    ]
    trace = go.Scatter(
        x=[p["side"] for p in pts],
        y=[p["value"] for p in pts],
        mode="markers",
        marker={"size": 12, "color": [OK, FLAG]},
        error_y=errors(pts, "value", "low", "high"),
        showlegend=False,
        hovertext=[f"{p['side']}: {num(p['value'])} {interval(p['low'], p['high'])}" for p in pts],
        hoverinfo="text",
    )
    verdict = (
        "significant"
        if r.get("significant")
        else "not significant"
        if r.get("kind") in ("paired-seeds", "across-seeds")
        else "one run a side: not tested"
    )
    heading = "\n".join(
        [
            _first_clause(r.get("meaning") or label(name)),
            f"B − A = {number(r.get('difference'))}"
            + ("" if r.get("low") is None else f" {interval(r.get('low'), r.get('high'))}")
            + f", {verdict}",
        ]
    )
    share = "share" in name.split(".")[0]
    lay = layout(
        heading,
        360,
        xaxis={"title": {"text": "run"}},
        yaxis={
            "title": {"text": _axis_title(name)},
            "rangemode": "tozero",
            **({"tickformat": ".2~%"} if share else {}),
        },
        margin={"l": 60, "r": 20, "t": 44, "b": 50},
        title_size=12,
    )
    return page.figure(f"key-{name}", [trace], lay, pts)


def _first_clause(meaning: str) -> str:
    """A metric's meaning as a chart title: its first clause (layout wraps it for a phone)."""
    first = meaning.split(": ")[0].strip()
    return first[:1].upper() + first[1:] or meaning


def _axis_title(name: str) -> str:
    """A metric's name as an axis title in words, in lines short enough for a chart's height:
    "wrongly_listed_share.blacklist" reads "wrongly listed share, blacklist"."""
    words = metric_words(name)
    return "<br>".join(html.escape(line) for line in textwrap.wrap(words, 26))


def render_sweep(doc: dict, path: Path) -> None:
    """Write a sweep's curves (`xinyong sweep`): one chart per key metric, mean and interval
    across seeds at each grid point."""
    page = Page()
    keys = doc.get("keys") or []
    points = doc.get("points") or []
    x_key = keys[0] if keys else "value"
    figs = []
    for name in doc.get("metrics") or []:
        groups: dict[str, list[dict]] = {}
        for p in points:
            other = ", ".join(f"{k}={p['values'][k]}" for k in keys[1:])
            row = (p.get("metrics") or {}).get(name) or {}
            groups.setdefault(other, []).append(
                {
                    x_key: p["values"].get(x_key),
                    "value": row.get("value"),
                    "low": row.get("low"),
                    "high": row.get("high"),
                }
            )
        traces, data = [], []
        for i, (other, pts) in enumerate(groups.items()):
            colour = PALETTE[i % len(PALETTE)]
            xs = [q[x_key] for q in pts]
            traces.append(
                go.Scatter(
                    x=xs,
                    y=[q["value"] for q in pts],
                    mode="lines+markers",
                    name=html.escape(other or name),
                    line={"color": colour, "width": 2},
                    error_y=errors(pts, "value", "low", "high"),
                )
            )
            data += [{"metric": name, **({"other": other} if other else {}), **q} for q in pts]
        known = [q for q in data if q["value"] is not None]
        # Titled by what the metric means, as the compare charts are; its id is in the data.
        meaning = (doc.get("meanings") or {}).get(name) or summary_meaning(name)
        heading = _first_clause(meaning)
        if len(known) >= 2:
            lo, hi = known[0], known[-1]
            ends = f"{x_key} = {value(lo[x_key])} to {value(hi[x_key])}"
            if hi["value"] == lo["value"]:
                heading += f"\nStays at {num(lo['value'])} from {ends}"
            else:
                trend = "Rises" if hi["value"] > lo["value"] else "Falls"
                heading += f"\n{trend} from {num(lo['value'])} to {num(hi['value'])} from {ends}"
        lay = layout(
            heading,
            360,
            xaxis={"title": {"text": x_key}},
            yaxis={"title": {"text": _axis_title(name)}, "rangemode": "tozero"},
        )
        figs.append(page.figure(f"sweep-{name}", traces, lay, data))
    write_page("sweep.html", path, plotly=page.count > 0, doc=doc, keys=keys, figures=figs)
