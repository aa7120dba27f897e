"""The audit report: one self-contained, offline HTML file with plotly.js embedded once.

`render_report` draws an audit document (`xinyong.audit.audit.audit`) and the run's daily
table; `render_compare` draws `xinyong.audit.compare.compare` and `render_sweep` a sweep
(`xinyong.sweep`). The output depends only on the inputs (fixed div ids, no timestamps), so
the same inputs give byte-identical files. Every chart has a title that states its finding,
labelled axes, and its data as a CSV download (a data: link, nothing fetched); plotly's own
camera button saves it as a PNG. Definitions: docs/model.md.
"""

from __future__ import annotations

import csv
import html
import io
import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import plotly.graph_objects as go
import plotly.io as pio
import pyarrow as pa
from plotly.colors import sample_colorscale
from plotly.offline import get_plotlyjs

from xinyong.audit.metrics import FOUR_FIFTHS, INTERVAL_KINDS, MIN_COUNT, WITHIN_RUN

CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"scale": 2}}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
PALETTE = ["#1f5f99", "#d1495b", "#2e8b57", "#e39c2b", "#6a4c93", "#00798c", "#8c564b", "#666666"]
FLAG, OK, GOOD, INK, GREY = "#c0392b", "#1f5f99", "#2e8b57", "#1d2330", "#9aa1ab"
RATIO_FLOOR = 0.01  # ratios at or below 0 are drawn here on the log axis
RATIO_TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
DOCS = "docs/model.md"

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
section.findings { border-left: 6px solid var(--ink); }
.findings li { margin: 4px 0; font-size: 1.02rem; }
.findings a, .links a { font-size: 0.85rem; color: var(--muted); margin-left: 6px; }
.facts { display: flex; flex-wrap: wrap; gap: 8px 28px; margin: 10px 0 12px; }
.facts div { display: flex; gap: 6px; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; font-weight: 600; }
.lead { font-size: 1.02rem; max-width: 82ch; }
.warning { background: #fff6e0; border: 1px solid #e3c36b; border-radius: 4px;
           padding: 8px 12px; margin: 10px 0; max-width: 95ch; }
.note { color: var(--muted); max-width: 95ch; margin: 0 0 8px; }
.figure { margin: 8px 0 4px; }
.download { font-size: 0.85rem; margin: 0 0 14px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px;
         border-bottom: 1px solid var(--line); }
th { background: #eef0f3; font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.name { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.85rem;
          overflow-wrap: anywhere; }
tr.flag td { background: #fdecea; }
tr.flag td:first-child { box-shadow: inset 4px 0 var(--flag); }
tr.grey td { color: #8a919c; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr));
        gap: 8px 18px; }
dl.glossary dt { font-weight: 600; margin-top: 8px; }
dl.glossary dd { margin: 0 0 0 18px; max-width: 95ch; }
details summary { cursor: pointer; color: var(--muted); margin: 6px 0; }
footer { color: var(--muted); font-size: 0.85rem; margin-top: 24px; }
""".replace("FONT", FONT)

GLOSSARY = [
    (
        "shadow-world",
        "Shadow world",
        "Each adult's score, grade and lists computed by the same rules from their correct "
        "records only (same caps, expiry and appeals). It is where each person would stand if "
        "no record were misattributed or false.",
    ),
    (
        "wrongly-listed",
        "Wrongly listed",
        "On a list on a given day while the shadow world has the person off it: listed only "
        "through records about things they did not do. <em>Ever wrongly listed</em>: on at "
        "least one day of the run.",
    ),
    (
        "four-fifths",
        "Four-fifths band",
        "A group's rate divided by the reference group's rate is within [0.8, 1.25]: the "
        "four-fifths rule of US employment law, used as a screening threshold for disparity. "
        f"A disparity is flagged only outside the band, with an interval that excludes 1 and "
        f"at least {MIN_COUNT} people in each group's numerator (the small-number rule); other "
        "rows outside the band are shown greyed with their counts.",
    ),
    (
        "sanction-days",
        "Sanction-days",
        "One sanction in force on one person for one day. A day on a list with 12 sanctions is "
        "12 sanction-days. <em>Person-days of undeserved sanctions</em> count each person's day "
        "once: a day on which they were wrongly on at least one sanction list.",
    ),
    (
        "spillover",
        "Spillover",
        "Sanction-days that fall in a context (finance, mobility, education, ...) unrelated to "
        "the context of the records that caused the listing: the detrimental treatment in "
        "unrelated social contexts of EU AI Act Art. 5(1)(c)(i).",
    ),
    (
        "intervals",
        "Intervals",
        "Within-run: a 95% interval from one run (Wilson for shares, Katz for ratios, "
        "Greenwood for survival, Poisson for event counts); it covers which people happen to "
        "be in the run, not how the run could have gone otherwise. Across seeds: a Student t "
        "interval over K runs with different seeds, which includes run-to-run variation. "
        "Paired by seed: the interval of per-seed differences between a reform and its base "
        "(same seeds). Only across-seed intervals call a difference significant.",
    ),
]


def csv_text(rows: list[dict[str, Any]]) -> str:
    """Rows (dicts with the same keys) as CSV text."""
    if not rows:
        return ""
    buf = io.StringIO()
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    writer = csv.DictWriter(buf, keys, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _csv_value(r.get(k)) for k in keys})
    return buf.getvalue()


def _csv_value(x: Any) -> Any:
    if isinstance(x, list | tuple):
        return " ".join("" if v is None else str(v) for v in x)
    return "" if x is None else x


def _download(name: str, rows: list[dict[str, Any]], label: str = "Download the data (CSV)") -> str:
    """A link that saves `rows` as NAME.csv, from the page itself (a data: URL)."""
    if not rows:
        return ""
    href = "data:text/csv;charset=utf-8," + quote(csv_text(rows))
    file = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    return f'<p class=download><a download="{file}.csv" href="{href}">{label}</a></p>'


class _Page:
    """Numbers the figures (fixed div ids) and renders each one's div without plotly.js."""

    def __init__(self) -> None:
        self.count = 0
        self.ids: dict[str, str] = {}

    def figure(
        self, name: str, traces: list, layout: dict, data: list[dict[str, Any]] | None = None
    ) -> str:
        self.count += 1
        div_id = f"fig-{self.count}-" + re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        self.ids.setdefault(name, div_id)
        div = pio.to_html(
            go.Figure(traces, layout),
            include_plotlyjs=False,
            full_html=False,
            div_id=div_id,
            config=CONFIG,
        )
        return f'<div class="figure">{div}</div>' + _download(name, data or [])


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
    if 0 < abs(x) < 0.001:
        return f"{100 * x:.2g}%"
    return f"{100 * x:.1f}%"


def _interval(low: Any, high: Any) -> str:
    return "n/a" if low is None and high is None else f"[{_num(low)}, {_num(high)}]"


def _name(x: Any) -> str:
    return f"<td class=name>{_text(x)}</td>"


def _cell(x: Any, raw: bool = False) -> str:
    return f"<td class=num>{x if raw else _num(x)}</td>"


def _tr(flag: bool | str, *cells: str) -> str:
    """A table row; `flag` True (or "flag") highlights it, "grey" greys it."""
    name = "flag" if flag is True else flag or ""
    cls = f" class={name}" if name else ""
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
        "title": {
            "text": html.escape(title).replace("\n", "<br>"),  # a line break where asked
            "x": 0.01,
            "font": {"size": 15},
        },
        "height": height,
        "font": {"family": FONT, "size": 12, "color": INK},
        "margin": {"l": 60, "r": 20, "t": 50, "b": 80},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "legend": {"orientation": "h", "y": -0.3, "yanchor": "top"},
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


def _count(x: Any) -> str:
    """A count of people: whole numbers with separators; a mean over seeds as 'about N'."""
    if x is None or isinstance(x, bool) or not isinstance(x, int | float):
        return "n/a"
    if isinstance(x, float) and not x.is_integer():
        return f"about {x:,.0f}"
    return f"{int(x):,}"


def _row(metrics: dict, name: str) -> dict:
    return metrics.get(name) or {}


def _kind(doc: dict) -> str:
    return doc.get("interval") or (WITHIN_RUN if (doc.get("replicates") or 1) == 1 else "")


def _kind_note(doc: dict) -> str:
    kind = _kind(doc)
    return INTERVAL_KINDS.get(kind, "95% interval")


# Report.


def render_report(doc: dict, daily: pa.Table, path: Path) -> None:
    """Write the audit report of `doc` and the run's `daily` table to `path`."""
    page = _Page()
    run, metrics = doc.get("run") or {}, doc.get("metrics") or {}
    kind = _kind_note(doc)
    sections = [
        _time_section(page, daily, run.get("adults"), metrics),
        _survival_section(page, doc.get("survival") or {}, metrics),
        _disparity_section(page, doc.get("disparity") or [], kind),
        _spillover_section(page, doc.get("spillover") or {}, metrics),
        _proportionality_section(page, doc.get("proportionality") or [], metrics),
        _channel_section(page, doc.get("channels") or [], kind),
        _behaviour_section(page, doc.get("behaviour") or [], metrics),
        _company_section(page, doc.get("company"), metrics),
        _metrics_section(metrics),
        _glossary_section(),
        _run_section(run),
    ]
    body = _header(doc) + _findings(doc, page.ids) + "".join(sections)
    title = f"Xinyong audit: {_text(run.get('scenario'))}"
    Path(path).write_text(_html(title, body, with_plotly=page.count > 0), "utf-8")


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
        ("Intervals", _text(_kind(doc) or None)),
    ]
    warning = doc.get("warning")
    if warning is None and _kind(doc) == WITHIN_RUN:
        warning = (
            "One run: its intervals come from within the run and leave out run-to-run variation."
        )
    banner = f"<p class=warning>{_text(warning)}</p>" if warning else ""
    return (
        f"<header><h1>Xinyong audit report: {_text(run.get('scenario'))}</h1>{_facts(facts)}"
        f"{banner}<p class=lead>Synthetic population; every number below is about simulated "
        f"people. Definitions: the glossary at the end of this page and {DOCS} in the project."
        "</p></header>"
    )


