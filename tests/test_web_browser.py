"""End to end in a real browser: Playwright drives Debian's chromium against `xinyong serve`'s
application on a local port. Design a reform in the form, run it at a small size, watch the
progress reach 100%, read the findings, compare with the base. Every request the pages make
must stay on this machine. Where chromium is missing the test is skipped, and under CI it
fails."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import xinyong
from tests.conftest import CHROMIUM_FLAGS
from xinyong.web import Settings, create_app

CHROMIUM = "/usr/bin/chromium"

RUN_MS = 240_000  # a bound for a small run and its audit, not a timing that is checked


def chromium() -> str:
    exe = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; CI must run `apt-get install -y chromium`")
        pytest.skip("chromium is not installed (apt-get install chromium): no browser test")
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The application under uvicorn on 127.0.0.1, in a thread of this process."""
    import uvicorn

    runs = tmp_path_factory.mktemp("browser-runs")
    app = create_app(Settings(runs=runs, max_adults=20_000, max_days=400, max_replicates=3))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", runs
    srv.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=exe, headless=True, args=CHROMIUM_FLAGS
        )
        yield context
        context.close()


@pytest.fixture
def page(browser, server):
    """A page whose requests to any other host are refused and recorded."""
    base, _ = server
    outside: list[str] = []

    def route(r):
        if r.request.url.startswith(base) or r.request.url.startswith(("data:", "about:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    pg = browser.new_page()
    pg.route("**/*", route)
    pg.set_default_timeout(30_000)
    yield pg
    pg.close()
    assert not outside, f"requests off this machine: {outside}"


def run_in_page(page, adults: int, days: int) -> str:
    """Fill the run form, start it, watch the bar reach 100%; the run's id."""
    page.fill("input[name=adults]", str(adults))
    page.fill("input[name=days]", str(days))
    page.uncheck("input[name=baseline]")
    page.click("#start")
    page.wait_for_selector("#job:not([hidden])")
    page.wait_for_selector("#job[data-state=done]", timeout=RUN_MS)
    assert page.get_attribute("#bar", "aria-valuenow") == "100"
    assert page.inner_text("#percent") == "100%"
    href = page.get_attribute("#result-link", "href")
    return href.rsplit("/", 1)[-1]


def test_design_run_read_and_compare(page, server, tmp_path):
    base, runs = server
    # The base: S1 from the home page, at a small size.
    page.goto(base + "/")
    page.click("a[href='/run?scenario=s1']")
    base_run = run_in_page(page, 3000, 300)
    page.click("#result-link")
    page.wait_for_selector("#key-findings li")

    # A reform designed in the form: gentler cameras, a shorter minimum stay.
    page.goto(base + "/design?scenario=s1")
    page.fill("input[name=name]", "s1-reform")
    page.fill("input[name='channels.camera.misattribute']", "0.01")
    page.fill("input[name='packs.rongcheng.lists.blacklist.min_stay_days']", "90")
    # A mistake first: shown next to its field.
    page.fill("input[name='packs.rongcheng.tiers.2.min_score']", "5000")
    page.click("#validate")
    error = page.locator(".field-error[data-field='packs.rongcheng.tiers.2.min_score']")
    assert "tier thresholds must fall" in error.inner_text()
    assert "design.yaml" in page.inner_text("#validate-error")
    page.fill("input[name='packs.rongcheng.tiers.2.min_score']", "960")
    page.click("#validate")
    page.wait_for_selector("#saved")
    page.click("#run-design")
    reform_run = run_in_page(page, 3000, 300)
    page.click("#result-link")
    page.wait_for_selector("#key-findings li")
    assert page.locator("#key-findings li").count() >= 1
    assert page.locator("#metrics tbody tr").count() >= 3
    # The report's charts inside the page, drawn by its own (embedded) plotly.
    frame = page.frame_locator("iframe.report")
    frame.locator(".plotly-graph-div .main-svg").first.wait_for(timeout=60_000)
    # A wrongly blacklisted person's story.
    page.click("#random-wrong")
    page.wait_for_selector("#verdict")
    assert page.inner_text("#verdict")

    # Compare the reform with the base, paired over two seeds.
    page.goto(base + f"/compare?a={base_run}")
    page.check("input[name=side][value=b]")
    page.select_option("select[name=b]", reform_run)
    page.fill("input[name=replicates]", "2")
    page.click("#start")
    page.wait_for_selector("#job[data-state=done]", timeout=RUN_MS)
    assert page.get_attribute("#bar", "aria-valuenow") == "100"
    page.click("#result-link")
    page.wait_for_selector("#differences tbody tr")
    assert page.inner_text("#interval-kind") == "paired-seeds"
    assert "channels.camera.misattribute" in page.inner_text("#parameters")
    frame = page.frame_locator("iframe.report")
    frame.locator(".plotly-graph-div .main-svg").first.wait_for(timeout=60_000)
    # The runs are ordinary run directories.
    assert (runs / base_run / "run.json").is_file() and (
        runs / reform_run / "report.html"
    ).is_file()


# Layout defects on the page in view, as one list of readable lines: an element that reaches
# past the screen's right edge outside a box that scrolls sideways; a word wider than the
# box it wraps in (so the browser cuts it mid-word, or it overflows); text cut with an
# ellipsis; a report frame taller than the screen (the page, not the frame, would scroll).
LAYOUT_DEFECTS = "\n".join(
    line
    for line in (Path(__file__).parent / "layout_defects.js").read_text().splitlines()
    if not line.startswith("//")
)

# Words a reader should never meet: a count with the wrong number, float noise as a value,
# jargon where plain words exist.
WRONG_WORDS = re.compile(
    r"\b1 (people|adults|cities|days|seeds|runs|metrics|more problems)\b"
    r"|\b(?!1 )\d[\d,]* (person|city|seed)(?![-\w])|\d(\.\d+)?e[-+]\d"
    r"|restricted mean|value \(see the title\)|sanction-days?\b"
)

# The page's words, as a reader meets them (the key findings included).
OUR_WORDS = """() => {
  const main = (document.querySelector("main") || document.body).cloneNode(true);
  main.querySelectorAll("script, style").forEach((el) => el.remove());
  return main.textContent.replace(/\\s+/g, " ");
}"""

# Chart defects (a legend entry that draws nothing, a label overlapping another or past the
# chart's edge, an SI-prefixed tick): the charts of the page in view, their lines.
CHART_DEFECTS = "\n".join(
    line
    for line in (Path(__file__).parent / "chart_defects.js").read_text().splitlines()
    if not line.startswith("//")
)


def _post(base: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        base + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def _finished(base: str, job: dict) -> dict:
    deadline = time.monotonic() + RUN_MS / 1000
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{base}/api/jobs/{job['id']}", timeout=30) as answer:
            job = json.load(answer)
        if job["state"] in ("done", "failed", "cancelled"):
            assert job["state"] == "done", job
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job['id']} did not finish")


@pytest.fixture(scope="module")
def made(server) -> dict[str, str]:
    """A base run, a reform run and their comparison over two seeds, made through the API
    (the walk below reads them; the test above makes its own through the forms)."""
    base, _ = server
    small = {"adults": 3000, "days": 300, "seed": 0, "baseline": False}
    a = _finished(base, _post(base, "/api/runs", {"scenario": "s1", **small}))
    b = _finished(base, _post(base, "/api/runs", {"scenario": "r1", **small}))
    c = _finished(base, _post(base, "/api/compare", {"a": a["id"], "b": b["id"], "replicates": 2}))
    return {"a": a["id"], "b": b["id"], "compare": c["id"]}


@pytest.mark.parametrize("width", [1280, 390])
def test_pages_fit_the_screen(page, server, made, width, tmp_path):
    """Home, designer, run, results, a person's story, the compare form and a comparison, at
    desktop and phone width: nothing past the screen's edge, no word cut, the report frame
    within the screen, a key metric's value beside its name, counts in the right number."""
    base, _ = server
    page.set_viewport_size({"width": width, "height": 900})
    urls = [
        "/",
        "/design?scenario=r1",
        "/design?pack=suqian",
        "/run?scenario=r1",
        f"/runs/{made['a']}",
        f"/runs/{made['a']}/people?wrong=1",
        f"/compare?a={made['a']}",
        f"/compare/{made['compare']}",
    ]
    for url in urls:
        page.goto(base + url)
        page.wait_for_load_state("load")
        name = re.sub(r"[^a-z0-9]+", "-", url).strip("-") or "home"
        page.screenshot(path=str(tmp_path / f"{name}-{width}.png"), full_page=True)
        assert page.evaluate(LAYOUT_DEFECTS) == [], f"{url} at {width} px"
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= width, f"{url} is {wide} px wide at {width} px"
        for frame in page.frames:  # the page, and the report inside it
            text = frame.evaluate(OUR_WORDS)
            assert not WRONG_WORDS.search(text), f"{url}: {WRONG_WORDS.search(text)[0]!r}"
            assert "…" not in text, url
        for frame in page.frames[1:]:
            frame.wait_for_load_state("load")
            # At both widths: titles and labels within the chart, no two overlapping.
            charts = frame.evaluate(CHART_DEFECTS)
            assert charts == [], f"{url} at {width} px"
            # Its tables too, opened: nothing past the edge outside a box that scrolls.
            frame.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
            assert frame.evaluate(LAYOUT_DEFECTS) == [], f"the report in {url} at {width} px"
    # The results: a key metric's value in view beside its name, without scrolling sideways.
    page.goto(base + f"/runs/{made['a']}")
    row = page.locator("#metrics tbody tr").first
    for cell in (row.locator("th"), row.locator("td.num").first):
        box = cell.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    assert row.locator("td.num").first.inner_text().strip()
    # The comparison says in words what changed and what it did, before any table.
    page.goto(base + f"/compare/{made['compare']}")
    summary = page.inner_text("#summary")
    assert "B (r1) against A (s1), 2 seeds a side" in summary
    assert re.search(r"beyond the noise| rose from | fell from ", summary), summary
    # The base menu names each run's size, days and seed.
    page.goto(base + f"/compare?a={made['a']}")
    chosen = page.locator("select[name=a] option:checked").inner_text()
    assert chosen == f"{made['a']}: s1, 3,000 adults, 300 days, seed 0"
    # The designer's menu shows what is being edited.
    page.goto(base + "/design?scenario=r1")
    assert page.locator("select[name=scenario] option:checked").inner_text() == "r1"


@pytest.mark.parametrize("width", [1280, 390, 342])
def test_a_replicate_sets_report_fits_the_screen(browser, replicate_report, width):
    """The report of a replicate set of c1 (adults and companies, two seeds), read directly
    and as the results page frames it on a phone (342 px): no chart title, axis title, tick
    or legend past the chart's edge or over another, no table past the screen."""
    pg = browser.new_page()
    outside: list[str] = []
    pg.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:"))
             else (outside.append(r.request.url), r.abort()))  # fmt: skip
    pg.set_viewport_size({"width": width, "height": 900})
    pg.goto(replicate_report.as_uri())
    pg.wait_for_load_state("load")
    pg.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    assert pg.locator(".js-plotly-plot").count() >= 15
    assert pg.evaluate(CHART_DEFECTS) == [], f"at {width} px"
    assert pg.evaluate(LAYOUT_DEFECTS) == [], f"at {width} px"
    assert pg.evaluate("document.documentElement.scrollWidth") <= width
    pg.close()
    assert not outside


@pytest.fixture(scope="module")
def replicate_report(tmp_path_factory) -> Path:
    """c1 over two seeds, small, audited with its report."""
    path = tmp_path_factory.mktemp("replicates") / "c1"
    sc = xinyong.load_scenario("c1", adults=1500, days=730)
    xinyong.run_replicates(sc, path, 2, workers=2)
    xinyong.audit(path, baseline=False, report=True)
    return path / "report.html"
