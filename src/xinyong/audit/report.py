"""The audit report: one self-contained, offline HTML file with plotly.js embedded once.

`render_report` draws an audit document (`xinyong.audit.audit.audit`) and the run's daily
table. Computing and rendering are apart: each registered section (`sections()`, with the
modules' sections from `hooks.module_audits` among them) computes its template's context (its
charts and rows) from the document, and `templates/report.html` lays the sections out. Every
chart has a title that states its finding, labelled axes, and its data as a CSV download;
plotly's own camera button saves it as a PNG. Definitions: docs/model.md.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import pyarrow as pa
from plotly.colors import sample_colorscale

from xinyong.audit.figures import (
    FLAG,
    GOOD,
    GREY,
    OK,
    PALETTE,
    Page,
    alpha,
    curve_rows,
    errors,
    layout,
    legend_of,
    wrap,
)
from xinyong.audit.format import at, count, counted, interval, num, pct, row, text
from xinyong.audit.hooks import module_audits
from xinyong.audit.registry import FOUR_FIFTHS, INTERVAL_KINDS, MIN_COUNT, WITHIN_RUN, Section
from xinyong.audit.render import write_page
from xinyong.words import label, metric_words, number

RATIO_FLOOR = 0.01  # ratios at or below 0 are drawn here on the log axis
LABEL_WIDTH = 24  # characters of a bar's label per line: the plot keeps room at 390 px
RATIO_TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]

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
        "days-under-a-sanction",
        "Days under a sanction",
        "Each sanction in force on a person counts one day under a sanction per day: a day on a "
        "list with 12 sanctions counts 12. <em>Person-days of undeserved sanctions</em> count "
        "each person's day once: a day on which they were wrongly on at least one sanction list.",
    ),
    (
        "spillover",
        "Spillover",
        "Days under a sanction that fall in a context (finance, mobility, education, ...) "
        "unrelated to the context of the records that caused the listing: the detrimental "
        "treatment in unrelated social contexts of EU AI Act Art. 5(1)(c)(i).",
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


def _metric(metrics: dict, name: str) -> Any:
    return (metrics.get(name) or {}).get("value")


def _kind(doc: dict) -> str:
    return doc.get("interval") or (WITHIN_RUN if (doc.get("replicates") or 1) == 1 else "")


# Key findings.


def _seeds(doc: dict) -> int:
    return max(1, int(doc.get("replicates") or 1))


def _per_run(doc: dict) -> str:
    """What a replicate set's numbers are: means of one run, over its K seeds."""
    k = _seeds(doc)
    return f" per run over {k} seeds" if k > 1 else ""


def _curves_of(doc: dict) -> str:
    """Whose daily curves a replicate set's chart draws: its first seed's."""
    return f"curves of seed {((doc.get('run') or {}).get('seeds') or [None])[0]}"


def _share(r: dict, k: int, of: str) -> str:
    """A share of `of`, with its across-seed interval in a replicate set."""
    if k > 1 and r.get("low") is not None:
        spread = f"; {pct(r.get('low'))} to {pct(r.get('high'))} across seeds"
        return f"{pct(r.get('value'))} of {of}{spread}"
    return f"{pct(r.get('value'))} of {of}"