def _links(ids: dict[str, str], chart: str | None, definition: str | None) -> str:
    out = []
    if chart and chart in ids:
        out.append(f'<a href="#{ids[chart]}">chart</a>')
    if definition:
        out.append(f'<a href="#def-{definition}">definition</a>')
    return " ".join(out)


def key_findings(doc: dict) -> list[tuple[str, str | None, str | None]]:
    """The report's opening in plain language: (sentence, chart name, glossary anchor)."""
    run, m = doc.get("run") or {}, doc.get("metrics") or {}
    out: list[tuple[str, str | None, str | None]] = []
    per_run = " per run" if (doc.get("replicates") or 1) > 1 else ""
    sanction = doc.get("sanction_lists")
    lists = [
        k.removeprefix("ever_wrongly_listed_share.")
        for k in m
        if k.startswith("ever_wrongly_listed_share.")
    ]
    if sanction is not None:
        lists = [lst for lst in lists if lst in sanction]
    lists.sort(key=lambda lst: (lst != "blacklist", lst))
    for lst in lists[:3]:
        now, ever = (
            _row(m, f"wrongly_listed_share.{lst}"),
            _row(m, f"ever_wrongly_listed_share.{lst}"),
        )
        if not ever.get("count"):
            continue
        out.append(
            (
                f"{_count(now.get('count'))} people wrongly on the {_text(lst)} at the end of the "
                f"run, {_count(ever.get('count'))} at some point{per_run} "
                f"({_pct(ever.get('value'))} of adults).",
                f"list-{lst}",
                "wrongly-listed",
            )
        )
    for r in doc.get("disparity") or []:
        if r.get("metric") != f"ever_wrongly_listed_share.{lists[0] if lists else ''}":
            continue
        if r.get("ratio") is None:
            continue
        verdict = (
            "a disparity outside the four-fifths band"
            if r.get("flag")
            else f"not flagged, {_text(r.get('status'))}"
        )
        out.append(
            (
                f"{_text(r.get('group')).capitalize()} adults were wrongly listed "
                f"{_num(r.get('ratio'))} times as often as {_text(r.get('reference'))} adults "
                f"({_count(r.get('numerator'))} against {_count(r.get('reference_numerator'))} "
                f"people): {verdict}.",
                "disparity",
                "four-fifths",
            )
        )
    days = _row(m, "undeserved_sanction_person_days").get("value")
    if days:
        out.append(
            (
                f"{_count(days)} person-days of undeserved sanctions{per_run}: days on which "
                "someone was on a sanction list only because of wrong records.",
                None,
                "sanction-days",
            )
        )
    only = _row(m, "children_restricted_only_by_wrong_records_share")
    ever_kids = _row(m, "children_ever_restricted_share")
    if ever_kids.get("count"):
        out.append(
            (
                f"{_count(only.get('count'))} children restricted only because of their "
                f"parents' wrong records; {_count(ever_kids.get('count'))} children restricted "
                "at some point.",
                None,
                "wrongly-listed",
            )
        )
    for lst in doc.get("survival") or {}:
        if lst != "blacklist":
            continue
        median = _row(m, f"median_stay_days.{lst}").get("value")
        mean = _row(m, f"mean_stay_days_restricted.{lst}").get("value")
        if median is not None:
            text = f"Half of the {_text(lst)} listings lasted {_num(median)} days or more."
        elif mean is not None:
            text = (
                f"More than half of the {_text(lst)} listings were still running at the end; "
                f"on average a listing lasted at least {_num(mean)} days (restricted mean)."
            )
        else:
            continue
        out.append((text, "survival", None))
    spill = _row(m, "spillover_share.blacklist").get("value")
    if spill is not None:
        out.append(
            (
                f"{_pct(spill)} of blacklist sanction-days hit a part of life unrelated to the "
                "records that caused the listing.",
                "spillover-blacklist",
                "spillover",
            )
        )
    never = _row(m, "wrong_records_never_corrected")
    if never.get("value") is not None:
        out.append(
            (
                f"{_pct(never.get('value'))} of wrong negative records "
                f"({_count(never.get('count'))} of {_count(never.get('of'))}) were never "
                "corrected on appeal.",
                None,
                None,
            )
        )
    change = _row(m, "negative_events_change").get("value")
    if change is not None:
        out.append(
            (
                f"With the scheme on, true negative behaviour changed by {_pct(change)} against "
                "the same world with the scheme off.",
                "behaviour",
                None,
            )
        )
    # Companies: their first finding (wrongful listing) and the ratings open the report too.
    found = company_findings(doc)
    picked = found[:1] + [f for f in found[1:] if f.startswith("Rated A")][:1]
    out += [(text, None, None) for text in picked]
    if not out and run:
        out.append((f"{_num(run.get('adults'))} adults simulated; nothing to report.", None, None))
    return out


