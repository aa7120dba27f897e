"""Words and numbers as a reader sees them, in the terminal, the pages and the report.

One place for: counts with their noun in the right number ("1 person", "2 people"), numbers
that never show float noise (a sum that should be 0 and came out 1e-19 reads "0"), names
made of ids ("transport_ban" reads "transport ban") and did-you-mean hints for mistyped keys.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable

# Below this a float is what is left of summing or subtracting numbers that cancel, not a
# value: doubles carry 16 digits, and no share, rate or mean the audit reports is smaller
# than one person in 10 billion.
NOISE = 1e-10

_IRREGULAR = {"person": "people", "child": "children", "person-day": "person-days"}


def plural(count: float, noun: str, many: str | None = None) -> str:
    """`count` with its noun: plural(1, "person") -> "1 person", plural(2011, "city") ->
    "2,011 cities". `many` gives a plural the rules below do not know."""
    return f"{number(count)} {noun if count == 1 else (many or plural_of(noun))}"


def plural_of(noun: str) -> str:
    """The plural of an English noun: person -> people, city -> cities, match -> matches."""
    head, sep, last = noun.rpartition(" ")
    if last in _IRREGULAR:
        return head + sep + _IRREGULAR[last]
    if last.endswith("y") and last[-2:-1] not in tuple("aeiou"):
        return head + sep + last[:-1] + "ies"
    if last.endswith(("s", "x", "z", "ch", "sh")):
        return head + sep + last + "es"
    return head + sep + last + "s"


def is_noise(x: float) -> bool:
    """A float too small to be anything but rounding left over (see NOISE)."""
    return abs(x) < NOISE


def number(x: object, digits: int = 3) -> str:
    """A number for reading: whole numbers with thousands separators, others to `digits`
    significant digits without exponents, float noise as 0, None and NaN as "n/a"."""
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if not isinstance(x, float):
        return str(x)
    if not math.isfinite(x):
        return "n/a" if math.isnan(x) else ("-" if x < 0 else "") + "infinite"
    if is_noise(x):
        return "0"
    if abs(x) >= 10 ** (digits - 1) or x == int(x):
        return f"{round(x):,}"
    # Significant digits, then written out in full: 0.000123, never 1.23e-04.
    places = digits - 1 - math.floor(math.log10(abs(x)))
    text = f"{round(x, places):,.{max(places, 0)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "0") else text


def percent(x: object, digits: int = 1) -> str:
    """A share as a percentage: 0.1234 -> "12.3%"; shares under 0.1% keep two significant
    digits (0.00042 -> "0.042%"), float noise reads "0%"."""
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return "n/a"
    if is_noise(x):
        return "0%"
    if abs(x) < 0.001:
        return number(100 * x, 2) + "%"
    return f"{100 * x:.{digits}f}%"


def count_of(count: object, of: object) -> str:
    """People behind a share: "3 of 2,011"."""
    return f"{number(count)} of {number(of)}"


def label(identifier: str) -> str:
    """An id as words: "transport_ban" -> "transport ban", "national-defaulters" ->
    "national defaulters". Dotted metric names keep their dots."""
    return identifier.replace("_", " ").replace("-", " ").strip()


def metric_words(name: str) -> str:
    """A metric's id as words, its dotted parts apart: "wrongly_listed_share.blacklist" reads
    "wrongly listed share, blacklist"."""
    return ", ".join(label(part) for part in name.split("."))


def listing(items: Iterable[str], last: str = "and") -> str:
    """ "a", "a and b", "a, b and c"."""
    words = list(items)
    if len(words) < 2:
        return "".join(words)
    return f"{', '.join(words[:-1])} {last} {words[-1]}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """ " (did you mean 'misattribute'?)" when a choice is close to `word`, else ""."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


__all__ = [
    "NOISE",
    "count_of",
    "did_you_mean",
    "is_noise",
    "label",
    "listing",
    "metric_words",
    "number",
    "percent",
    "plural",
    "plural_of",
]