def key_findings(doc: dict) -> list[tuple[str, str | None, str | None]]:
    """The report's opening in plain language: (sentence, chart name, glossary anchor). In a
    replicate set every number is a mean per run over its seeds, and says so."""
    run, m = doc.get("run") or {}, doc.get("metrics") or {}
    out: list[tuple[str, str | None, str | None]] = []
    k, per_run = _seeds(doc), _per_run(doc)
    sanction = doc.get("sanction_lists")
    lists = [
        name.removeprefix("ever_wrongly_listed_share.")
        for name in m
        if name.startswith("ever_wrongly_listed_share.")
    ]
    if sanction is not None:
        lists = [lst for lst in lists if lst in sanction]
    lists.sort(key=lambda lst: (lst != "blacklist", lst))
    for lst in lists[:3]:
        now, ever = (
            row(m, f"wrongly_listed_share.{lst}"),
            row(m, f"ever_wrongly_listed_share.{lst}"),
        )
        if not ever.get("count"):
            continue
        out.append(
            (
                f"{counted(now.get('count'), 'person', 'people')} wrongly on the {text(lst)} at "
                "the end of the "
                f"run, {count(ever.get('count'))} at some point{per_run} "
                f"({_share(ever, k, count(ever.get('of')) + ' adults')}).",
                f"list-{lst}",
                "wrongly-listed",
            )
        )
    if lists:
        out += _wrongful_duration(m, lists[0], per_run)
    for r in doc.get("disparity") or []:
        if r.get("metric") != f"ever_wrongly_listed_share.{lists[0] if lists else ''}":
            continue
        if r.get("ratio") is not None or r.get("numerator") or r.get("reference_numerator"):
            out.append((_disparity_sentence(r, k, per_run), "disparity", "four-fifths"))
    days = row(m, "undeserved_sanction_person_days").get("value")
    if days:
        out.append(
            (
                f"{count(days)} person-days of undeserved sanctions{per_run}: days on which "
                "someone was on a sanction list only because of wrong records.",
                None,
                "days-under-a-sanction",
            )
        )
    only = row(m, "children_restricted_only_by_wrong_records_share")
    ever_kids = row(m, "children_ever_restricted_share")
    if ever_kids.get("count"):
        out.append(
            (
                f"{counted(only.get('count'), 'child', 'children')} restricted only because of "
                "their parents' wrong records; "
                f"{counted(ever_kids.get('count'), 'child', 'children')} restricted "
                f"at some point{per_run}.",
                None,
                "wrongly-listed",
            )
        )
    for lst in doc.get("survival") or {}:
        if lst != "blacklist":
            continue
        median = row(m, f"median_stay_days.{lst}").get("value")
        mean = row(m, f"mean_stay_days_restricted.{lst}").get("value")
        if median is not None:
            sentence = (
                f"Half of the {text(lst)} listings lasted {num(median)} days or more{per_run}."
            )
        elif mean is not None:
            sentence = (
                f"More than half of the {text(lst)} listings were still running at the end; "
                f"on average a listing lasted at least {num(mean)} days{per_run}."
            )
        else:
            continue
        out.append((sentence, "survival", None))
    spill = row(m, "spillover_share.blacklist").get("value")
    if spill is not None:
        out.append(
            (
                f"{pct(spill)} of the days under a blacklist sanction hit a part of life "
                f"unrelated to the records that caused the listing{per_run}.",
                "spillover-blacklist",
                "spillover",
            )
        )
    never = row(m, "wrong_records_never_corrected")
    if never.get("value") is not None:
        out.append(
            (
                f"{pct(never.get('value'))} of wrong negative records "
                f"({count(never.get('count'))} of {count(never.get('of'))}{per_run}) were "
                "never corrected on appeal.",
                None,
                None,
            )
        )
    change = row(m, "negative_events_change").get("value")
    if change is not None:
        out.append(
            (
                f"With the scheme on, true negative behaviour changed by {pct(change)} against "
                f"the same world with the scheme off{per_run}.",
                "behaviour",
                None,
            )
        )
    for mod in module_audits():  # the modules' first findings open the report too
        out += [(sentence, None, None) for sentence in mod.headline(doc)]
    if not out and run:
        out.append((f"{num(run.get('adults'))} adults simulated; nothing to report.", None, None))
    return out


def _pooled(r: dict, key: str) -> Any:
    """A disparity row's count over all its seeds (a replicate set's row gives it per run,
    with the total in `KEY_total`), which the small-number rule reads."""
    return r.get(f"{key}_total", r.get(key))


def _few(r: dict) -> bool:
    """Under the small-number rule: fewer than MIN_COUNT people in a numerator."""
    k1, k0 = _pooled(r, "numerator"), _pooled(r, "reference_numerator")
    return k1 is None or k0 is None or min(k1, k0) < MIN_COUNT