def _findings(doc: dict, ids: dict[str, str]) -> str:
    items = "".join(
        f"<li>{text} <span class=links>{_links(ids, chart, definition)}</span></li>"
        for text, chart, definition in key_findings(doc)
    )
    return (
        '<section id="key-findings" class="findings"><h2>Key findings</h2>'
        f"<ul>{items or '<li>No findings: the audit document is empty.</li>'}</ul></section>"
    )


def _time_section(page: _Page, daily: pa.Table, adults: Any, metrics: dict) -> str:
    title = "Tiers and lists over time"
    note = (
        "Daily counts of adults. The shadow line is where adults would be if only correct "
        "records counted; the gap between the two lines is the work of wrong records. Each "
        "list has its own chart and scale."
    )
    cols = daily.column_names
    if "day" not in cols:
        return _section("time", title, note, "<p>No daily table.</p>")
    days = daily.column("day").to_pylist()

    def col(name: str) -> list:
        return daily.column(name).to_pylist()

    def names(prefix: str) -> list[str]:
        return [c.removeprefix(prefix) for c in cols if c.startswith(prefix)]

    figs = []
    tiers, lists = names("tier."), names("list.")
    if tiers:
        counts = [col(f"tier.{t}") for t in tiers]
        totals = [adults or sum(x for x in day if x) for day in zip(*counts, strict=True)]
        shares = [
            [None if c is None or not n else c / n for c, n in zip(cs, totals, strict=True)]
            for cs in counts
        ]
        shades = sample_colorscale(
            "RdYlGn", [1 - i / max(len(tiers) - 1, 1) for i in range(len(tiers))]
        )
        traces = [
            go.Scatter(
                x=days,
                y=ys,
                name=html.escape(t),
                stackgroup="tiers",
                line={"width": 0.5, "color": shade},
            )
            for t, ys, shade in zip(tiers, shares, shades, strict=True)
        ]
        last = {t: ys[-1] for t, ys in zip(tiers, shares, strict=True) if ys}
        heading = "Share of adults per tier"
        if last:
            top, bottom = tiers[0], tiers[-1]
            heading = (
                f"At the end, {_pct(last.get(top))} of adults are in tier {top} and "
                f"{_pct(last.get(bottom))} in tier {bottom}"
            )
        layout = _layout(
            heading,
            380,
            xaxis={"title": {"text": "day of the run"}},
            yaxis={"title": {"text": "share of adults"}, "tickformat": ".0%", "range": [0, 1]},
        )
        data = [
            {"day": d, **{t: counts[i][k] for i, t in enumerate(tiers)}} for k, d in enumerate(days)
        ]
        figs.append(page.figure("tiers", traces, layout, data))
    for i, lst in enumerate(lists):
        colour = PALETTE[i % len(PALETTE)]
        series = {
            "recorded": col(f"list.{lst}"),
            "shadow": col(f"shadow_list.{lst}") if f"shadow_list.{lst}" in cols else None,
            "wrongly listed": col(f"wrongly_listed.{lst}")
            if f"wrongly_listed.{lst}" in cols
            else None,
        }
        styles = {
            "recorded": {"color": colour, "width": 2},
            "shadow": {"color": colour, "width": 2, "dash": "dash"},
            "wrongly listed": {"color": FLAG, "width": 2},
        }
        traces = [
            go.Scatter(x=days, y=ys, name=f"{html.escape(lst)}: {label}", line=styles[label])
            for label, ys in series.items()
            if ys is not None
        ]
        on = series["recorded"][-1] if series["recorded"] else None
        wrong = series["wrongly listed"][-1] if series["wrongly listed"] else None
        ever = _row(metrics, f"ever_wrongly_listed_share.{lst}").get("count")
        heading = f"{lst}: {_count(on)} adults listed at the end"
        if wrong is not None:
            heading += f", {_count(wrong)} of them wrongly"
        if ever is not None:
            heading += f" ({_count(ever)} wrongly at some point)"
        layout = _layout(
            heading,
            340,
            xaxis={"title": {"text": "day of the run"}},
            yaxis={"title": {"text": "adults on the list"}, "rangemode": "tozero"},
        )
        data = [
            {"day": d, **{k: v[j] for k, v in series.items() if v is not None}}
            for j, d in enumerate(days)
        ]
        figs.append(page.figure(f"list-{lst}", traces, layout, data))
    return _section("time", title, note, "".join(figs) or "<p>No data.</p>")


