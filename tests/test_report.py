"""The HTML report: rendered in a real headless Chromium, offline, deterministic, null-safe."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pyarrow as pa
import pytest

import xinyong
from tests.conftest import CHROMIUM_FLAGS
from xinyong.audit.metrics import audit_metrics, baseline_scenario
from xinyong.audit.pages import render_compare
from xinyong.audit.report import render_report
from xinyong.store import RunDir

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
VOID |= {"track", "wbr"}


class Page(HTMLParser):
    """Plotly figure divs with the count of rendered svgs inside each, and external refs."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.open: list[tuple[str, str | None]] = []  # (tag, figure id if a plotly div)
        self.svgs: dict[str, int] = {}
        self.main_svgs = 0
        self.external: list[str] = []
        self.labels: dict[str, dict[str, str]] = {}  # figure -> gtitle/xtitle/ytitle -> text
        self.label: tuple[str, str] | None = None
        self.findings = 0  # items of the key-findings card
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        for key in ("src", "href"):
            if re.match(r"\s*(https?:)?//", a.get(key, ""), re.I):
                self.external.append(f"<{tag} {key}={a[key]}>")
        classes = a.get("class", "").split()
        if "main-svg" in classes:
            self.main_svgs += 1
            inside = [fig for _, fig in self.open if fig and fig in self.svgs]
            if inside:
                self.svgs[inside[-1]] += 1
        figure = a["id"] if "plotly-graph-div" in classes else None
        if figure:
            self.svgs[figure] = 0
            self.labels[figure] = {}
        inside = [fig for _, fig in self.open if fig]
        kinds = {"gtitle", "xtitle", "ytitle"} & set(classes)
        if tag == "text" and inside and kinds:
            self.label = (inside[-1], kinds.pop())
        if tag == "li" and any(t == "section" and f == "key-findings" for t, f in self.open):
            self.findings += 1
        if tag == "section" and a.get("id") == "key-findings":
            figure = "key-findings"  # marks the card (not a figure) on the open stack
        if tag not in VOID:
            self.open.append((tag, figure))

    def handle_data(self, data: str) -> None:
        if self.label is not None:
            fig, kind = self.label
            self.labels[fig][kind] = self.labels[fig].get(kind, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "text":
            self.label = None
        for i in range(len(self.open) - 1, -1, -1):
            if self.open[i][0] == tag:
                del self.open[i:]
                return


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """A small real run with its scheme-off baseline: (audit doc, daily table)."""
    tmp = tmp_path_factory.mktemp("report")
    sc = xinyong.load_scenario("s1", adults=1500, days=400, seed=3)
    xinyong.run(sc, out=tmp / "run")
    xinyong.run(baseline_scenario(sc), out=tmp / "base")
    rd = RunDir(tmp / "run")
    metrics = audit_metrics(rd.connect(), sc, rd.meta(), RunDir(tmp / "base").connect())
    return {"run": rd.summary(), "replicates": 1, **metrics}, rd.table("daily")


def chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; CI must run `apt-get install -y chromium`")
        pytest.skip("chromium is not installed (apt-get install chromium): no browser test")
    return exe


def test_report_renders_offline_in_chromium(audited, tmp_path):
    doc, daily = audited
    report = tmp_path / "report.html"
    render_report(doc, daily, report)
    source = Page(report.read_text("utf-8"))
    assert source.external == []
    figures = list(source.svgs)
    # tiers, one chart per list (4), survival, disparity, >= 1 spillover, proportionality,
    # channels, behaviour
    assert len(figures) >= 12

    profile = tmp_path / "profile"
    dom = subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    rendered = Page(dom)
    assert list(rendered.svgs) == figures
    assert rendered.main_svgs >= len(figures)
    assert {fig: n for fig, n in rendered.svgs.items() if n == 0} == {}
    # The report opens with the key findings, in plain language with counts and links.
    assert rendered.findings >= 4
    assert 'id="key-findings"' in dom and "at some point" in dom and "#def-" in dom
    # Every chart has a title (stating its finding) and both axis titles, as drawn.
    unlabelled = {
        fig: labels
        for fig, labels in rendered.labels.items()
        if not all(labels.get(k, "").strip() for k in ("gtitle", "xtitle", "ytitle"))
    }
    assert unlabelled == {}
    # Each chart's data downloads as CSV from the page itself.
    assert dom.count('download="') >= len(figures)


def test_report_is_deterministic(audited, tmp_path):
    doc, daily = audited
    render_report(doc, daily, tmp_path / "a.html")
    render_report(copy.deepcopy(doc), daily, tmp_path / "b.html")
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()
    text = (tmp_path / "a.html").read_text("utf-8")
    figures = len(Page(text).svgs)
    assert text.count("Plotly.newPlot(") == figures
    assert text.count("* plotly.js v") == 1  # the bundle, embedded once
    assert len(re.findall(r"<script\b", text)) == 2 + figures  # config, bundle, one per figure
    assert "four-fifths" in text and "GDPR Art. 22" in text
    # Plain words where a reader meets the unit (the data keep their ids).
    words = re.sub(r'"[a-z_.]*sanction_days[a-z_]*"', "", text)
    assert "sanction-day" not in words.lower() and "days under a sanction" in text


def _nulled(x):
    """Every scalar leaf of x set to None (lists and dicts kept)."""
    if isinstance(x, dict):
        return {k: _nulled(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nulled(v) for v in x]
    return None


def test_report_renders_nulls_and_escapes_text(audited, tmp_path):
    doc, daily = audited
    hostile = "<script>alert(1)</script>"
    nulled = {
        key: doc[key] if key in ("survival", "spillover") else _nulled(doc[key])
        for key in doc
        if key != "run"
    }
    nulled["run"] = {"scenario": hostile, "adults": None, "days": None, "seed": None}
    nulled["behaviour"] = []
    nulled["survival"] = {hostile: {"t": [0, None], "s": [1.0, None], "low": [], "high": None}}
    nulled["disparity"][0].update(metric=hostile, ratio=0.0, ratio_low=None, ratio_high=3.0)
    render_report(nulled, daily, tmp_path / "nulls.html")
    text = (tmp_path / "nulls.html").read_text("utf-8")
    assert "n/a" in text
    assert "No scheme-off baseline" in text
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)" in text

    render_report({}, pa.table({"day": pa.array([], pa.int64())}), tmp_path / "empty.html")
    assert "<script" not in (tmp_path / "empty.html").read_text("utf-8")


def test_compare_renders_deterministically(tmp_path):
    side = {"path": "runs/a", "scenario": "s1", "seed": 1, "replicates": 3}
    doc = {
        "a": side,
        "b": {**side, "path": "runs/<b>", "scenario": "s1-reform"},
        "rows": [
            {
                "metric": "wrongly_listed_share.blacklist",
                "meaning": "adults on blacklist at T only through wrong records",
                "a": 0.004,
                "b": 0.001,
                "difference": -0.003,
                "low": -0.004,
                "high": -0.002,
                "kind": "paired-seeds",
                "significant": True,
            },
            {
                "metric": "days_to_remedy",
                "meaning": None,
                "a": 60.0,
                "b": None,
                "difference": None,
                "low": None,
                "high": None,
                "kind": "none",
                "significant": False,
            },
        ],
        "parameters": [{"key": "channels.camera.misattribute", "a": 0.1, "b": 0.05}],
        "interval": "paired-seeds",
        "interval_meaning": "95% Student t interval of per-seed differences (paired by seed)",
    }
    render_compare(doc, tmp_path / "a.html")
    render_compare(copy.deepcopy(doc), tmp_path / "b.html")
    first = (tmp_path / "a.html").read_bytes()
    assert first == (tmp_path / "b.html").read_bytes()
    text = first.decode()
    assert "1 of 2 metrics differ significantly" in text
    # A parameter's name wraps only after its dots, never mid-word.
    assert "channels.<wbr>camera.<wbr>misattribute" in text and "against runs/a (s1)" in text
    assert "runs/&lt;b&gt;" in text and "n/a" in text
    assert Page(text).external == []


def test_counts_take_their_noun() -> None:
    from xinyong.audit.format import counted

    assert counted(1, "person", "people") == "1 person"
    assert counted(0, "person", "people") == "0 people"
    assert counted(12_345, "child", "children") == "12,345 children"
    assert counted(3.5, "person", "people") == "about 3.5 people"  # a mean over seeds
    assert counted(0.25, "person", "people") == "about 0.2 people"  # not "about 0"
    assert counted(742.25, "person", "people") == "about 742 people"


def test_report_numbers_and_names_as_read() -> None:
    """Float noise reads 0, never an exponent; an id wraps after its separators only."""
    from xinyong.audit.format import name, num

    assert num(1.084e-19) == "0" and num(-2.961e-16) == "0"
    assert num(0.000123) == "0.000123" and num(12_345.6) == "12,346" and num(None) == "n/a"
    assert name("list_share.blacklist") == "list_<wbr>share.<wbr>blacklist"
    assert name("<a_b>") == "&lt;a_<wbr>b&gt;"


def test_chart_titles_fit_a_phone_between_words() -> None:
    """A title or axis title wraps between words into lines that fit a 390 px chart, and the
    top margin grows with its lines and the legend's rows (on a phone)."""
    from xinyong.audit.figures import AXIS_CHARS, TITLE_CHARS, layout, wrap

    long = "transport_ban: 9 adults listed at the end, 1 of them wrongly (about 2.5 wrongly at "
    long += "some point per run over 2 seeds; curves of seed 1)"
    lines = wrap(long, TITLE_CHARS)
    assert " ".join(lines) == long and all(len(line) <= TITLE_CHARS for line in lines)
    assert wrap("a\nb<br>c", 10) == ["a", "b", "c"]
    assert wrap("transport_ban_and_more_words", 5) == ["transport_ban_and_more_words"]  # whole
    axis_title = {"title": {"text": "days under a sanction (each sanction counted)"}}
    lay = layout(
        long, 300, legend=["blacklist", "blacklist: wrongful spells"] * 3, xaxis=axis_title
    )
    assert lay["title"]["text"] == "<br>".join(lines)
    title_px = 24 + len(lines) * 20
    assert lay["margin"]["t"] > title_px + 2 * 20  # the legend's rows on a phone, below it
    assert lay["height"] == 300 + lay["margin"]["t"] - 50  # the plot keeps its height
    assert lay["legend"]["yanchor"] == "bottom" and lay["showlegend"] is True
    axis = lay["xaxis"]["title"]["text"].split("<br>")
    assert all(len(line) <= AXIS_CHARS for line in axis) and len(axis) == 3
    assert layout("short", 300)["margin"]["t"] == 50 and "showlegend" not in layout("x", 300)
