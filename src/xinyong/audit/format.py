"""Numbers and text as the audit's pages write them. Every helper returns escaped HTML (plotly
reads a subset of HTML in its labels, so they are escaped too); the templates use them as
filters."""

from __future__ import annotations

import html
import math
import re
from typing import Any

from xinyong.words import number


def text(x: Any) -> str:
    """A value as escaped text; None as n/a."""
    return "n/a" if x is None else html.escape(str(x))


def name(x: Any) -> str:
    """An id as escaped text that wraps only after its _ . - / (never mid-word), for tables'
    name columns."""
    return re.sub(r"([_./-])", r"\1<wbr>", text(x))


def num(x: Any) -> str:
    """A number as `xinyong.words.number` writes it (separators, three significant digits,
    float noise as 0, never an exponent); anything else as text."""
    if x is None or isinstance(x, int | float):
        return "n/a" if isinstance(x, float) and math.isinf(x) else number(x)
    return html.escape(str(x))


def pct(x: Any) -> str:
    """A share as a percentage (two significant digits under 0.1%)."""
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return "n/a"
    if 0 < abs(x) < 0.001:
        return f"{100 * x:.2g}%"
    return f"{100 * x:.1f}%"


def interval(low: Any, high: Any) -> str:
    """[low, high], or n/a when both are missing."""
    return "n/a" if low is None and high is None else f"[{num(low)}, {num(high)}]"


def count(x: Any) -> str:
    """A count of people: whole numbers with separators; a mean over seeds as 'about N'."""
    if x is None or isinstance(x, bool) or not isinstance(x, int | float):
        return "n/a"
    if isinstance(x, float) and not x.is_integer():  # under 10 a whole number would read as 0
        return f"about {x:.1f}" if abs(x) < 10 else f"about {x:,.0f}"
    return f"{int(x):,}"


def counted(x: Any, one: str, many: str) -> str:
    """A count with its noun: '1 person', '12 people', 'about 3 people' (a mean over seeds)."""
    return f"{count(x)} {one if x == 1 and not isinstance(x, bool) else many}"


def value(x: Any) -> str:
    """A parameter's value: numbers as `num`, anything else as text."""
    return text(x) if not isinstance(x, int | float) or isinstance(x, bool) else num(x)


def row(metrics: dict, name: str) -> dict:
    """A metric's row of an audit document ({} when absent)."""
    return metrics.get(name) or {}


def at(values: Any, k: int) -> Any:
    """values[k], or None past the end or when there is no list."""
    return values[k] if isinstance(values, list) and k < len(values) else None
