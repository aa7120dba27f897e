"""End to end in a real browser: Playwright drives Debian's chromium against `xinyong serve`'s
application on a local port. Design a reform in the form, run it at a small size, watch the
progress reach 100%, read the findings, compare with the base. Every request the pages make
must stay on this machine. Where chromium is missing the test is skipped, and under CI it
fails."""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("width", [1280, 390])
def test_pages_fit_the_screen(page, server, width, tmp_path):
    """At desktop and phone width no page is wider than the screen (tables scroll inside)."""
    base, runs = server
    page.set_viewport_size({"width": width, "height": 900})
    urls = ["/", "/design?scenario=r1", "/run?scenario=r1", "/compare"]
    made = sorted(p.name for p in runs.iterdir() if (p / "report.html").is_file())
    urls += [f"/runs/{made[0]}", f"/runs/{made[0]}/people?person=0"] if made else []
    compared = sorted(p.name for p in (runs / "compare").glob("*") if p.is_dir())
    urls += [f"/compare/{compared[0]}"] if compared else []
    for url in urls:
        page.goto(base + url)
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= width, f"{url} is {wide} px wide at {width} px"
        name = re.sub(r"[^a-z0-9]+", "-", url).strip("-") or "home"
        page.screenshot(path=str(tmp_path / f"{name}-{width}.png"), full_page=False)
    assert Path(tmp_path).glob("*.png")
