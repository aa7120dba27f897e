"""Interval estimates used by the audit (95% unless said otherwise)."""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054
# Two-sided 95% Student t quantiles for small replicate counts (df = 1..30).
_T95 = [
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
]


def t95(df: int) -> float:
    return _T95[df - 1] if df <= len(_T95) else Z95


def wilson(k: float, n: float) -> tuple[float | None, float | None, float | None]:
    """Share k/n with its Wilson score interval; all None when n is 0."""
    if not n:
        return None, None, None
    p = k / n
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


def ratio_of_shares(k1: float, n1: float, k0: float, n0: float) -> tuple:
    """(k1/n1) / (k0/n0) with the Katz log interval; None where undefined."""
    if not n1 or not n0 or not k0:
        return None, None, None
    r = (k1 / n1) / (k0 / n0)
    if not k1:
        return r, None, None
    se = math.sqrt(1 / k1 - 1 / n1 + 1 / k0 - 1 / n0)
    return r, r * math.exp(-Z95 * se), r * math.exp(Z95 * se)


def ratio_of_rates(k1: float, e1: float, k0: float, e0: float) -> tuple:
    """(k1/e1) / (k0/e0) for Poisson counts k over exposures e, with a log interval."""
    if not e1 or not e0 or not k0:
        return None, None, None
    r = (k1 / e1) / (k0 / e0)
    if not k1:
        return r, None, None
    se = math.sqrt(1 / k1 + 1 / k0)
    return r, r * math.exp(-Z95 * se), r * math.exp(Z95 * se)


def mean_interval(values: Sequence[float | None]) -> tuple:
    """Mean over replicates with a Student t interval; None values are left out."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return None, None, None
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, None, None
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    half = t95(len(xs) - 1) * sd / math.sqrt(len(xs))
    return m, m - half, m + half


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-14:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0 or x >= 1:
        return 0.0 if x <= 0 else 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def t_p_value(t: float, df: float) -> float:
    """Two-sided p-value of Student's t with `df` degrees of freedom."""
    return betainc(df / 2, 0.5, df / (df + t * t))


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the order given: a q at or below
    0.05 keeps the expected share of false discoveries among the significant at 5%."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    q = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        q[i] = running
    return q


def hull(
    a: tuple[float | None, float | None], b: tuple[float | None, float | None]
) -> tuple[float | None, float | None]:
    """The smallest interval holding both (a side that is None is left out)."""
    lows = [x for x in (a[0], b[0]) if x is not None]
    highs = [x for x in (a[1], b[1]) if x is not None]
    return (min(lows) if lows else None, max(highs) if highs else None)


def clip(
    low: float | None, high: float | None, floor: float, ceiling: float = math.inf
) -> tuple[float | None, float | None]:
    """An interval cut to [floor, ceiling] (a share's t interval to [0, 1])."""
    return (
        None if low is None else min(max(low, floor), ceiling),
        None if high is None else max(min(high, ceiling), floor),
    )


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman rank correlation (average ranks for ties); None when undefined."""
    if len(x) < 3:
        return None

    def ranks(v: Sequence[float]) -> list[float]:
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(v):
            j = i
            while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2 + 1
            i = j + 1
        return r

    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if not sxx or not syy:
        return None
    return sxy / math.sqrt(sxx * syy)


def kaplan_meier(durations: Sequence[int], observed: Sequence[bool]) -> dict[str, list]:
    """Product-limit survival S(t) = P(stay > t) with Greenwood 95% bounds."""
    events: dict[int, list[int]] = {}
    for d, e in zip(durations, observed, strict=True):
        events.setdefault(int(d), [0, 0])[0 if e else 1] += 1
    at_risk = len(durations)
    s, var_sum = 1.0, 0.0
    out: dict[str, list] = {"t": [0], "s": [1.0], "low": [1.0], "high": [1.0], "at_risk": [at_risk]}
    for t in sorted(events):
        died, censored = events[t]
        if died:
            s *= 1 - died / at_risk
            if at_risk > died:
                var_sum += died / (at_risk * (at_risk - died))
            half = Z95 * s * math.sqrt(var_sum)
            out["t"].append(t)
            out["s"].append(s)
            out["low"].append(max(0.0, s - half))
            out["high"].append(min(1.0, s + half))
            out["at_risk"].append(at_risk)
        at_risk -= died + censored
    return out


def mean_curve(curves: Sequence[dict[str, list]]) -> dict[str, list]:
    """The mean of K seeds' step curves S(t) at every day any of them steps, with a Student t
    interval across seeds cut to [0, 1]: a replicate set's survival curve (`seeds`: K)."""
    ts = sorted({int(t) for c in curves for t in c.get("t") or []})
    out: dict[str, list] = {
        "t": ts,
        "s": [],
        "low": [],
        "high": [],
        "seeds": [len(curves)] * len(ts),
    }
    for t in ts:
        m, lo, hi = mean_interval([survival_at(c, t)[0] if c.get("t") else None for c in curves])
        lo, hi = clip(lo, hi, 0.0, 1.0)
        out["s"].append(m)
        out["low"].append(m if lo is None else lo)
        out["high"].append(m if hi is None else hi)
    return out


def survival_at(curve: dict[str, list], t: float) -> tuple:
    """S(t) read off a step curve, with its bounds."""
    i = max(k for k, x in enumerate(curve["t"]) if x <= t)
    return curve["s"][i], curve["low"][i], curve["high"][i]


def median_time(curve: dict[str, list]) -> float | None:
    return quantile_time(curve, 0.5)


def quantile_time(curve: dict[str, list], p: float) -> float | None:
    """The first time by which a share `p` of the spells has ended (S(t) <= 1 - p); None when
    the curve never gets there (too many still running)."""
    for t, s in zip(curve["t"], curve["s"], strict=True):
        if s <= 1 - p + 1e-12:
            return float(t)
    return None


def restricted_mean(curve: dict[str, list], tau: float) -> float:
    """Restricted mean time: the area under the step curve S(t) from 0 to tau, the mean of
    min(stay, tau). Defined where the median is not (more than half still listed)."""
    area = 0.0
    ts, ss = curve["t"], curve["s"]
    for i, (t, s) in enumerate(zip(ts, ss, strict=True)):
        if t >= tau:
            break
        nxt = ts[i + 1] if i + 1 < len(ts) else tau
        area += s * (min(nxt, tau) - t)
    return area


def ratio(num: float | None, den: float | None) -> float | None:
    """A share or ratio with a zero denominator is null (reading 12)."""
    if num is None or not den:
        return None
    return num / den