def _disparity_sentence(r: dict, k: int, per_run: str) -> str:
    """A group against the reference in words: the ratio only with enough people on both
    sides (the small-number rule), else the counts (per run in a replicate set)."""
    group, ref = text(r.get("group")), text(r.get("reference"))
    k1, k0 = _pooled(r, "numerator"), _pooled(r, "reference_numerator")
    mine, theirs = r.get("numerator"), r.get("reference_numerator")
    counts = f"{count(mine)} in the {group} group against {count(theirs)} in the {ref} group"
    counts += per_run
    if r.get("ratio") is None or _few(r):
        totals = f" ({count(k1)} against {count(k0)} in total over {k} seeds)" if k > 1 else ""
        return (
            f"Too few adults were wrongly listed to compare {group} with {ref} adults: "
            f"{counts}{totals}; a ratio needs at least {MIN_COUNT} people on each side."
        )
    verdict = (
        "a disparity outside the four-fifths band"
        if r.get("flag")
        else f"not flagged, {text(r.get('status'))}"
    )
    spread = (
        f", {num(r.get('ratio_low'))} to {num(r.get('ratio_high'))} across seeds"
        if k > 1 and r.get("ratio_low") is not None
        else ""
    )
    return (
        f"{group.capitalize()} adults were wrongly listed {num(r.get('ratio'))} times as often "
        f"as {ref} adults{spread} ({counts}): {verdict}."
    )


def _wrongful_duration(m: dict, lst: str, per_run: str) -> list[tuple[str, str | None, str]]:
    """How long wrongful spells on `lst` last, in a sentence (Kaplan-Meier: censored at T)."""
    spells = row(m, f"wrongful_spells.{lst}").get("value")
    if not spells:
        return []
    median, q1, q3, mean = (
        row(m, f"wrongful_days_{key}.{lst}").get("value")
        for key in ("median", "q1", "q3", "mean_restricted")
    )
    still = row(m, f"wrongful_spells_open_at_T.{lst}").get("count")
    running = f", {count(still)} of them still running at the end" if still else ""
    if median is None:
        sentence = (
            f"More than half of the {count(spells)} wrongful spells on the {text(lst)}{per_run} "
            f"were still running at the end; on average one lasted at least {num(mean)} days."
        )
    else:
        middle = (
            f"middle half {num(q1)} to {num(q3)} days"
            if q3 is not None
            else f"a quarter ended within {num(q1)} days, more than a quarter still ran at the end"
        )
        sentence = (
            f"Wrongly listed people stayed wrongly on the {text(lst)} for {num(median)} days at "
            f"the median ({middle}; Kaplan-Meier over {count(spells)} wrongful spells{per_run}"
            f"{running})."
        )
    return [(sentence, None, "wrongly-listed")]


# Sections: each computes its template's context from the audit document.


