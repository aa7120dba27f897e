"""Figures of the audit's pages: plotly charts with fixed div ids (the same inputs give the
same page, byte for byte), their shared layout, error bars and colours, and each chart's data
as a CSV download (a data: link, nothing fetched)."""

from __future__ import annotations

import csv
import html
import io
import re
import textwrap
from typing import Any
from urllib.parse import quote

import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup

CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"scale": 2}}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
PALETTE = ["#1f5f99", "#d1495b", "#2e8b57", "#e39c2b", "#6a4c93", "#00798c", "#8c564b", "#666666"]
FLAG, OK, GOOD, INK, GREY = "#c0392b", "#1f5f99", "#2e8b57", "#1d2330", "#9aa1ab"
# Tick labels as numbers are written (1,200 and 0.0002), never plotly's SI prefixes (1.2k,
# 200μ): three significant digits, trailing zeros dropped.
NUMBER_TICKS = ",.3~r"


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


def download(name: str, rows: list[dict[str, Any]], label: str = "Download the data (CSV)") -> str:
    """A link that saves `rows` as NAME.csv, from the page itself (a data: URL)."""
    if not rows:
        return ""
    href = "data:text/csv;charset=utf-8," + quote(csv_text(rows))
    file = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    return f'<p class=download><a download="{file}.csv" href="{href}">{label}</a></p>'


class Page:
    """Numbers a page's figures (fixed div ids) and renders each one's div without plotly.js;
    `ids` maps a figure's name to its div id (the key findings link to them)."""

    def __init__(self) -> None:
        self.count = 0
        self.ids: dict[str, str] = {}

    def figure(
        self, name: str, traces: list, layout: dict, data: list[dict[str, Any]] | None = None
    ) -> Markup:
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
        return Markup(f'<div class="figure">{div}</div>' + download(name, data or []))


# A chart is as wide as a phone's screen at 390 px: its title, axis titles and legend are
# laid out for that width (a wider screen only has room to spare).
TITLE_CHARS = 36  # characters of a 15 px title line
AXIS_CHARS = 22  # characters of an axis title line
LINE_PX = 20  # height of a title or legend line
PHONE_PX = 260  # width a legend wraps at on a phone


def wrap(words: str, width: int) -> list[str]:
    """Lines of at most `width` characters, broken between words (never inside one); a line
    break asked for ("\n" or "<br>") is kept."""
    lines = []
    for part in re.split(r"\n|<br>", words):
        lines += textwrap.wrap(part, width, break_long_words=False, break_on_hyphens=False) or [""]
    return lines


def _legend_rows(traces_names: list[str]) -> int:
    """Rows a horizontal legend of these entries takes on a phone (about 8 px a character
    and 40 px for the symbol and the gap)."""
    row, rows = 0.0, 1
    for name in traces_names:
        wide = 40 + 8 * len(re.sub(r"<[^>]+>|&[a-z]+;", "x", name))
        if row and row + wide > PHONE_PX:
            rows, row = rows + 1, 0.0
        row += wide
    return rows


def legend_of(traces: list) -> list[str]:
    """The names a chart's legend shows: its named traces not left out of it."""
    return [t.name for t in traces if t.name and t.showlegend is not False]


def _axis_title(axis: dict) -> dict:
    """An axis title in lines that fit a phone (the words already escaped)."""
    title = axis.get("title")
    if not isinstance(title, dict) or not title.get("text"):
        return axis
    return {**axis, "title": {**title, "text": "<br>".join(wrap(title["text"], AXIS_CHARS))}}


def layout(title: str, height: int, legend: list[str] | None = None, **kw: Any) -> dict:
    """The pages' chart layout: a title that states the finding, in lines that fit a phone;
    labelled axes, automargins and few enough ticks for a phone; the legend (`legend`: its
    entries' names, if one is shown) between the title and the plot."""
    axis = {
        "gridcolor": "#e6e8ec",
        "zerolinecolor": "#b8bdc6",
        "automargin": True,
        "tickformat": NUMBER_TICKS,
    }
    size = kw.pop("title_size", None) or 15
    lines = [html.escape(line) for line in wrap(title, TITLE_CHARS * 15 // size)]
    # The legend spans the plot's width: where long row names narrow the plot, the caller
    # says how many rows it takes (`legend_rows`).
    rows = kw.pop("legend_rows", None) or (_legend_rows(legend) if legend else 0)
    top = 24 + len(lines) * (size + 5) + (rows * LINE_PX + 8 if rows else 0)
    margin = {"l": 60, "r": 20, "t": 50, "b": 80, **kw.pop("margin", {})}
    margin["t"] = max(margin["t"], top)
    # Without its entries' names the legend keeps plotly's rule (shown for several traces),
    # under the plot.
    placed = (
        {"showlegend": bool(legend), "legend": {"orientation": "h", "x": 0, "xanchor": "left",
                                                 "y": 1, "yanchor": "bottom", "yref": "paper"}}
        if legend is not None
        else {"legend": {"orientation": "h", "y": -0.3, "yanchor": "top"}}
    )  # fmt: skip
    return {
        "template": "none",
        "title": {
            "text": "<br>".join(lines),
            "x": 0.01,
            "xref": "container",
            "y": 1,
            "yref": "container",
            "yanchor": "top",
            "pad": {"t": 16},
            "font": {"size": size},
        },
        "height": height + margin["t"] - 50,  # the plot keeps its height under a long title
        "font": {"family": FONT, "size": 12, "color": INK},
        "margin": margin,
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        **placed,
        **kw,
        "xaxis": _axis_title({**axis, "nticks": 4, **kw.get("xaxis", {})}),
        "yaxis": _axis_title({**axis, **kw.get("yaxis", {})}),
    }


def errors(rows: list[dict], value: str, low: str, high: str) -> dict:
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


def alpha(colour: str, a: float) -> str:
    """A #rrggbb colour with opacity `a`."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{a})"


def curve_rows(curve: dict, **keys: Any) -> list[dict]:
    """A survival curve as CSV rows (`keys` first): S(t), its band, and the spells at risk
    (one run) or the seeds averaged (a replicate set)."""
    cols = [c for c in ("s", "low", "high", "at_risk", "seeds") if curve.get(c) is not None]

    def at(c: str, i: int) -> Any:  # a short or missing list reads None
        return curve[c][i] if i < len(curve[c]) else None

    return [
        {**keys, "days_since_listing": day, **{c: at(c, i) for c in cols}}
        for i, day in enumerate(curve.get("t") or [])
    ]
