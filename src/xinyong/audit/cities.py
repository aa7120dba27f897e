"""Cities side by side (a run of a multi-city scenario such as `cities`): grades, list
shares, wrongful listing, and which sanctions and privileges reach whom, per city, at the
end of the run. Written by `xinyong audit` beside report.html as cities.html (plotly
embedded) and cities.csv.

Every figure is a count with its denominator: cities differ in size by two orders of
magnitude in `cities` (Rongcheng's adults are about 1% of the run), so small counts stay
counts.
"""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path
from typing import Any

from xinyong.atomic import write_text
from xinyong.scenario import Scenario, load_scenario
from xinyong.store import RunDir


def compare_cities(path: str | Path) -> dict[str, Any]:
    """Per city: adults, score quantiles, grade counts (best first), and per list the adults
    on it at the end (recorded), those wrongly on it (recorded but not in their own-acts
    world), those ever on it and ever wrongly (a recorded spell, no shadow spell); per
    consequence reaching members, the adults it reaches by group."""
    path = Path(path)
    rd = RunDir(path)
    sc = load_scenario(path / "scenario.yaml")
    con = rd.connect(threads=1)
    lists = _lists(sc)
    out: dict[str, Any] = {"cities": []}
    rows = con.execute(
        """SELECT city, count(*), quantile_disc(score, 0.1), median(score),
                  quantile_disc(score, 0.9), min(score), max(score)
           FROM persons GROUP BY city"""
    ).fetchall()
    stats = {r[0]: r[1:] for r in rows}
    tiers = {
        (c, t): n
        for c, t, n in con.execute(
            "SELECT city, tier, count(*) FROM persons GROUP BY 1, 2"
        ).fetchall()
    }
    ever = {
        (c, lst, w): n
        for c, lst, w, n in con.execute(
            """SELECT p.city, s.list, s.world, count(DISTINCT s.person)
               FROM spells s JOIN persons p USING (person) GROUP BY 1, 2, 3"""
        ).fetchall()
    }
    ever_wrong = {
        (c, lst): n
        for c, lst, n in con.execute(
            """SELECT p.city, r.list, count(*) FROM
                 (SELECT DISTINCT person, list FROM spells WHERE world = 'recorded') r
                 JOIN persons p USING (person)
               WHERE NOT EXISTS (SELECT 1 FROM spells s WHERE s.person = r.person
                                 AND s.list = r.list AND s.world = 'shadow')
               GROUP BY 1, 2"""
        ).fetchall()
    }
    for city in sc.cities:
        pack = sc.packs[city.pack]
        n, p10, p50, p90, lo, hi = stats.get(city.name, (0, None, None, None, None, None))
        entry: dict[str, Any] = {
            "city": city.name,
            "pack": pack.id,
            "adults": n,
            "start": pack.start_score.value,
            "score": {"p10": p10, "median": p50, "p90": p90, "min": lo, "max": hi},
            "grades": [
                {"grade": t, "adults": tiers.get((city.name, t), 0)} for t in pack.tier_names
            ],
            "lists": [],
            "reach": [],
        }
        for name, kind in lists[city.name].items():
            on, wrong = con.execute(
                f"""SELECT count(*) FILTER (WHERE "on.{name}"),
                           count(*) FILTER (WHERE "on.{name}" AND NOT "shadow_on.{name}")
                    FROM persons WHERE city = $c""",
                {"c": city.name},
            ).fetchone()
            entry["lists"].append({
                "list": name, "kind": kind, "on": on, "wrongly_on": wrong,
                "ever": ever.get((city.name, name, "recorded"), 0),
                "ever_wrongly": ever_wrong.get((city.name, name), 0),
            })  # fmt: skip
        entry["reach"] = _reach(con, sc, city.name, lists[city.name])
        out["cities"].append(entry)
    return out


def _lists(sc: Scenario) -> dict[str, dict[str, str]]:
    """Per city, the lists that can hold its adults (its pack's and the national ones)."""
    out = {}
    for city in sc.cities:
        packs = [sc.packs[city.pack], *sc.national()]
        out[city.name] = {n: lst.kind for p in packs for n, lst in p.lists.items()}
    return out


def _reach(con: Any, sc: Scenario, city: str, lists: dict[str, str]) -> list[dict[str, Any]]:
    """Each consequence for members of this city's lists: adults it reaches at the end, by
    group (a consequence on several lists reaches an adult once)."""
    packs = [sc.packs[c.pack] for c in sc.cities if c.name == city] + sc.national()
    carriers: dict[tuple[str, str, str], list[str]] = {}
    for p in packs:
        for name, lst in p.lists.items():
            for c in lst.consequences:
                if c.target == "person":
                    carriers.setdefault((c.name, c.context, lst.kind), []).append(name)
    out = []
    for (name, context, kind), on in sorted(carriers.items()):
        held = " OR ".join(f'"on.{n}"' for n in on)
        sql = f'SELECT "group", count(*) FILTER (WHERE {held}) FROM persons WHERE city = $c'
        rows = con.execute(sql + " GROUP BY 1", {"c": city}).fetchall()
        by_group = dict(sorted(rows))
        if any(by_group.values()):
            out.append({"consequence": name, "context": context, "kind": kind, "lists": on,
                        "adults_by_group": by_group})  # fmt: skip
    return out