def _survival_section(page: _Page, survival: dict, metrics: dict) -> str:
    title = "How long listings last"
    note = (
        "Kaplan-Meier share of list spells still running t days after they began (recorded "
        "world, censored at the end of the run), with its 95% within-run band. Where more than "
        "half are still running the median is undefined; the restricted mean (the mean of "
        "min(stay, longest stay seen)) is given instead."
    )
    traces, data, parts = [], [], []
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
                    fillcolor=_alpha(colour, 0.15),
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
        for k, day in enumerate(t):
            data.append(
                {
                    "list": lst,
                    "days_since_listing": day,
                    **{key: _at(curve.get(key), k) for key in ("s", "low", "high", "at_risk")},
                }
            )
        median = _row(metrics, f"median_stay_days.{lst}").get("value")
        mean = _row(metrics, f"mean_stay_days_restricted.{lst}").get("value")
        parts.append(
            f"{lst} median {_num(median)} d"
            if median is not None
            else f"{lst} mean {_num(mean)} d (restricted)"
        )
    if not traces:
        return _section("survival", title, note, "<p>No list spells.</p>")
    layout = _layout(
        "Time listed: " + "; ".join(parts[:2]) + ("\n" + "; ".join(parts[2:]) if parts[2:] else ""),
        440,
        margin={"l": 60, "r": 20, "t": 70, "b": 80},
        xaxis={"title": {"text": "days since listing"}, "rangemode": "tozero"},
        yaxis={
            "title": {"text": "share of spells still listed"},
            "tickformat": ".0%",
            "range": [0, 1.03],
        },
    )
    return _section("survival", title, note, page.figure("survival", traces, layout, data))


def _at(values: Any, k: int) -> Any:
    return values[k] if isinstance(values, list) and k < len(values) else None


def _disparity_section(page: _Page, rows: list, kind: str) -> str:
    title = "Disparity between groups"
    lo_band, hi_band = FOUR_FIFTHS
    note = (
        "Each group's rate divided by the reference group's, with its interval "
        f"({_text(kind)}), on a log scale. The shaded band [{lo_band}, {hi_band}] is the "
        "four-fifths rule. The small-number rule: a comparison is flagged (red, &#9873;) only "
        "outside the band, with an interval that excludes 1 and at least "
        f"{MIN_COUNT} people in each group's numerator; comparisons outside the band that fail "
        "it are grey, with their counts. Ratios at or below 0 sit at the left edge."
    )
    if not rows:
        return _section("disparity", title, note, "<p>No group comparisons.</p>")
    keys = ("ratio", "ratio_low", "ratio_high")
    raw = [r for r in rows if r.get("ratio") is not None]
    plotted = [
        {**r, **{k: None if r.get(k) is None else max(r[k], RATIO_FLOOR) for k in keys}}
        for r in raw
    ]

    def colour(r: dict) -> str:
        if r.get("flag"):
            return FLAG
        return GREY if r.get("outside_band") else OK

    content = ""
    if plotted:
        labels = [
            f"{'⚑ ' if r.get('flag') else ''}{_text(r.get('metric'))} · {_text(r.get('group'))}"
            f" ({_count(r.get('numerator'))} vs {_count(r.get('reference_numerator'))})"
            for r in plotted
        ]
        colours = [colour(r) for r in plotted]
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
                f"<br>{_text(r.get('status'))}"
                for r in raw
            ],
            hoverinfo="text",
            showlegend=False,
        )
        seen = [r[k] for r in plotted for k in keys if r[k] is not None] + [lo_band, hi_band]
        span = [min(seen) / 1.4, max(seen) * 1.4]
        ticks = [t for t in RATIO_TICKS if span[0] <= t <= span[1]]
        flagged = [r for r in raw if r.get("flag")]
        heading = (
            f"{len(flagged)} of {len(raw)} group comparisons flagged outside the four-fifths band"
        )
        layout = _layout(
            heading,
            150 + 30 * len(plotted),
            xaxis={
                "type": "log",
                "range": [math.log10(span[0]), math.log10(span[1])],
                "tickvals": ticks,
                "ticktext": [_num(t) for t in ticks],
                "title": {"text": "ratio to the reference group (log scale)"},
            },
            yaxis={
                "autorange": "reversed",
                "gridcolor": "#f0f1f3",
                "title": {"text": "metric · group (people: group vs reference)"},
            },
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
        content = page.figure("disparity", [bars, points], layout, _disparity_rows(rows))
    trs = "".join(
        _tr(
            "flag" if r.get("flag") else "grey" if r.get("outside_band") else "",
            _name(r.get("metric")),
            f"{_text(r.get('group'))} / {_text(r.get('reference'))}",
            _cell(r.get("value")),
            _cell(r.get("reference_value")),
            _cell(f"{_count(r.get('numerator'))} / {_count(r.get('reference_numerator'))}", True),
            _cell(r.get("ratio")),
            _cell(_interval(r.get("ratio_low"), r.get("ratio_high")), raw=True),
            _cell(r.get("difference")),
            _text(r.get("status")),
        )
        for r in rows
    )
    heads = ["Metric", "Group / reference", "Rate", "Reference rate", "People", "Ratio"]
    table = _table([*heads, "Interval", "Difference", "Status"], trs)
    details = (
        f"<details><summary>All group comparisons</summary>{table}"
        f"{_download('disparity-table', _disparity_rows(rows))}</details>"
    )
    return _section("disparity", title, note, content + details)


def _disparity_rows(rows: list) -> list[dict]:
    keys = ("metric", "group", "reference", "value", "reference_value", "numerator")
    keys += ("denominator", "reference_numerator", "reference_denominator", "ratio")
    keys += ("ratio_low", "ratio_high", "interval", "difference", "status", "flag")
    return [{k: r.get(k) for k in keys} for r in rows]


def _spillover_section(page: _Page, spillover: dict, metrics: dict) -> str:
    title = "Spillover into unrelated contexts"
    note = (
        "For each sanction list, the sanction-days that the records of each context brought, "
        "split into those imposed in the same or a related context (the scenario's "
        "audit.related_contexts) and those in an unrelated one: detrimental treatment in an "
        "unrelated social context (AI Act Art. 5(1)(c)(i))."
    )
    figs = []
    for lst, sp in spillover.items():
        causes = [_text(c) for c in sp.get("causes") or []]
        z = sp.get("sanction_days") or []
        related = sp.get("related") or []
        if not causes or not z:
            continue
        same = [
            sum(v or 0 for v, rel in zip(row, _at(related, i) or [], strict=False) if rel)
            for i, row in enumerate(z)
        ]
        other = [sum(v or 0 for v in row) - s for row, s in zip(z, same, strict=True)]
        traces = [
            go.Bar(
                y=causes,
                x=same,
                name="same or related context",
                orientation="h",
                marker={"color": OK},
                hovertemplate="%{y} records: %{x:,.0f} sanction-days in a related context"
                "<extra></extra>",
            ),
            go.Bar(
                y=causes,
                x=other,
                name="unrelated context",
                orientation="h",
                marker={"color": FLAG},
                hovertemplate="%{y} records: %{x:,.0f} sanction-days in an unrelated context"
                "<extra></extra>",
            ),
        ]
        share = _metric(metrics, f"spillover_share.{lst}")
        layout = _layout(
            f"{lst}: {_pct(share)} of sanction-days hit a context unrelated to their cause",
            max(260, 150 + 28 * len(causes)),
            barmode="stack",
            legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1, "xanchor": "right"},
            margin={"l": 60, "r": 20, "t": 70, "b": 60},
            xaxis={"title": {"text": "sanction-days (one sanction on one person for one day)"}},
            yaxis={"title": {"text": "context of the causing records"}, "autorange": "reversed"},
        )
        data = [
            {"list": lst, "cause": c, "related_days": s, "unrelated_days": o}
            for c, s, o in zip(sp.get("causes") or [], same, other, strict=False)
        ]
        figs.append(page.figure(f"spillover-{lst}", traces, layout, data))
    body = "".join(figs) or "<p>No sanction-list spell had causal records.</p>"
    return _section("spillover", title, note, body)


