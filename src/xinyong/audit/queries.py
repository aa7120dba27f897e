"""SQL building blocks the audit's metrics share (the adults' and every module's): rows of a
query, interval segments over spells in both worlds, Kaplan-Meier lock-in of a spells table,
and the lists whose members' children are sanctioned."""

from __future__ import annotations

from typing import Any

import duckdb

from xinyong.audit import stats
from xinyong.audit.registry import Metric


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    """A query's rows as dicts."""
    rel = con.sql(sql)
    cols = rel.columns
    return [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]


def one(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """A query's single value."""
    return con.sql(sql).fetchall()[0][0]


def wrongly_listed(
    con: duckdb.DuckDBPyConnection, table: str, group: str, name: str
) -> tuple[int, dict[str, float]]:
    """Members of `table` wrongly on list `name` at T (on it, the shadow world not): how many,
    and the share of each value of the `group` column (a member kind's groups)."""
    wrong_on = f'"on.{name}" AND NOT "shadow_on.{name}"'
    count = one(con, f"SELECT count(*) FROM {table} WHERE {wrong_on}")
    shares = con.sql(
        f'SELECT "{group}", avg(CASE WHEN {wrong_on} THEN 1.0 ELSE 0.0 END) '
        f'FROM {table} GROUP BY "{group}"'
    ).fetchall()
    return count, dict(shares)


def quote(names: list[str]) -> str:
    """Names as a SQL list of string literals ('' when empty)."""
    return ", ".join("'" + n.replace("'", "''") + "'" for n in names) or "''"


def segments_sql(source: str, keys: str) -> str:
    """Cut the intervals of `source` (keys..., world, start, stop: days start .. stop-1) into
    pieces over which the number of recorded (`rec`) and shadow (`sh`) intervals is constant."""
    return f"""
        WITH src AS ({source}),
        ev AS (SELECT {keys}, start AS day, (world = 'recorded')::INT AS dr,
                      (world = 'shadow')::INT AS ds FROM src
               UNION ALL
               SELECT {keys}, stop, -(world = 'recorded')::INT, -(world = 'shadow')::INT
               FROM src),
        agg AS (SELECT {keys}, day, sum(dr) AS dr, sum(ds) AS ds FROM ev GROUP BY ALL),
        st AS (SELECT {keys}, day,
                      sum(dr) OVER (PARTITION BY {keys} ORDER BY day
                                    ROWS UNBOUNDED PRECEDING) AS rec,
                      sum(ds) OVER (PARTITION BY {keys} ORDER BY day
                                    ROWS UNBOUNDED PRECEDING) AS sh,
                      lead(day) OVER (PARTITION BY {keys} ORDER BY day) AS next
               FROM agg)
        SELECT {keys}, day AS start, next AS stop, rec, sh FROM st WHERE next > day"""


def wrongful_spells_sql(source: str, keys: str) -> str:
    """Wrongful spells of `source` (keys..., world, start, stop): the maximal runs of days on
    which the recorded world has the member on a list and the shadow world does not. Rows:
    keys..., start, stop (a run still wrongful at T stops at T)."""
    return f"""
        WITH w AS (SELECT {keys}, start, stop FROM ({segments_sql(source, keys)})
                   WHERE rec > 0 AND sh = 0),
        f AS (SELECT *, (start IS DISTINCT FROM lag(stop) OVER (PARTITION BY {keys}
                                                              ORDER BY start))::INT AS new
              FROM w),
        i AS (SELECT *, sum(new) OVER (PARTITION BY {keys} ORDER BY start
                                       ROWS UNBOUNDED PRECEDING) AS island FROM f)
        SELECT {keys}, min(start) AS start, max(stop) AS stop FROM i GROUP BY {keys}, island"""


def wrongful_duration(
    found: list[tuple[int, bool]], T: int
) -> tuple[dict[str, list], dict[str, float | None]]:
    """Kaplan-Meier of wrongful spells (days, still wrongful at T: censored) and its summary:
    median, quartiles and restricted mean (to the longest spell seen)."""
    curve = stats.kaplan_meier([d for d, _ in found], [not still for _, still in found])
    tau = max(d for d, _ in found)
    return curve, {
        "median": stats.quantile_time(curve, 0.5),
        "q1": stats.quantile_time(curve, 0.25),
        "q3": stats.quantile_time(curve, 0.75),
        "mean": stats.restricted_mean(curve, tau),
        "tau": tau,
    }


def spells_sql(T: int, lists: list[str] | None = None) -> str:
    """The adults' spells with open ones closed at T (`stop`), of `lists` or all."""
    where = "" if lists is None else f"WHERE list IN ({quote(lists)})"
    return f'SELECT person, list, world, start, coalesce("end", {T}) AS stop FROM spells {where}'


def survival(
    con: duckdb.DuckDBPyConnection,
    m: dict,
    curves: dict,
    lists: list[str],
    T: int,
    table: str,
    metrics: tuple[Metric, Metric, Metric, Metric],
) -> None:
    """Kaplan-Meier curves of the recorded spells of each list in `table`, and their median,
    restricted mean, share still listed after a year and count (`metrics`, in that order)."""
    median, mean, after_1y, spells = metrics
    for lst in lists:
        found = con.sql(f"""
            SELECT coalesce("end", {T}) - start, "end" IS NOT NULL FROM {table}
            WHERE list = '{lst}' AND world = 'recorded'""").fetchall()
        if not found:
            continue
        curve = stats.kaplan_meier([r[0] for r in found], [r[1] for r in found])
        curves[lst] = curve
        m[median.key(list=lst)] = median.row(stats.median_time(curve), list=lst)
        tau = max(r[0] for r in found)
        m[mean.key(list=lst)] = mean.row(stats.restricted_mean(curve, tau), list=lst, tau=tau)
        if T > 365:
            m[after_1y.key(list=lst)] = after_1y.row(*stats.survival_at(curve, 365), list=lst)
        m[spells.key(list=lst)] = spells.row(len(found), list=lst)


def child_lists(meta: dict) -> dict[str, list[str]]:
    """Per city, the lists whose membership puts a sanction on a member's children (the
    city's municipal pack and every national pack)."""
    by_pack = meta.get("consequences_by_pack") or {}
    cities = meta.get("city_pack") or {}
    national = [p for p in by_pack if p not in set(cities.values())]
    out = {}
    for city, pack in cities.items():
        out[city] = sorted(
            {
                lst
                for p in [pack, *national]
                for lst, cons in by_pack.get(p, {}).items()
                if any(c["target"] == "children" and c["kind"] == "sanction" for c in cons)
            }
        )
    return out