def _time(page: Page, doc: dict) -> dict:
    daily: pa.Table = doc["daily"]
    adults, metrics = (doc.get("run") or {}).get("adults"), doc.get("metrics") or {}
    cols = daily.column_names
    if "day" not in cols:
        return {"figures": [], "empty": "No daily table."}
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
        run = doc.get("run") or {}
        if _seeds(doc) > 1:  # the shares per run over the seeds; the curves are one seed's
            last = {t: run.get(f"tier_share.{t}") for t in tiers}
        heading = "Share of adults per tier"
        if last:
            top, bottom = tiers[0], tiers[-1]
            heading = (
                f"At the end, {pct(last.get(top))} of adults are in tier {top} and "
                f"{pct(last.get(bottom))} in tier {bottom}"
                + (f"{_per_run(doc)} ({_curves_of(doc)})" if _seeds(doc) > 1 else "")
            )
        lay = layout(
            heading,
            380,
            legend=legend_of(traces),
            xaxis={"title": {"text": "day of the run"}},
            yaxis={"title": {"text": "share of adults"}, "tickformat": ".0%", "range": [0, 1]},
        )
        data = [
            {"day": d, **{t: counts[i][k] for i, t in enumerate(tiers)}} for k, d in enumerate(days)
        ]
        figs.append(page.figure("tiers", traces, lay, data))
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
            go.Scatter(x=days, y=ys, name=f"{html.escape(lst)}: {kind}", line=styles[kind])
            for kind, ys in series.items()
            if ys is not None
        ]
        on = series["recorded"][-1] if series["recorded"] else None
        wrong = series["wrongly listed"][-1] if series["wrongly listed"] else None
        ever = row(metrics, f"ever_wrongly_listed_share.{lst}").get("count")
        seeds = _per_run(doc)
        if seeds:  # the curves are the first seed's; the title gives the means per run
            on = row(metrics, f"list_share.{lst}").get("count")
            wrong = row(metrics, f"wrongly_listed_share.{lst}").get("count")
            seeds += f"; {_curves_of(doc)}"
        heading = f"{lst}: {count(on)} adults listed at the end"
        if wrong is not None:
            heading += f", {count(wrong)} of them wrongly"
        if ever is not None:
            heading += f" ({count(ever)} wrongly at some point{seeds})"
        lay = layout(
            heading,
            340,
            legend=legend_of(traces),
            xaxis={"title": {"text": "day of the run"}},
            yaxis={"title": {"text": "adults on the list"}, "rangemode": "tozero"},
        )
        data = [
            {"day": d, **{k: v[j] for k, v in series.items() if v is not None}}
            for j, d in enumerate(days)
        ]
        figs.append(page.figure(f"list-{lst}", traces, lay, data))
    return {"figures": figs, "empty": "No data."}


def _survival(page: Page, doc: dict) -> dict:
    survival, metrics, k = doc.get("survival") or {}, doc.get("metrics") or {}, _seeds(doc)
    traces, data, parts, flat = [], [], [], []
    for i, (lst, curve) in enumerate(survival.items()):
        colour, name = PALETTE[i % len(PALETTE)], html.escape(lst)
        t = curve.get("t") or []
        if len(t) < 2:  # no spell ended: one point at day 0 would name a line it cannot draw
            flat.append(lst)
            continue
        for bound in ("high", "low"):  # the band: fill from the low bound up to the high one
            traces.append(
                go.Scatter(
                    x=t,
                    y=curve.get(bound) or [],
                    line={"shape": "hv", "width": 0, "color": colour},
                    fill="tonexty" if bound == "low" else None,
                    fillcolor=alpha(colour, 0.15),
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
                **_hover(curve, f"{name}, day %{{x}}: %{{y:.1%}} still listed"),
            )
        )
        wrongful = (doc.get("wrongful_survival") or {}).get(lst)
        if wrongful and len(wrongful.get("t") or []) >= 2:
            traces.append(
                go.Scatter(
                    x=wrongful.get("t") or [],
                    y=wrongful.get("s") or [],
                    name=f"{name}: wrongful spells",
                    legendgroup=lst,
                    line={"shape": "hv", "width": 2, "color": colour, "dash": "dash"},
                    **_hover(
                        wrongful, f"{name}, wrongful, day %{{x}}: %{{y:.1%}} still wrongly listed"
                    ),
                )
            )
            data += curve_rows(wrongful, list=lst, spells="wrongful")
        data += curve_rows(curve, list=lst)
        median = row(metrics, f"median_stay_days.{lst}").get("value")
        mean = row(metrics, f"mean_stay_days_restricted.{lst}").get("value")
        parts.append(
            f"{lst} median {num(median)} d"
            if median is not None
            else f"{lst} at least {num(mean)} d on average"
        )
    if not traces:
        return {"figures": [], "empty": "No list spells.", "flat": flat, "seeds": k}
    lay = layout(
        "Time listed: "
        + "; ".join(parts)
        + (f" (medians per run, curves: mean of {k} seeds)" if k > 1 else ""),
        440,
        legend=legend_of(traces),
        xaxis={"title": {"text": "days since listing"}, "rangemode": "tozero"},
        yaxis={
            "title": {"text": "share of spells still listed"},
            "tickformat": ".0%",
            "range": [0, 1.03],
        },
    )
    return {
        "figures": [page.figure("survival", traces, lay, data)],
        "empty": "",
        "flat": flat,
        "seeds": k,
    }