def _proportionality_section(page: _Page, rows: list, metrics: dict) -> str:
    title = "Proportionality"
    rho = _metric(metrics, "gravity_severity_rank_correlation")
    note = (
        "Each behaviour's gravity (1 minor to 5 grave) against the sanction-days each of its "
        "records brings; marker area follows the number of records, and each marker is named. "
        f"Spearman correlation {_num(rho)}: near 1, graver behaviour is sanctioned harder "
        "(AI Act Art. 5(1)(c)(ii))."
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
    xs, ys, sizes, hover, labels = [], [], [], [], []
    for g, level in sorted(levels.items()):
        step = min(0.5 / len(level), 0.08)  # spread one level's markers a little sideways
        for i, r in enumerate(level):
            xs.append(g + (i - (len(level) - 1) / 2) * step)
            ys.append(r["sanction_days_per_record"])
            sizes.append(7 + 26 * math.sqrt((r.get("records") or 0) / most))
            labels.append(_text(r.get("behaviour")))
            hover.append(
                f"{_text(r.get('behaviour'))}: gravity {_num(g)}, {_num(r.get('records'))} "
                f"records, {_num(r['sanction_days_per_record'])} sanction-days per record"
            )
    log = all(y > 0 for y in ys)
    trace = go.Scatter(
        x=xs,
        y=ys,
        mode="markers+text",
        text=labels,
        textposition="middle right",
        textfont={"size": 10},
        marker={"size": sizes, "color": OK, "opacity": 0.6, "line": {"color": "white", "width": 1}},
        hovertext=hover,
        hoverinfo="text",
        showlegend=False,
    )
    if rho is None:
        heading = "Sanction-days per record by gravity (too few behaviours to rank)"
    elif rho >= 0.7:
        heading = f"Graver behaviour brings more sanction-days (Spearman {_num(rho)})"
    else:
        heading = f"Sanction-days follow gravity only loosely (Spearman {_num(rho)})"
    layout = _layout(
        heading,
        460,
        xaxis={"title": {"text": "gravity of the behaviour (1 minor to 5 grave)"}, "dtick": 1},
        yaxis={
            "title": {"text": "sanction-days per record" + (" (log scale)" if log else "")},
            "type": "log" if log else "linear",
            "dtick": 1 if log else None,
        },
    )
    data = [
        {k: r.get(k) for k in ("behaviour", "gravity", "records", "sanction_days_per_record")}
        for r in points
    ]
    return _section(
        "proportionality", title, note, page.figure("proportionality", [trace], layout, data)
    )


def _channel_section(page: _Page, rows: list, kind: str) -> str:
    title = "False records by channel"
    note = (
        "Share of each observation channel's negative records that are misattributed or false "
        f"reports, with 95% Wilson intervals ({_text(kind)})."
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
    known = [r for r in rows if r.get("share") is not None]
    heading = "Wrong share of negative records"
    if known:
        worst = max(known, key=lambda r: r["share"])
        heading = (
            f"{worst.get('channel')} gets {_pct(worst['share'])} of its negative records wrong "
            f"({_count(worst.get('wrong'))} of {_count(worst.get('records'))})"
        )
    layout = _layout(
        heading,
        400,
        xaxis={"title": {"text": "observation channel"}},
        yaxis={
            "title": {"text": "wrong share of its negative records"},
            "tickformat": ".0%",
            "rangemode": "tozero",
        },
    )
    data = [
        {k: r.get(k) for k in ("channel", "records", "wrong", "share", "low", "high")} for r in rows
    ]
    return _section("channels", title, note, page.figure("channels", [trace], layout, data))


def _behaviour_section(page: _Page, rows: list, metrics: dict) -> str:
    title = "Behaviour change and its cost"
    if not rows:
        note = "No scheme-off baseline was run, so the change in behaviour is not measured."
        return _section("behaviour", title, note, "")

    def change(name: str) -> str:
        row = metrics.get(name) or {}
        return f"{_pct(row.get('value'))} [{_pct(row.get('low'))}, {_pct(row.get('high'))}]"

    note = (
        "Change in each negative behaviour's true events against the same world with the "
        f"scheme off (deterrence and distress). Negative events overall: "
        f"{change('negative_events_change')}; online speech (chilling effect): "
        f"{change('online_speech_change')}. The trade-off: "
        f"{_num(_metric(metrics, 'events_prevented_per_wrongly_listed'))} negative events "
        "prevented per adult wrongly on a sanction list. Positive behaviour is not shown: it "
        "does not respond to the scheme in this model, so it is the same in both worlds."
    )
    shown = [r for r in rows if r.get("change") is not None and r.get("sign") != "positive"]
    missing = [
        _text(r.get("behaviour"))
        for r in rows
        if r.get("change") is None and r.get("sign") != "positive"
    ]
    if missing:
        note += f" Not defined (no events with the scheme off): {', '.join(missing)}."
    if not shown:
        return _section("behaviour", title, note, "")
    trace = go.Bar(
        y=[f"{_text(r.get('behaviour'))} ({_text(r.get('context'))})" for r in shown],
        x=[r["change"] for r in shown],
        orientation="h",
        marker={"color": [FLAG if (r["change"] or 0) > 0 else OK for r in shown]},
        hovertext=[
            f"{_text(r.get('behaviour'))}: {_num(r.get('events'))} events, "
            f"{_num(r.get('baseline_events'))} with the scheme off ({_pct(r['change'])})"
            for r in shown
        ],
        hoverinfo="text",
        showlegend=False,
    )
    overall = _metric(metrics, "negative_events_change")
    heading = (
        f"With the scheme on, negative behaviour changes by {_pct(overall)}"
        if overall is not None
        else "Change in negative behaviour with the scheme on"
    )
    layout = _layout(
        heading,
        140 + 22 * len(shown),
        xaxis={"title": {"text": "change in true events against the scheme-off world"}},
        yaxis={
            "autorange": "reversed",
            "gridcolor": "#f0f1f3",
            "title": {"text": "behaviour (context)"},
        },
        margin={"l": 20, "r": 20, "t": 50, "b": 50},
    )
    layout["xaxis"]["tickformat"] = "+.0%"
    data = [
        {k: r.get(k) for k in ("behaviour", "context", "events", "baseline_events", "change")}
        for r in shown
    ]
    return _section("behaviour", title, note, page.figure("behaviour", [trace], layout, data))


def _metric_rows(metrics: dict) -> list[dict]:
    keys = ("value", "low", "high", "interval", "count", "of", "meaning", "maps_to")
    return [{"metric": name, **{k: row.get(k) for k in keys}} for name, row in metrics.items()]


def _metrics_section(metrics: dict) -> str:
    note = (
        "Every audit metric with its count of people (where it is a share), its 95% interval "
        "and the kind of interval, what it means, and the legal test or convention it maps to "
        "(EU AI Act Art. 5(1)(c)(i)/(ii), GDPR Art. 22, the four-fifths rule). Full "
        f"definitions: {DOCS}."
    )
    trs = "".join(
        _tr(
            "",
            _name(name),
            _cell(row.get("value")),
            _cell(
                ""
                if row.get("count") is None
                else f"{_count(row['count'])} of {_count(row['of'])}",
                raw=True,
            ),
            _cell(_interval(row.get("low"), row.get("high")), raw=True),
            _text(row.get("interval")),
            _text(row.get("meaning")),
            _text(row.get("maps_to") or None),
        )
        for name, row in metrics.items()
    )
    heads = ["Metric", "Value", "People", "95% interval", "Kind", "Meaning", "Maps to"]
    table = f"<div class=scroll>{_table(heads, trs)}</div>" + _download(
        "metrics", _metric_rows(metrics)
    )
    return _section("metrics", "Metrics", note, table if metrics else "<p>No metrics.</p>")


def _glossary_section() -> str:
    items = "".join(
        f'<dt id="def-{anchor}">{term}</dt><dd>{text}</dd>' for anchor, term, text in GLOSSARY
    )
    return (
        '<section id="definitions"><h2>Definitions</h2>'
        f"<dl class=glossary>{items}</dl><p class=note>The model, every parameter and every "
        f"metric: {DOCS} in the project.</p></section>"
    )


def _run_section(run: dict) -> str:
    intervals = run.get("intervals") or {}
    rows = [
        (key, value, intervals.get(key) or [None, None])
        for key, value in run.items()
        if not isinstance(value, dict | list)
    ]
    trs = "".join(
        _tr("", _name(key), _cell(value), _cell(_interval(*iv), raw=True))
        for key, value, iv in rows
    )
    table = _table(["Key", "Value", "95% interval"], trs)
    data = [{"key": k, "value": v, "low": iv[0], "high": iv[1]} for k, v, iv in rows]
    return (
        "<section id=run><h2>Run summary</h2><details><summary>The run's summary metrics "
        f"({DOCS}, 'Summary metrics'; means over replicates where there are several)</summary>"
        f"{table}{_download('summary', data)}</details></section>"
    )


# Comparison.


def render_compare(doc: dict, path: Path) -> None:
    """Write the comparison of two runs (`xinyong compare`) to `path`."""
    from xinyong.audit.compare import KEY_METRICS

    page = _Page()
    a, b = doc.get("a") or {}, doc.get("b") or {}
    rows = doc.get("rows") or []
    title = (
        f"Xinyong comparison: {_text(b.get('path'))} ({_text(b.get('scenario'))}) against "
        f"{_text(a.get('path'))} ({_text(a.get('scenario'))})"
    )

    def seeds(side: dict) -> str:
        got = side.get("seeds")
        return _text(", ".join(map(str, got))) if got else _num(side.get("seed"))

    sides = "".join(
        f"<section><h2>{label}</h2>"
        + _facts(
            [
                ("Path", _text(side.get("path"))),
                ("Scenario", _text(side.get("scenario"))),
                ("Seeds", seeds(side)),
                ("Replicates", _num(side.get("replicates"))),
            ]
        )
        + "</section>"
        for label, side in (("A (base)", a), ("B (reform)", b))
    )
    params = doc.get("parameters")
    if params is None:
        changed = ""
    elif params:
        trs = "".join(
            _tr(
                "",
                _name(p.get("key")),
                _cell(_value(p.get("a")), True),
                _cell(_value(p.get("b")), True),
            )
            for p in params
        )
        changed = (
            "<section id=parameters><h2>What differs between A and B</h2>"
            "<p class=note>Every scenario parameter whose value differs (from each run's "
            f"scenario.yaml).</p><div class=scroll>{_table(['Parameter', 'A', 'B'], trs)}</div>"
            "</section>"
        )
    else:
        changed = (
            "<section id=parameters><h2>What differs between A and B</h2><p>No scenario "
            "parameter differs.</p></section>"
        )
    warning = doc.get("warning")
    banner = (
        f"<p class=warning>{_text(warning)}</p>"
        if warning
        else f"<p class=note>Intervals: {_text(doc.get('interval_meaning'))}.</p>"
    )
    by_name = {r.get("metric"): r for r in rows}
    figs = []
    for name in KEY_METRICS:
        r = by_name.get(name)
        if r is None or r.get("a") is None or r.get("b") is None:
            continue
        figs.append(_side_by_side(page, r))
    plots = (
        "<section id=key-metrics><h2>Key metrics, A and B side by side</h2>"
        f"<p class=note>Each side's value with its interval; the title gives B &minus; A and "
        f"its interval ({_text(doc.get('interval') or 'n/a')}).</p>"
        f"<div class=grid>{''.join(figs)}</div></section>"
        if figs
        else ""
    )
    trs = "".join(
        _tr(
            "flag" if r.get("significant") else "",
            _name(r.get("metric")),
            _text(r.get("meaning")),
            _cell(r.get("a")),
            _cell(r.get("b")),
            _cell(r.get("difference")),
            _cell(_interval(r.get("low"), r.get("high")), raw=True),
            _text(r.get("kind")),
            _cell(bool(r.get("significant"))),
        )
        for r in rows
    )
    significant = sum(bool(r.get("significant")) for r in rows)
    tested = any(r.get("kind") in ("paired-seeds", "across-seeds") for r in rows)
    count = (
        f"{significant} of {len(rows)} metrics differ significantly: the across-seed 95% "
        "interval of B &minus; A excludes 0 (highlighted rows)."
        if tested
        else f"None of the {len(rows)} metrics is called significant: one run a side."
    )
    heads = ["Metric", "Meaning", "A", "B", "B &minus; A", "95% interval", "Kind", "Significant"]
    table = (
        f"<section id=table><h2>Metrics, B against A</h2><p class=note>{count} Metrics "
        f"without an interval on both sides get none. Definitions: {DOCS}.</p>"
        f"<div class=scroll>{_table(heads, trs)}</div>"
        f"{_download('compare', [_flat(r) for r in rows])}</section>"
    )
    header = f"<header><h1>{title}</h1>{banner}</header>"
    body = header + sides + changed + plots + table
    Path(path).write_text(_html(title, body, with_plotly=page.count > 0), "utf-8")


def _value(x: Any) -> str:
    return _text(x) if not isinstance(x, int | float) or isinstance(x, bool) else _num(x)


def _flat(r: dict) -> dict:
    keys = ("metric", "a", "a_low", "a_high", "b", "b_low", "b_high", "difference", "low")
    keys += ("high", "kind", "significant", "meaning")
    return {k: r.get(k) for k in keys}


def _side_by_side(page: _Page, r: dict) -> str:
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
        error_y=_errors(pts, "value", "low", "high"),
        showlegend=False,
        hovertext=[
            f"{p['side']}: {_num(p['value'])} {_interval(p['low'], p['high'])}" for p in pts
        ],
        hoverinfo="text",
    )
    verdict = (
        "significant"
        if r.get("significant")
        else "not significant"
        if r.get("kind") in ("paired-seeds", "across-seeds")
        else "one run a side: not tested"
    )
    heading = (
        f"{name}\nB − A = {_num(r.get('difference'))} "
        f"{_interval(r.get('low'), r.get('high'))}, {verdict}"
    )
    layout = _layout(
        heading,
        320,
        xaxis={"title": {"text": "run"}},
        yaxis={"title": {"text": "value (see the title)"}, "rangemode": "tozero"},
        margin={"l": 60, "r": 20, "t": 70, "b": 50},
    )
    layout["title"]["font"] = {"size": 12}
    return f"<div>{page.figure(f'key-{name}', [trace], layout, pts)}</div>"


# Sweep.


def render_sweep(doc: dict, path: Path) -> None:
    """Write a sweep's curves (`xinyong sweep`): one chart per key metric, mean and interval
    across seeds at each grid point."""
    page = _Page()
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
                    error_y=_errors(pts, "value", "low", "high"),
                )
            )
            data += [{"metric": name, **({"other": other} if other else {}), **q} for q in pts]
        known = [q for q in data if q["value"] is not None]
        heading = name
        if len(known) >= 2:
            lo, hi = known[0], known[-1]
            trend = (
                "rises"
                if hi["value"] > lo["value"]
                else "falls"
                if hi["value"] < lo["value"]
                else "stays"
            )
            heading = (
                f"{name} {trend} from {_num(lo['value'])} at {x_key} = {_value(lo[x_key])} to "
                f"{_num(hi['value'])} at {_value(hi[x_key])}"
            )
        layout = _layout(
            heading,
            360,
            xaxis={"title": {"text": x_key}},
            yaxis={"title": {"text": name}, "rangemode": "tozero"},
        )
        figs.append(page.figure(f"sweep-{name}", traces, layout, data))
    sc = _text(doc.get("scenario"))
    title = f"Xinyong sweep: {sc} over {_text(', '.join(keys))}"
    note = (
        f"{_num(doc.get('replicates'))} seeds at each grid point ({_text(doc.get('seeds'))}); "
        "each point is the mean over the seeds with its 95% Student t interval across seeds. "
        f"Definitions: {DOCS}."
    )
    body = (
        f"<header><h1>{title}</h1><p class=note>{note}</p></header>"
        f"<section id=curves><h2>Key metrics</h2>{''.join(figs) or '<p>No points.</p>'}"
        "</section>"
    )
    Path(path).write_text(_html(title, body, with_plotly=page.count > 0), "utf-8")


