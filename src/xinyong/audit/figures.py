"""Figures of the audit's pages: plotly charts with fixed div ids (the same inputs give the
same page, byte for byte), their shared layout, error bars and colours, and each chart's data
as a CSV download (a data: link, nothing fetched)."""

from __future__ import annotations

import csv
import html
import io
import re
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


def layout(title: str, height: int, **kw: Any) -> dict:
    """The pages' chart layout: a title that states the finding, labelled axes."""
    axis = {
        "gridcolor": "#e6e8ec",
        "zerolinecolor": "#b8bdc6",
        "automargin": True,
        "tickformat": NUMBER_TICKS,
    }
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
    return [
        {**keys, "days_since_listing": day, **{c: curve[c][i] for c in cols}}
        for i, day in enumerate(curve.get("t") or [])
    ]