def to_csv(doc: dict[str, Any]) -> str:
    """One row per city and measure: city, measure, key, count, of (the city's adults)."""
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(["city", "measure", "key", "count", "of"])
    for c in doc["cities"]:
        n = c["adults"]
        for g in c["grades"]:
            out.writerow([c["city"], "grade", g["grade"], g["adults"], n])
        for lst in c["lists"]:
            for measure in ("on", "wrongly_on", "ever", "ever_wrongly"):
                out.writerow([c["city"], f"list_{measure}", lst["list"], lst[measure], n])
        for r in c["reach"]:
            for group, count in r["adults_by_group"].items():
                out.writerow([c["city"], f"{r['kind']}_reach.{group}", r["consequence"], count, n])
    return buf.getvalue()


def to_html(doc: dict[str, Any], title: str) -> str:
    """The page: grade shares per city (each city's own grades, best first), list shares with
    their wrongly listed part, and a table of what reaches whom."""
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs

    e = html.escape
    cities = doc["cities"]
    names = [c["city"] for c in cities]
    grades = go.Figure()
    depth = max(len(c["grades"]) for c in cities)
    for k in range(depth):  # the k-th best grade of each city, one colour per rank
        shares, labels = [], []
        for c in cities:
            g = c["grades"][k] if k < len(c["grades"]) else {"grade": "", "adults": 0}
            shares.append(g["adults"] / c["adults"] if c["adults"] else 0)
            labels.append(f"{g['grade']}: {g['adults']} of {c['adults']}")
        grades.add_bar(y=names, x=shares, orientation="h", name=f"grade {k + 1}",
                       text=[lbl.split(":")[0] for lbl in labels], hovertext=labels,
                       hoverinfo="text")  # fmt: skip
    grades.update_layout(
        barmode="stack", template="plotly_white", title="Grades at the end, best first, per city",
        xaxis_title="share of the city's adults", showlegend=False, height=120 + 40 * len(names),
    )  # fmt: skip
    listed = go.Figure()
    all_lists = sorted({lst["list"] for c in cities for lst in c["lists"]})
    for name in all_lists:
        shares, hover = [], []
        for c in cities:
            row = next((x for x in c["lists"] if x["list"] == name), None)
            on = row["on"] if row else 0
            wrong = row["wrongly_on"] if row else 0
            shares.append(on / c["adults"] if c["adults"] and row else None)
            hover.append(
                f"{name}: {on} of {c['adults']} ({wrong} wrongly)" if row else "no such list"
            )
        listed.add_bar(x=names, y=shares, name=name, hovertext=hover, hoverinfo="text")
    listed.update_layout(
        barmode="group", template="plotly_white", title="On each list at the end, per city",
        yaxis_title="share of the city's adults",
    )  # fmt: skip
    charts = "".join(
        f.to_html(full_html=False, include_plotlyjs=False, div_id=f"cities-{i}")
        for i, f in enumerate((grades, listed))
    )
    rows = []
    for c in cities:
        for lst in c["lists"]:
            if lst["ever"]:
                rows.append(
                    f"<tr><td>{e(c['city'])}</td><td>{e(lst['list'])} ({e(lst['kind'])})</td>"
                    f"<td>{lst['on']} of {c['adults']}</td><td>{lst['wrongly_on']}</td>"
                    f"<td>{lst['ever']}</td><td>{lst['ever_wrongly']}</td></tr>"
                )
    reach = []
    for c in cities:
        for r in c["reach"]:
            groups = ", ".join(f"{e(g)} {n}" for g, n in r["adults_by_group"].items())
            reach.append(
                f"<tr><td>{e(c['city'])}</td><td>{e(r['consequence'])}</td><td>{e(r['kind'])}</td>"
                f"<td>{e(r['context'])}</td><td>{groups}</td></tr>"
            )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{e(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:72rem;margin:1rem auto;padding:0 1rem}}
table{{border-collapse:collapse;display:block;overflow-x:auto}}
td,th{{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left}}</style>
<script charset="utf-8">{get_plotlyjs()}</script></head><body>
<h1>{e(title)}</h1>
<p>Each city's adults at the end of the run under its own scheme and the national lists.
Counts are of adults; "wrongly" means on the list in the recorded world but not in the world
of their own acts alone.</p>{charts}
<h2>Lists</h2><table><thead><tr><th>city</th><th>list</th><th>on at the end</th>
<th>wrongly on</th><th>ever on</th><th>ever on, never in their own-acts world</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<h2>What reaches whom at the end</h2><table><thead><tr><th>city</th><th>consequence</th>
<th>kind</th><th>context</th><th>adults reached, by group</th></tr></thead>
<tbody>{"".join(reach)}</tbody></table></body></html>"""


def write_city_comparison(path: str | Path) -> bool:
    """cities.html and cities.csv into a run of several cities; False for one city."""
    path = Path(path)
    sc = load_scenario(path / "scenario.yaml")
    if len(sc.cities) < 2:
        return False
    doc = compare_cities(path)
    write_text(path / "cities.csv", to_csv(doc))
    write_text(path / "cities.html", to_html(doc, f"{sc.name}: the cities side by side"))
    return True