# Companies.


def company_findings(doc: dict) -> list[str]:
    """The Companies section's key findings in plain language (counts where they are small)."""
    co = doc.get("company")
    if not co:
        return []
    m = doc.get("metrics") or {}
    out = []
    rows = co.get("wrongly_listed") or []
    for lst in co.get("lists") or []:
        mine = [r for r in rows if r.get("list") == lst]
        ever = sum(r.get("ever_wrong") or 0 for r in mine)
        if not ever:
            continue
        parts = ", ".join(
            f"{_count(r.get('ever_wrong'))} of {_count(r.get('companies'))} {_text(r.get('size'))}"
            for r in mine
            if r.get("ever_wrong")
        )
        now = sum(r.get("wrong") or 0 for r in mine)
        out.append(
            f"{_count(ever)} companies were wrongly on the {_text(lst)} at some point ({parts}); "
            f"{_count(now)} still at the end."
        )
    if not out and rows:
        out.append("No company was ever wrongly on a company list.")
    ratings = co.get("ratings") or []
    if ratings:
        last = max(r.get("year") or 0 for r in ratings)
        rec = [r for r in ratings if r.get("year") == last and r.get("world") == "recorded"]
        parts = ", ".join(
            f"{_text(r.get('size'))} {_count(r.get('a'))} of {_count(r.get('rated'))}"
            + (f" ({_pct(r.get('a_share'))})" if (r.get("rated") or 0) >= MIN_COUNT else "")
            for r in rec
        )
        out.append(f"Rated A in tax year {_num(last)}: {parts}.")
    median = _row(m, "company.median_stay_days.company_blacklist").get("value")
    spells = _row(m, "company.spells.company_blacklist").get("value")
    if spells:
        mean = _row(m, "company.mean_stay_days_restricted.company_blacklist").get("value")
        out.append(
            f"Half of the {_count(spells)} company_blacklist listings lasted {_num(median)} days "
            "or more."
            if median is not None
            else f"More than half of the {_count(spells)} company_blacklist listings were still "
            f"running at the end (restricted mean {_num(mean)} days)."
        )
    for p in co.get("persons") or []:
        if not p.get("ever_listed"):
            continue
        out.append(
            f"{_count(p.get('ever_listed'))} legal representatives were put on "
            f"{_text(p.get('list'))} because a company of theirs was on "
            f"{_text(p.get('follows'))} ({_count(p.get('ever_wrong'))} of them wrongly at some "
            f"point); {_count(p.get('listed'))} at the end, {_count(p.get('wrong'))} wrongly."
        )
    kids = co.get("children") or {}
    if kids.get("only_ever"):
        out.append(
            f"{_count(kids.get('only_ever'))} children were restricted at some point only because "
            f"a parent's company defaulted ({_count(kids.get('only_at_T'))} at the end)."
        )
    return out