def _hover(curve: dict, words: str) -> dict:
    """A survival curve's hover text: the spells still at risk, or (a replicate set's mean
    curve) the seeds it is the mean of."""
    if curve.get("at_risk") is not None:
        return {
            "customdata": curve["at_risk"],
            "hovertemplate": f"{words}<br>at risk: %{{customdata}}<extra></extra>",
        }
    seeds = at(curve.get("seeds"), 0)
    return {"hovertemplate": f"{words}<br>mean of {seeds} seeds<extra></extra>"}


def _disparity(page: Page, doc: dict) -> dict:
    rows = doc.get("disparity") or []
    lo_band, hi_band = FOUR_FIFTHS
    context: dict[str, Any] = {
        "kind": INTERVAL_KINDS.get(_kind(doc), "95% interval"),
        "seeds": _seeds(doc),
        "band": FOUR_FIFTHS,
        "min_count": MIN_COUNT,
        "rows": rows,
        "figure": None,
        "few": 0,
        "download": None,
    }
    if not rows:
        return context
    keys = ("ratio", "ratio_low", "ratio_high")
    # A ratio of 0 people to 1 is not a rate: comparisons under the small-number rule stay in
    # the table, as counts, and out of the chart.
    raw = [r for r in rows if r.get("ratio") is not None and not _few(r)]
    context["few"] = sum(r.get("ratio") is not None for r in rows) - len(raw)
    plotted = [
        {**r, **{k: None if r.get(k) is None else max(r[k], RATIO_FLOOR) for k in keys}}
        for r in raw
    ]

    def colour(r: dict) -> str:
        if r.get("flag"):
            return FLAG
        return GREY if r.get("outside_band") else OK

    if plotted:
        per_run = " per run" if _seeds(doc) > 1 else ""
        labels = [
            _label(
                f"{'⚑ ' if r.get('flag') else ''}{metric_words(str(r.get('metric')))} · "
                f"{r.get('group')} ({number(r.get('numerator'))} vs "
                f"{number(r.get('reference_numerator'))}{per_run})"
            )
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
            error_x=errors(plotted, "ratio", "ratio_low", "ratio_high"),
            hovertext=[
                f"{text(r.get('group'))} against {text(r.get('reference'))}: ratio "
                f"{num(r['ratio'])} {interval(r.get('ratio_low'), r.get('ratio_high'))}"
                f"<br>rate {num(r.get('value'))}, reference {num(r.get('reference_value'))}"
                f"<br>{text(r.get('status'))}"
                for r in raw
            ],
            hoverinfo="text",
            showlegend=False,
        )
        seen = [r[k] for r in plotted for k in keys if r[k] is not None] + [lo_band, hi_band]
        span = [min(seen) / 1.4, max(seen) * 1.4]
        ticks = [t for t in RATIO_TICKS if span[0] <= t <= span[1]]
        if len(ticks) > 5:  # room for five on a phone: the powers of ten
            ticks = [t for t in ticks if math.log10(t).is_integer()]
        flagged = [r for r in raw if r.get("flag")]
        heading = (
            f"{len(flagged)} of {len(raw)} group comparisons flagged outside the four-fifths band"
        )
        lay = layout(
            heading,
            120 + _rows_height(labels),
            xaxis={
                "type": "log",
                "range": [math.log10(span[0]), math.log10(span[1])],
                "tickvals": ticks,
                "ticktext": [num(t) for t in ticks],
                "title": {"text": "ratio to the reference group (log scale)"},
            },
            yaxis={
                "autorange": "reversed",
                "gridcolor": "#f0f1f3",
                "title": {"text": "comparison"},  # its labels: "metric · group (people)"
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
                    "fillcolor": alpha(GOOD, 0.14),
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
        context["figure"] = page.figure("disparity", [bars, points], lay, _disparity_rows(rows))
    context["download"] = _disparity_rows(rows)
    return context


def _label(words: str) -> str:
    """A bar's name as its axis label: escaped, in lines that leave the plot room at 390 px."""
    return "<br>".join(html.escape(line) for line in wrap(words, LABEL_WIDTH))


def _rows_height(labels: Any) -> int:
    """Pixels a horizontal bar chart's rows take: each label's lines, and a gap."""
    return sum(14 + 15 * (1 + str(lab).count("<br>")) for lab in labels)


def _disparity_rows(rows: list) -> list[dict]:
    """The rows as CSV: in a replicate set the counts per run with their across-seed
    intervals, and their totals over the seeds."""
    keys = ["metric", "group", "reference", "value", "reference_value", "numerator"]
    keys += ["denominator", "reference_numerator", "reference_denominator", "ratio"]
    keys += ["ratio_low", "ratio_high", "interval", "difference", "status", "flag"]
    counts = ("value", "reference_value", "numerator", "denominator", "reference_numerator")
    counts += ("reference_denominator",)
    if rows and "numerator_total" in rows[0]:
        keys += [f"{k}_{end}" for k in counts for end in ("low", "high")]
        keys += [f"{k}_total" for k in counts if "value" not in k]
    return [{k: r.get(k) for k in keys} for r in rows]


def _spillover(page: Page, doc: dict) -> dict:
    spillover, metrics = doc.get("spillover") or {}, doc.get("metrics") or {}
    figs = []
    for lst, sp in spillover.items():
        causes = [text(c) for c in sp.get("causes") or []]
        z = sp.get("sanction_days") or []
        related = sp.get("related") or []
        if not causes or not z:
            continue
        same = [
            sum(v or 0 for v, rel in zip(r, at(related, i) or [], strict=False) if rel)
            for i, r in enumerate(z)
        ]
        other = [sum(v or 0 for v in r) - s for r, s in zip(z, same, strict=True)]
        traces = [
            go.Bar(
                y=causes,
                x=same,
                name="same or related context",
                orientation="h",
                marker={"color": OK},
                hovertemplate="%{y} records: %{x:,.0f} days under a sanction in a related context"
                "<extra></extra>",
            ),
            go.Bar(
                y=causes,
                x=other,
                name="unrelated context",
                orientation="h",
                marker={"color": FLAG},
                hovertemplate="%{y} records: %{x:,.0f} days under a sanction in an unrelated "
                "context<extra></extra>",
            ),
        ]
        share = _metric(metrics, f"spillover_share.{lst}")
        lay = layout(
            f"{lst}: {pct(share)} of the days of sanctions hit a context\nunrelated to their cause",
            max(320, 150 + 28 * len(causes)),
            legend=legend_of(traces),
            barmode="stack",
            # Counts up to hundreds of thousands: three ticks leave them room on a phone.
            xaxis={"title": {"text": "days under a sanction (each sanction counted)"}, "nticks": 3},
            yaxis={"title": {"text": "context of the causes"}, "autorange": "reversed"},
        )
        data = [
            {"list": lst, "cause": c, "related_days": s, "unrelated_days": o}
            for c, s, o in zip(sp.get("causes") or [], same, other, strict=False)
        ]
        figs.append(page.figure(f"spillover-{lst}", traces, lay, data))
    return {"figures": figs, "empty": "No sanction-list spell had causal records."}


def _proportionality(page: Page, doc: dict) -> dict:
    rows, metrics = doc.get("proportionality") or [], doc.get("metrics") or {}
    rho = _metric(metrics, "gravity_severity_rank_correlation")
    points = [
        r
        for r in rows
        if r.get("gravity") is not None and r.get("sanction_days_per_record") is not None
    ]
    if not points:
        return {"rho": rho, "figures": [], "empty": "No sanctioned records."}
    # One bar per behaviour, graver further down: the names are the axis's labels, so they
    # neither overlap nor run past the chart's edge as labels beside markers would.
    points.sort(key=lambda r: (r["gravity"], r["sanction_days_per_record"]))
    names = [
        _label(f"{label(str(r.get('behaviour')))} (gravity {num(r['gravity'])})") for r in points
    ]
    ys = [r["sanction_days_per_record"] for r in points]
    graver = [min(max((r["gravity"] - 1) / 4, 0), 1) for r in points]  # gravity 1 to 5
    shades = sample_colorscale("YlOrRd", [0.25 + 0.75 * g for g in graver])
    log = all(y > 0 for y in ys)
    trace = go.Bar(
        y=names,
        x=ys,
        orientation="h",
        marker={"color": shades, "line": {"color": "#8a919c", "width": 0.5}},
        hovertext=[
            f"{text(r.get('behaviour'))}: gravity {num(r['gravity'])}, "
            f"{num(r.get('records'))} records, {num(r['sanction_days_per_record'])} "
            "days under a sanction per record"
            for r in points
        ],
        hoverinfo="text",
        showlegend=False,
    )
    if rho is None:
        heading = "Days under a sanction per record by gravity (too few behaviours to rank)"
    elif rho >= 0.7:
        heading = f"Graver behaviour brings more days under a sanction (Spearman {num(rho)})"
    else:
        heading = f"Days under a sanction follow gravity only loosely (Spearman {num(rho)})"
    lay = layout(
        heading,
        120 + _rows_height(names),
        xaxis={
            "title": {"text": "days under a sanction per record" + (" (log scale)" if log else "")},
            "type": "log" if log else "linear",
            "dtick": 1 if log else None,
        },
        yaxis={"autorange": "reversed", "gridcolor": "#f0f1f3", "title": {"text": "behaviour"}},
        margin={"l": 20, "r": 20, "t": 50, "b": 50},
    )
    data = [
        {k: r.get(k) for k in ("behaviour", "gravity", "records", "sanction_days_per_record")}
        for r in points
    ]
    return {"rho": rho, "figures": [page.figure("proportionality", [trace], lay, data)]}


def _channels(page: Page, doc: dict) -> dict:
    rows = doc.get("channels") or []
    kind = INTERVAL_KINDS.get(_kind(doc), "95% interval")
    if not rows:
        return {"kind": kind, "figures": [], "empty": "No negative records."}
    trace = go.Bar(  # one bar a row: the names never crowd at 390 px
        y=[
            _label(f"{label(str(r.get('channel')))} ({number(r.get('records'))} records)")
            for r in rows
        ],
        x=[r.get("share") for r in rows],
        orientation="h",
        marker={"color": OK},
        error_x=errors(rows, "share", "low", "high"),
        hovertext=[
            f"{text(r.get('channel'))}: {pct(r.get('share'))} wrong "
            f"{interval(r.get('low'), r.get('high'))}, {num(r.get('wrong'))} of "
            f"{num(r.get('records'))} records"
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
            f"{worst.get('channel')} gets {pct(worst['share'])} of its negative records wrong "
            f"({count(worst.get('wrong'))} of {count(worst.get('records'))})"
        )
    lay = layout(
        heading,
        120 + _rows_height(trace.y),
        xaxis={
            "title": {"text": "wrong share of its negative records"},
            "tickformat": ".0%",
            "rangemode": "tozero",
        },
        yaxis={"autorange": "reversed", "title": {"text": "observation channel"}},
        margin={"l": 20, "r": 20, "t": 50, "b": 50},
    )
    data = [
        {k: r.get(k) for k in ("channel", "records", "wrong", "share", "low", "high")} for r in rows
    ]
    return {"kind": kind, "figures": [page.figure("channels", [trace], lay, data)]}


def _behaviour(page: Page, doc: dict) -> dict:
    rows, metrics = doc.get("behaviour") or [], doc.get("metrics") or {}
    if not rows:
        return {"baseline": False}
    shown = [r for r in rows if r.get("change") is not None and r.get("sign") != "positive"]
    context = {
        "baseline": True,
        "overall": row(metrics, "negative_events_change"),
        "speech": row(metrics, "online_speech_change"),
        "prevented": _metric(metrics, "events_prevented_per_wrongly_listed"),
        "missing": [
            r.get("behaviour")
            for r in rows
            if r.get("change") is None and r.get("sign") != "positive"
        ],
        "figures": [],
    }
    if not shown:
        return context
    trace = go.Bar(
        y=[_label(f"{label(str(r.get('behaviour')))} ({r.get('context')})") for r in shown],
        x=[r["change"] for r in shown],
        orientation="h",
        marker={"color": [FLAG if (r["change"] or 0) > 0 else OK for r in shown]},
        hovertext=[
            f"{text(r.get('behaviour'))}: {num(r.get('events'))} events, "
            f"{num(r.get('baseline_events'))} with the scheme off ({pct(r['change'])})"
            for r in shown
        ],
        hoverinfo="text",
        showlegend=False,
    )
    overall = _metric(metrics, "negative_events_change")
    heading = (
        f"With the scheme on, negative behaviour changes by {pct(overall)}"
        if overall is not None
        else "Change in negative behaviour with the scheme on"
    )
    lay = layout(
        heading,
        120 + _rows_height(trace.y),
        xaxis={"title": {"text": "change in true events against the scheme-off world"}},
        yaxis={
            "autorange": "reversed",
            "gridcolor": "#f0f1f3",
            "title": {"text": "behaviour (context)"},
        },
        margin={"l": 20, "r": 20, "t": 50, "b": 50},
    )
    lay["xaxis"]["tickformat"] = "+.0%"
    data = [
        {k: r.get(k) for k in ("behaviour", "context", "events", "baseline_events", "change")}
        for r in shown
    ]
    context["figures"] = [page.figure("behaviour", [trace], lay, data)]
    return context


def _metrics(page: Page, doc: dict) -> dict:
    metrics = doc.get("metrics") or {}
    keys = ("value", "low", "high", "interval", "count", "of", "meaning", "maps_to")
    download = [{"metric": name, **{k: r.get(k) for k in keys}} for name, r in metrics.items()]
    return {"metrics": metrics, "download": download}


def _definitions(page: Page, doc: dict) -> dict:
    return {"glossary": GLOSSARY}


def _run(page: Page, doc: dict) -> dict:
    run = doc.get("run") or {}
    intervals = run.get("intervals") or {}
    rows = [
        {"key": key, "value": value, "low": iv[0], "high": iv[1]}
        for key, value in run.items()
        if not isinstance(value, dict | list)
        for iv in [intervals.get(key) or [None, None]]
    ]
    return {"rows": rows}


BEFORE = (
    Section("time", "report/time.html", _time),
    Section("survival", "report/survival.html", _survival),
    Section("disparity", "report/disparity.html", _disparity),
    Section("spillover", "report/spillover.html", _spillover),
    Section("proportionality", "report/proportionality.html", _proportionality),
    Section("channels", "report/channels.html", _channels),
    Section("behaviour", "report/behaviour.html", _behaviour),
)
AFTER = (
    Section("metrics", "report/metrics.html", _metrics),
    Section("definitions", "report/definitions.html", _definitions),
    Section("run", "report/run.html", _run),
)


def sections() -> tuple[Section, ...]:
    """The report's sections in order: the adults' findings, then the modules', then the
    metric table, the definitions and the run's summary."""
    modules = tuple(m.section for m in module_audits() if m.section is not None)
    return (*BEFORE, *modules, *AFTER)


def render_report(doc: dict, daily: pa.Table, path: Path) -> None:
    """Write the audit report of `doc` and the run's `daily` table to `path`."""
    page = Page()
    whole = {**doc, "daily": daily}
    built = []
    for s in sections():
        context = s.build(page, whole)
        if context is not None:
            built.append((s.template, context))
    run = doc.get("run") or {}
    warning = doc.get("warning")
    if warning is None and _kind(doc) == WITHIN_RUN:
        warning = (
            "One run: its intervals come from within the run and leave out run-to-run variation."
        )
    write_page(
        "report.html",
        path,
        plotly=page.count > 0,
        # Only a module with a report section has templates of its own.
        packages=tuple(m.package for m in module_audits() if m.section is not None),
        run=run,
        doc=doc,
        kind=_kind(doc),
        warning=warning,
        findings=key_findings(doc),
        ids=page.ids,
        sections=built,
    )
