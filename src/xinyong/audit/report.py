"""The audit report: one self-contained, offline HTML file with plotly.js embedded once.

`render_report` draws an audit document (`xinyong.audit.audit.audit`) and the run's daily
table; `render_compare` draws `xinyong.audit.compare.compare`. The output depends only on the
inputs (fixed div ids, no timestamps), so the same inputs give byte-identical files.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
import pyarrow as pa
from plotly.colors import sample_colorscale
from plotly.offline import get_plotlyjs

from xinyong.audit.metrics import FOUR_FIFTHS

CONFIG = {"displaylogo": False, "responsive": True}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
PALETTE = ["#1f5f99", "#d1495b", "#2e8b57", "#e39c2b", "#6a4c93", "#00798c", "#8c564b", "#666666"]
FLAG, OK, GOOD, INK = "#c0392b", "#1f5f99", "#2e8b57", "#1d2330"
RATIO_FLOOR = 0.01  # ratios at or below 0 are drawn here on the log axis
RATIO_TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]

CSS = """
:root { --ink: #1d2330; --muted: #5a6372; --line: #d9dde3; --flag: #c0392b; }
* { box-sizing: border-box; }
body { margin: 0; font-family: FONT; color: var(--ink); background: #f6f7f9; line-height: 1.5; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 64px; }
header { border-bottom: 3px solid var(--ink); padding-bottom: 6px; }
h1 { font-size: 1.7rem; margin: 0 0 4px; }
h2 { font-size: 1.25rem; margin: 0 0 6px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px;
          padding: 18px 22px; margin: 18px 0; }
.facts { display: flex; flex-wrap: wrap; gap: 8px 28px; margin: 10px 0 12px; }
.facts div { display: flex; gap: 6px; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; font-weight: 600; }
.lead { font-size: 1.02rem; max-width: 82ch; }
.note { color: var(--muted); max-width: 95ch; margin: 0 0 8px; }
.figure { margin: 8px 0 14px; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px;
         border-bottom: 1px solid var(--line); }
th { background: #eef0f3; font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.name { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.85rem;
          white-space: nowrap; }
tr.flag td { background: #fdecea; }
tr.flag td:first-child { box-shadow: inset 4px 0 var(--flag); }
details summary { cursor: pointer; color: var(--muted); margin: 6px 0; }
footer { color: var(--muted); font-size: 0.85rem; margin-top: 24px; }
""".replace("FONT", FONT)


def render_report(doc: dict, daily: pa.Table, path: Path) -> None:
    """Write the audit report of `doc` and the run's `daily` table to `path`."""
    page = _Page()
    run, metrics = doc.get("run") or {}, doc.get("metrics") or {}
    body = [
        _header(doc),
        _time_section(page, daily, run.get("adults")),
        _survival_section(page, doc.get("survival") or {}),
        _disparity_section(page, doc.get("disparity") or []),
        _spillover_section(page, doc.get("spillover") or {}, metrics),
        _proportionality_section(page, doc.get("proportionality") or [], metrics),
        _channel_section(page, doc.get("channels") or []),
        _behaviour_section(page, doc.get("behaviour") or [], metrics),
        _metrics_section(metrics),
        _run_section(run),
    ]
    title = f"Xinyong audit: {_text(run.get('scenario'))}"
    Path(path).write_text(_html(title, "".join(body), with_plotly=page.count > 0), "utf-8")


def render_compare(doc: dict, path: Path) -> None:
    """Write the comparison of two runs (`xinyong compare`) to `path`."""
    a, b = doc.get("a") or {}, doc.get("b") or {}
    rows = doc.get("rows") or []
    title = f"Xinyong comparison: {_text(a.get('scenario'))} against {_text(b.get('scenario'))}"
    sides = "".join(
        f"<section><h2>{label}</h2>"
        + _facts(
            [
                ("Path", _text(side.get("path"))),
                ("Scenario", _text(side.get("scenario"))),
                ("Seed", _num(side.get("seed"))),
                ("Replicates", _num(side.get("replicates"))),
            ]
        )
        + "</section>"
        for label, side in (("A (base)", a), ("B (reform)", b))
    )
    trs = "".join(
        _tr(
            bool(r.get("significant")),
            _name(r.get("metric")),
            _text(r.get("meaning")),
            _cell(r.get("a")),
            _cell(r.get("b")),
            _cell(r.get("difference")),
            _cell(_interval(r.get("low"), r.get("high")), raw=True),
            _cell(bool(r.get("significant"))),
        )
        for r in rows
    )
    significant = sum(bool(r.get("significant")) for r in rows)
    table = (
        "<section><h2>Metrics, B against A</h2>"
        f"<p class=note>{significant} of {len(rows)} metrics differ significantly: the 95% "
        "interval of B &minus; A excludes 0 (highlighted rows). Metrics without an interval "
        "on both sides get none.</p>"
        + _table(["Metric", "Meaning", "A", "B", "B &minus; A", "95% interval", "Significant"], trs)
        + "</section>"
    )
    header = f"<header><h1>{title}</h1></header>"
    Path(path).write_text(_html(title, header + sides + table, with_plotly=False), "utf-8")


class _Page:
    """Numbers the figures (fixed div ids) and renders each one's div without plotly.js."""

    def __init__(self) -> None:
        self.count = 0

    def figure(self, name: str, traces: list, layout: dict) -> str:
        self.count += 1
        div = pio.to_html(
            go.Figure(traces, layout),
            include_plotlyjs=False,
            full_html=False,
            div_id=f"fig-{self.count}-{name}",
            config=CONFIG,
        )
        return f'<div class="figure">{div}</div>'


def _html(title: str, body: str, *, with_plotly: bool) -> str:
    script = (
        "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>"
        f'<script charset="utf-8">{get_plotlyjs()}</script>'
        if with_plotly
        else ""
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{CSS}</style>{script}</head>\n<body><main>{body}"
        "<footer>Made by Xinyong from a synthetic population; works offline.</footer>"
        "</main></body></html>\n"
    )


# Formatting. Every helper returns escaped HTML; plotly labels are escaped too, as plotly
# reads a subset of HTML in its text.


def _text(x: Any) -> str:
    return "n/a" if x is None else html.escape(str(x))


def _num(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"
    return html.escape(str(x))


def _pct(x: Any) -> str:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return "n/a"
    return f"{100 * x:.1f}%"


def _interval(low: Any, high: Any) -> str:
    return "n/a" if low is None and high is None else f"[{_num(low)}, {_num(high)}]"


def _name(x: Any) -> str:
    return f"<td class=name>{_text(x)}</td>"


def _cell(x: Any, raw: bool = False) -> str:
    return f"<td class=num>{x if raw else _num(x)}</td>"


def _tr(flag: bool, *cells: str) -> str:
    cls = " class=flag" if flag else ""
    tds = "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in cells)
    return f"<tr{cls}>{tds}</tr>"


def _table(heads: list[str], rows: str) -> str:
    ths = "".join(f"<th>{h}</th>" for h in heads)
    return f"<table><thead><tr>{ths}</tr></thead><tbody>{rows}</tbody></table>"


def _facts(items: list[tuple[str, str]]) -> str:
    return (
        "<dl class=facts>"
        + "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in items)
        + "</dl>"
    )


def _section(anchor: str, title: str, note: str, content: str) -> str:
    return f'<section id="{anchor}"><h2>{title}</h2><p class=note>{note}</p>{content}</section>'


def _layout(title: str, height: int, **kw: Any) -> dict:
    axis = {"gridcolor": "#e6e8ec", "zerolinecolor": "#b8bdc6", "automargin": True}
    return {
        "template": "none",
        "title": {"text": html.escape(title), "x": 0.01, "font": {"size": 15}},
        "height": height,
        "font": {"family": FONT, "size": 12, "color": INK},
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "legend": {"orientation": "h", "y": -0.2},
        **kw,
        "xaxis": {**axis, **kw.get("xaxis", {})},
        "yaxis": {**axis, **kw.get("yaxis", {})},
    }


def _errors(rows: list[dict], value: str, low: str, high: str) -> dict:
    """Asymmetric error bars around rows[value]; missing bounds draw none."""

    def gap(r: dict, a: str, b: str) -> float:
        return 0.0 if r.get(a) is None or r.get(b) is None else max(r[a] - r[b], 0.0)

    return {
        "type": "data",
        "symmetric": False,
        "array": [gap(r, high, value) for r in rows],
        "arrayminus": [gap(r, value, low) for r in rows],
        "color": "#333",
        "thickness": 1.2,
    }


def _alpha(colour: str, a: float) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{a})"


def _metric(metrics: dict, name: str) -> Any:
    return (metrics.get(name) or {}).get("value")


# Sections.


def _header(doc: dict) -> str:
    run = doc.get("run") or {}
    seeds = run.get("seeds")
    seed = (
        ("Seeds", _text(", ".join(map(str, seeds)))) if seeds else ("Seed", _num(run.get("seed")))
    )
    facts = [
        ("Scenario", _text(run.get("scenario"))),
        ("Adults", _num(run.get("adults"))),
        ("Days", _num(run.get("days"))),
        seed,
        ("Replicates", _num(doc.get("replicates"))),
    ]
    return (
        f"<header><h1>Xinyong audit report: {_text(run.get('scenario'))}</h1>{_facts(facts)}"
        f"<p class=lead>{_summary(doc)}</p></header>"
    )


def _summary(doc: dict) -> str:
    """One plain-language paragraph of the headline findings."""
    run, m = doc.get("run") or {}, doc.get("metrics") or {}
    lists = [k.removeprefix("list_share.") for k in run if k.startswith("list_share.")]
    out = [
        f"Scenario {_text(run.get('scenario'))} simulated {_num(run.get('adults'))} synthetic "
        f"adults for {_num(run.get('days'))} days."
    ]
    if lists:
        shares = ", ".join(f"{_text(lst)} {_pct(run[f'list_share.{lst}'])}" for lst in lists)
        out.append(f"Share of adults on each list at the end: {shares}.")
    wrong = [
        f"{_pct(_metric(m, f'wrongly_listed_of_listed.{lst}'))} of those on {_text(lst)}"
        for lst in lists
        if _metric(m, f"wrongly_listed_of_listed.{lst}")
    ]
    if wrong:
        out.append(f"Listed only through wrong records: {', '.join(wrong)}.")
    tested = [r for r in doc.get("disparity") or [] if r.get("ratio") is not None]
    if tested:
        flagged = sum(bool(r.get("flag")) for r in tested)
        out.append(
            f"{flagged} of {len(tested)} group comparisons fall outside the four-fifths band."
        )
    spill = [
        f"{_pct(_metric(m, f'spillover_share.{lst}'))} on {_text(lst)}"
        for lst in doc.get("spillover") or {}
        if _metric(m, f"spillover_share.{lst}") is not None
    ]
    if spill:
        out.append(
            "Sanction-days falling in a context unrelated to the records behind the listing: "
            f"{', '.join(spill)}."
        )
    channels = [c for c in doc.get("channels") or [] if c.get("share") is not None]
    if channels:
        worst = max(channels, key=lambda c: c["share"])
        out.append(
            f"The least reliable channel, {_text(worst.get('channel'))}, got "
            f"{_pct(worst['share'])} of its negative records wrong."
        )
    if _metric(m, "wrong_records_never_corrected") is not None:
        out.append(
            f"{_pct(_metric(m, 'wrong_records_never_corrected'))} of wrong negative records were "
            "never corrected on appeal."
        )
    if _metric(m, "negative_events_change") is not None:
        out.append(
            "Against the same world with the scheme off, true negative events changed by "
            f"{_pct(_metric(m, 'negative_events_change'))} and online speech by "
            f"{_pct(_metric(m, 'online_speech_change'))}."
        )
    return " ".join(out)


def _time_section(page: _Page, daily: pa.Table, adults: Any) -> str:
    title = "Tiers and lists over time"
    note = (
        "Daily counts. The shadow list is where each adult would be if only correct records "
        "counted; the gap between the two is the work of wrong records."
    )
    cols = daily.column_names
    if "day" not in cols:
        return _section("time", title, note, "<p>No daily table.</p>")
    days = daily.column("day").to_pylist()

    def col(name: str) -> list:
        return daily.column(name).to_pylist()

    def names(prefix: str) -> list[str]:
        return [c.removeprefix(prefix) for c in cols if c.startswith(prefix)]

    def lines(heading: str, height: int) -> dict:
        return _layout(
            heading,
            height,
            xaxis={"title": {"text": "day"}},
            yaxis={"title": {"text": "adults"}, "rangemode": "tozero"},
        )

    figs = []
    tiers, lists = names("tier."), names("list.")
    colour = {lst: PALETTE[i % len(PALETTE)] for i, lst in enumerate(lists)}
    if tiers:
        counts = [col(f"tier.{t}") for t in tiers]
        totals = [adults or sum(x for x in day if x) for day in zip(*counts, strict=True)]
        shades = sample_colorscale(
            "RdYlGn", [1 - i / max(len(tiers) - 1, 1) for i in range(len(tiers))]
        )
        traces = [
            go.Scatter(
                x=days,
                y=[None if c is None or not n else c / n for c, n in zip(cs, totals, strict=True)],
                name=html.escape(t),
                stackgroup="tiers",
                line={"width": 0.5, "color": shade},
            )
            for t, cs, shade in zip(tiers, counts, shades, strict=True)
        ]
        layout = _layout(
            "Share of adults per tier",
            380,
            xaxis={"title": {"text": "day"}},
            yaxis={"title": {"text": "share of adults"}, "tickformat": ".0%", "range": [0, 1]},
        )
        figs.append(page.figure("tiers", traces, layout))
    if lists:
        traces = []
        for lst in lists:
            for world, label, dash in (
                ("list", "recorded", "solid"),
                ("shadow_list", "shadow", "dash"),
            ):
                if f"{world}.{lst}" in cols:
                    traces.append(
                        go.Scatter(
                            x=days,
                            y=col(f"{world}.{lst}"),
                            name=f"{html.escape(lst)} ({label})",
                            legendgroup=lst,
                            line={"color": colour[lst], "width": 2, "dash": dash},
                        )
                    )
        heading = "Adults on each list: recorded (solid) and shadow truth (dashed)"
        figs.append(page.figure("lists", traces, lines(heading, 420)))
        traces = [
            go.Scatter(
                x=days,
                y=col(f"wrongly_listed.{lst}"),
                name=html.escape(lst),
                line={"color": colour[lst], "width": 2},
            )
            for lst in lists
            if f"wrongly_listed.{lst}" in cols
        ]
        if traces:
            heading = "Adults wrongly listed: on the recorded list, not on the shadow list"
            figs.append(page.figure("wrongly-listed", traces, lines(heading, 360)))
    return _section("time", title, note, "".join(figs) or "<p>No data.</p>")


def _survival_section(page: _Page, survival: dict) -> str:
    title = "How long listings last"
    note = (
        "Kaplan-Meier share of list spells still running t days after they began (recorded "
        "world, censored at the end of the run), with its 95% band."
    )
    traces = []
    for i, (lst, curve) in enumerate(survival.items()):
        colour, name = PALETTE[i % len(PALETTE)], html.escape(lst)
        t = curve.get("t") or []
        for bound in ("high", "low"):  # the band: fill from the low bound up to the high one
            traces.append(
                go.Scatter(
                    x=t,
                    y=curve.get(bound) or [],
                    line={"shape": "hv", "width": 0, "color": colour},
                    fill="tonexty" if bound == "low" else None,
                    fillcolor=_alpha(colour, 0.18),
                    legendgroup=lst,
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
        traces.append(
            go.Scatter(
                x=t,
                y=curve.get("s") or [],
                name=name,
                legendgroup=lst,
                line={"shape": "hv", "width": 2, "color": colour},
                customdata=curve.get("at_risk"),
                hovertemplate=f"{name}, day %{{x}}: %{{y:.1%}} still listed"
                "<br>at risk: %{customdata}<extra></extra>",
            )
        )
    if not traces:
        return _section("survival", title, note, "<p>No list spells.</p>")
    layout = _layout(
        "Share of spells still listed",
        420,
        xaxis={"title": {"text": "days since listing"}, "rangemode": "tozero"},
        yaxis={"title": {"text": "still listed"}, "tickformat": ".0%", "range": [0, 1.03]},
    )
    return _section("survival", title, note, page.figure("survival", traces, layout))


def _disparity_section(page: _Page, rows: list) -> str:
    title = "Disparity between groups"
    lo_band, hi_band = FOUR_FIFTHS
    note = (
        "Each group's rate divided by the reference group's, with its 95% interval, on a log "
        f"scale. The shaded band [{lo_band}, {hi_band}] is the four-fifths rule; comparisons "
        "outside it are flagged (red, &#9873;). Ratios at or below 0 sit at the left edge."
    )
    if not rows:
        return _section("disparity", title, note, "<p>No group comparisons.</p>")
    keys = ("ratio", "ratio_low", "ratio_high")
    raw = [r for r in rows if r.get("ratio") is not None]
    plotted = [
        {**r, **{k: None if r.get(k) is None else max(r[k], RATIO_FLOOR) for k in keys}}
        for r in raw
    ]
    content = ""
    if plotted:
        labels = [
            f"{'⚑ ' if r.get('flag') else ''}{_text(r.get('metric'))} · {_text(r.get('group'))}"
            for r in plotted
        ]
        colours = [FLAG if r.get("flag") else OK for r in plotted]
        bars = go.Bar(  # from parity (1) to the ratio
            y=labels,
            x=[r["ratio"] - 1 for r in plotted],
            base=1,
            orientation="h",
            marker={"color": colours, "opacity": 0.5},
            hoverinfo="skip",
            showlegend=False,
        )
        points = go.Scatter(
            y=labels,
            x=[r["ratio"] for r in plotted],
            mode="markers",
            marker={"color": colours, "size": 9, "symbol": "diamond"},
            error_x=_errors(plotted, "ratio", "ratio_low", "ratio_high"),
            hovertext=[
                f"{_text(r.get('group'))} against {_text(r.get('reference'))}: ratio "
                f"{_num(r['ratio'])} {_interval(r.get('ratio_low'), r.get('ratio_high'))}"
                f"<br>rate {_num(r.get('value'))}, reference {_num(r.get('reference_value'))}"
                for r in raw
            ],
            hoverinfo="text",
            showlegend=False,
        )
        seen = [r[k] for r in plotted for k in keys if r[k] is not None] + [lo_band, hi_band]
        span = [min(seen) / 1.4, max(seen) * 1.4]
        ticks = [t for t in RATIO_TICKS if span[0] <= t <= span[1]]
        layout = _layout(
            "Ratio to the reference group",
            130 + 30 * len(plotted),
            xaxis={
                "type": "log",
                "range": [math.log10(span[0]), math.log10(span[1])],
                "tickvals": ticks,
                "ticktext": [_num(t) for t in ticks],
                "title": {"text": "ratio to the reference group (log scale)"},
            },
            yaxis={"autorange": "reversed", "gridcolor": "#f0f1f3"},
            margin={"l": 20, "r": 20, "t": 50, "b": 50},
            shapes=[
                {
                    "type": "rect",
                    "xref": "x",
                    "yref": "paper",
                    "x0": lo_band,
                    "x1": hi_band,
                    "y0": 0,
                    "y1": 1,
                    "fillcolor": _alpha(GOOD, 0.14),
                    "line": {"width": 0},
                    "layer": "below",
                },
                {
                    "type": "line",
                    "xref": "x",
                    "yref": "paper",
                    "x0": 1,
                    "x1": 1,
                    "y0": 0,
                    "y1": 1,
                    "line": {"color": GOOD, "width": 1.5, "dash": "dot"},
                },
            ],
        )
        content = page.figure("disparity", [bars, points], layout)
    trs = "".join(
        _tr(
            bool(r.get("flag")),
            _name(r.get("metric")),
            f"{_text(r.get('group'))} / {_text(r.get('reference'))}",
            _cell(r.get("value")),
            _cell(r.get("reference_value")),
            _cell(r.get("ratio")),
            _cell(_interval(r.get("ratio_low"), r.get("ratio_high")), raw=True),
            _cell(r.get("difference")),
            _num(bool(r.get("flag"))),
        )
        for r in rows
    )
    heads = ["Metric", "Group / reference", "Rate", "Reference rate", "Ratio", "95% interval"]
    table = _table([*heads, "Difference", "Flag"], trs)
    details = f"<details><summary>All group comparisons</summary>{table}</details>"
    return _section("disparity", title, note, content + details)


def _spillover_section(page: _Page, spillover: dict, metrics: dict) -> str:
    title = "Spillover into unrelated contexts"
    note = (
        "Sanction-days of each sanction list by the context of the records that caused the "
        "listing (rows) and the context each sanction hits (columns). Outlined cells are the "
        "same or a related context (the scenario's audit.related_contexts); the rest is "
        "detrimental treatment in an unrelated social context (AI Act Art. 5(1)(c)(i))."
    )
    figs = []
    for lst, sp in spillover.items():
        causes = [_text(c) for c in sp.get("causes") or []]
        sanctions = [_text(c) for c in sp.get("sanctions") or []]
        z = sp.get("sanction_days") or []
        if not causes or not sanctions:
            continue
        traces = [
            go.Heatmap(
                x=sanctions,
                y=causes,
                z=z,
                colorscale="YlOrRd",
                zmin=0,
                zmax=max((v for row in z for v in row if v is not None), default=0) or 1,
                texttemplate="%{z:,.0f}",
                colorbar={"title": {"text": "sanction-days"}, "thickness": 12},
                hovertemplate="%{y} records → %{x} sanctions: %{z:,.0f} sanction-days"
                "<extra></extra>",
            ),
        ]
        related = sp.get("related") or []
        outline = [  # related-context cells, by category index
            {
                "type": "rect",
                "x0": j - 0.5,
                "x1": j + 0.5,
                "y0": i - 0.5,
                "y1": i + 0.5,
                "line": {"color": OK, "width": 3},
            }
            for i, row in enumerate(related)
            for j, is_related in enumerate(row)
            if is_related
        ]
        share = _metric(metrics, f"spillover_share.{lst}")
        layout = _layout(
            f"{lst}: {_pct(share)} of sanction-days in an unrelated context",
            max(260, 150 + 30 * len(causes)),
            xaxis={"title": {"text": "sanctioned context"}, "showgrid": False},
            yaxis={"title": {"text": "cause"}, "autorange": "reversed", "showgrid": False},
            shapes=outline,
        )
        figs.append(page.figure(f"spillover-{len(figs) + 1}", traces, layout))
    body = "".join(figs) or "<p>No sanction-list spell had causal records.</p>"
    return _section("spillover", title, note, body)


def _proportionality_section(page: _Page, rows: list, metrics: dict) -> str:
    title = "Proportionality"
    rho = _metric(metrics, "gravity_severity_rank_correlation")
    note = (
        "Each behaviour's gravity (1 minor to 5 grave) against the sanction-days each of its "
        "records brings; marker area follows the number of records. Spearman correlation "
        f"{_num(rho)}: near 1, graver behaviour is sanctioned harder (AI Act Art. 5(1)(c)(ii))."
    )
    points = [
        r
        for r in rows
        if r.get("gravity") is not None and r.get("sanction_days_per_record") is not None
    ]
    if not points:
        return _section("proportionality", title, note, "<p>No sanctioned records.</p>")
    levels: dict[Any, list] = {}
    for r in sorted(points, key=lambda r: r["sanction_days_per_record"]):
        levels.setdefault(r["gravity"], []).append(r)
    most = max(r.get("records") or 0 for r in points) or 1
    xs, ys, sizes, hover = [], [], [], []
    for g, level in sorted(levels.items()):
        step = min(0.5 / len(level), 0.08)  # spread one level's markers a little sideways
        for i, r in enumerate(level):
            xs.append(g + (i - (len(level) - 1) / 2) * step)
            ys.append(r["sanction_days_per_record"])
            sizes.append(7 + 26 * math.sqrt((r.get("records") or 0) / most))
            hover.append(
                f"{_text(r.get('behaviour'))}: gravity {_num(g)}, {_num(r.get('records'))} "
                f"records, {_num(r['sanction_days_per_record'])} sanction-days per record"
            )
    log = all(y > 0 for y in ys)
    trace = go.Scatter(
        x=xs,
        y=ys,
        mode="markers",
        marker={"size": sizes, "color": OK, "opacity": 0.6, "line": {"color": "white", "width": 1}},
        hovertext=hover,
        hoverinfo="text",
        showlegend=False,
    )
    layout = _layout(
        "Sanction-days per record by gravity",
        440,
        xaxis={"title": {"text": "gravity"}, "dtick": 1},
        yaxis={
            "title": {"text": "sanction-days per record" + (" (log scale)" if log else "")},
            "type": "log" if log else "linear",
            "dtick": 1 if log else None,
        },
    )
    return _section("proportionality", title, note, page.figure("proportionality", [trace], layout))


def _channel_section(page: _Page, rows: list) -> str:
    title = "False records by channel"
    note = (
        "Share of each observation channel's negative records that are misattributed or false "
        "reports, with 95% Wilson intervals."
    )
    if not rows:
        return _section("channels", title, note, "<p>No negative records.</p>")
    trace = go.Bar(
        x=[f"{_text(r.get('channel'))}<br>{_num(r.get('records'))} records" for r in rows],
        y=[r.get("share") for r in rows],
        marker={"color": OK},
        error_y=_errors(rows, "share", "low", "high"),
        hovertext=[
            f"{_text(r.get('channel'))}: {_pct(r.get('share'))} wrong "
            f"{_interval(r.get('low'), r.get('high'))}, {_num(r.get('wrong'))} of "
            f"{_num(r.get('records'))} records"
            for r in rows
        ],
        hoverinfo="text",
        showlegend=False,
    )
    layout = _layout(
        "Wrong share of negative records",
        400,
        xaxis={"title": {"text": "channel"}},
        yaxis={"title": {"text": "wrong records"}, "tickformat": ".0%", "rangemode": "tozero"},
    )
    return _section("channels", title, note, page.figure("channels", [trace], layout))


def _behaviour_section(page: _Page, rows: list, metrics: dict) -> str:
    title = "Behaviour change and its cost"
    if not rows:
        note = "No scheme-off baseline was run, so the change in behaviour is not measured."
        return _section("behaviour", title, note, "")

    def change(name: str) -> str:
        row = metrics.get(name) or {}
        return f"{_pct(row.get('value'))} [{_pct(row.get('low'))}, {_pct(row.get('high'))}]"

    note = (
        "Change in each behaviour's true events against the same world with the scheme off "
        f"(deterrence and distress). Negative events overall: {change('negative_events_change')}"
        f"; online speech (chilling effect): {change('online_speech_change')}. The trade-off: "
        f"{_num(_metric(metrics, 'events_prevented_per_wrongly_listed'))} negative events "
        "prevented per adult wrongly on a sanction list."
    )
    shown = [r for r in rows if r.get("change") is not None]
    missing = [_text(r.get("behaviour")) for r in rows if r.get("change") is None]
    if missing:
        note += f" Not defined (no events with the scheme off): {', '.join(missing)}."
    if not shown:
        return _section("behaviour", title, note, "")
    colour = {"negative": FLAG, "positive": GOOD}
    trace = go.Bar(
        y=[f"{_text(r.get('behaviour'))} ({_text(r.get('context'))})" for r in shown],
        x=[r["change"] for r in shown],
        orientation="h",
        marker={"color": [colour.get(r.get("sign"), "#888") for r in shown]},
        hovertext=[
            f"{_text(r.get('behaviour'))} ({_text(r.get('sign'))}): {_num(r.get('events'))} "
            f"events, {_num(r.get('baseline_events'))} with the scheme off ({_pct(r['change'])})"
            for r in shown
        ],
        hoverinfo="text",
        showlegend=False,
    )
    layout = _layout(
        "Change in true events with the scheme on (red: negative behaviour, green: positive)",
        120 + 22 * len(shown),
        xaxis={"title": {"text": "change against the scheme-off world"}, "tickformat": "+.0%"},
        yaxis={"autorange": "reversed", "gridcolor": "#f0f1f3"},
        margin={"l": 20, "r": 20, "t": 50, "b": 50},
    )
    return _section("behaviour", title, note, page.figure("behaviour", [trace], layout))


def _metrics_section(metrics: dict) -> str:
    note = (
        "Every audit metric with its 95% interval where one is defined, what it means, and the "
        "legal test or convention it maps to (EU AI Act Art. 5(1)(c)(i)/(ii), GDPR Art. 22, the "
        "four-fifths rule)."
    )
    trs = "".join(
        _tr(
            False,
            _name(name),
            _cell(row.get("value")),
            _cell(_interval(row.get("low"), row.get("high")), raw=True),
            _text(row.get("meaning")),
            _text(row.get("maps_to") or None),
        )
        for name, row in metrics.items()
    )
    table = _table(["Metric", "Value", "95% interval", "Meaning", "Maps to"], trs)
    return _section("metrics", "Metrics", note, table if metrics else "<p>No metrics.</p>")


def _run_section(run: dict) -> str:
    intervals = run.get("intervals") or {}
    trs = "".join(
        _tr(
            False,
            _name(key),
            _cell(value),
            _cell(_interval(*(intervals.get(key) or [None, None])), raw=True),
        )
        for key, value in run.items()
        if not isinstance(value, dict | list)
    )
    table = _table(["Key", "Value", "95% interval"], trs)
    return (
        "<section id=run><h2>Run summary</h2><details><summary>The run's summary metrics "
        f"(MODEL.md; means over replicates where there are several)</summary>{table}</details>"
        "</section>"
    )