def _company_section(page: _Page, co: dict | None, metrics: dict) -> str:
    if not co:
        return ""
    title = "Companies"
    note = (
        "Companies are rated each tax year and listed by the company lists; their legal "
        "representatives (adults of the run) follow them onto person lists. Wrongly listed: "
        "on a list while the shadow world (correct records only) has the company off it. "
        "Micro firms draw more same-name misattributions (the market_regulator channel's size "
        "weights). Intervals: 95% Wilson, within-run. Small counts are given as counts."
    )
    items = "".join(f"<li>{t}</li>" for t in company_findings({"company": co, "metrics": metrics}))
    findings = f"<ul>{items}</ul>" if items else ""
    figs = []
    rows = co.get("wrongly_listed") or []
    sizes = co.get("sizes") or []
    lists = [
        lst
        for lst in co.get("lists") or []
        if any(r.get("list") == lst and r.get("ever_listed") for r in rows)
    ]
    if rows and lists:
        traces = []
        for i, size in enumerate(sizes):
            mine = [next((r for r in rows if r["list"] == lst and r["size"] == size), {})
                    for lst in lists]  # fmt: skip
            traces.append(
                go.Bar(
                    x=[html.escape(lst) for lst in lists],
                    y=[r.get("ever_wrong_share") for r in mine],
                    name=html.escape(str(size)),
                    marker={"color": PALETTE[i % len(PALETTE)]},
                    error_y=_errors(mine, "ever_wrong_share", "ever_wrong_low", "ever_wrong_high"),
                    hovertext=[
                        f"{_text(size)}: {_count(r.get('ever_wrong'))} of "
                        f"{_count(r.get('companies'))} companies ever wrongly listed"
                        for r in mine
                    ],
                    hoverinfo="text",
                )
            )
        by_size = {
            size: sum(r.get("ever_wrong") or 0 for r in rows if r["size"] == size) for size in sizes
        }
        n_size = {
            size: next((r.get("companies") for r in rows if r["size"] == size), 0) for size in sizes
        }
        worst = max(
            sizes, key=lambda s: (by_size[s] / n_size[s]) if n_size.get(s) else -1, default=None
        )
        heading = "Companies ever wrongly listed, by size"
        if worst is not None and by_size.get(worst):
            heading = (
                f"{worst} firms are the most often wrongly listed: {_count(by_size[worst])} "
                f"listings of {_count(n_size[worst])} {worst} firms"
            )
        layout = _layout(
            heading,
            400,
            barmode="group",
            xaxis={"title": {"text": "company list"}},
            yaxis={
                "title": {"text": "share of the size class ever wrongly on it"},
                "tickformat": ".1%",
                "rangemode": "tozero",
            },
        )
        figs.append(page.figure("company-wrongly-listed", traces, layout, rows))
    ratings = co.get("ratings") or []
    if ratings:
        traces = []
        for world in ("recorded", "shadow"):
            for j, grade in enumerate(("a", "d")):
                mine = [r for r in ratings if r.get("world") == world]
                traces.append(
                    go.Bar(
                        x=[f"{_text(r.get('size'))}, year {_num(r.get('year'))}" for r in mine],
                        y=[r.get(f"{grade}_share") for r in mine],
                        name=f"rated {grade.upper()} ({world})",
                        marker={
                            "color": (GOOD, FLAG)[j],
                            "opacity": 1.0 if world == "recorded" else 0.45,
                        },
                        error_y=_errors(mine, f"{grade}_share", f"{grade}_low", f"{grade}_high"),
                        hovertext=[
                            f"{_text(r.get('size'))}, year {_num(r.get('year'))} ({world}): "
                            f"{_count(r.get(grade))} of {_count(r.get('rated'))} rated "
                            f"{grade.upper()}"
                            for r in mine
                        ],
                        hoverinfo="text",
                    )
                )
        rec = [r for r in ratings if r.get("world") == "recorded" and r.get("rated")]
        heading = "Share rated A and D by size and tax year"
        if rec:
            last = max(r["year"] for r in rec)
            top = max((r for r in rec if r["year"] == last), key=lambda r: r.get("a_share") or 0)
            heading = (
                f"In tax year {last}, {top['size']} firms are the most often rated A "
                f"({_count(top.get('a'))} of {_count(top.get('rated'))})"
            )
        layout = _layout(
            heading,
            420,
            barmode="group",
            xaxis={"title": {"text": "size class, tax year"}},
            yaxis={
                "title": {"text": "share of the rated companies"},
                "tickformat": ".0%",
                "rangemode": "tozero",
            },
        )
        figs.append(page.figure("company-ratings", traces, layout, ratings))
    curve = (co.get("survival") or {}).get("company_blacklist")
    if curve:
        t = curve.get("t") or []
        traces = [
            go.Scatter(
                x=t,
                y=curve.get(bound) or [],
                line={"shape": "hv", "width": 0, "color": OK},
                fill="tonexty" if bound == "low" else None,
                fillcolor=_alpha(OK, 0.15),
                showlegend=False,
                hoverinfo="skip",
            )
            for bound in ("high", "low")
        ]
        traces.append(
            go.Scatter(
                x=t,
                y=curve.get("s") or [],
                name="company_blacklist",
                line={"shape": "hv", "width": 2, "color": OK},
            )
        )
        median = _row(metrics, "company.median_stay_days.company_blacklist").get("value")
        heading = (
            f"company_blacklist: half of the listings last {_num(median)} days or more"
            if median is not None
            else "company_blacklist: more than half of the listings are still running at the end"
        )
        layout = _layout(
            heading,
            380,
            xaxis={"title": {"text": "days since listing"}, "rangemode": "tozero"},
            yaxis={
                "title": {"text": "share of spells still listed"},
                "tickformat": ".0%",
                "range": [0, 1.03],
            },
        )
        data = [
            {"days_since_listing": d, **{k: _at(curve.get(k), i) for k in ("s", "low", "high",
                                                                           "at_risk")}}
            for i, d in enumerate(t)
        ]  # fmt: skip
        figs.append(page.figure("company-survival", traces, layout, data))
    persons = co.get("persons") or []
    trs = "".join(
        _tr(
            bool(p.get("ever_wrong")),
            _name(p.get("list")),
            _name(p.get("follows")),
            _cell(p.get("listed")),
            _cell(p.get("wrong")),
            _cell(p.get("ever_listed")),
            _cell(p.get("ever_wrong")),
            _cell(p.get("legal_representatives")),
        )
        for p in persons
    )
    heads = ["Person list", "Follows", "At T", "Wrongly at T", "Ever", "Ever wrongly"]
    table = (
        _table([*heads, "Legal representatives"], trs) + _download("company-persons", persons)
        if persons
        else ""
    )
    return _section("companies", title, note, findings + "".join(figs) + table)
