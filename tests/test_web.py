"""The web application's API and pages, through FastAPI's test client (no browser)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import xinyong
from xinyong.store import RunDir
from xinyong.web import Settings, create_app
from xinyong.web.designs import fields

FINISHED = ("done", "failed", "cancelled")


def wait(client: TestClient, job_id: str, timeout: float = 300) -> dict:
    """Poll a job until it finishes (bounded: a broken job fails the test, never hangs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in FINISHED:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("web-runs")


@pytest.fixture(scope="module")
def client(runs):
    settings = Settings(runs=runs, max_adults=50_000, max_days=800, max_replicates=3, warm=False)
    with TestClient(create_app(settings), base_url="http://localhost") as c:
        yield c


@pytest.fixture(scope="module")
def finished(client) -> dict:
    """One small S1 run from the API, audited (wrong listings happen at this size)."""
    res = client.post(
        "/api/runs",
        json={"scenario": "s1", "adults": 3000, "days": 400, "seed": 3, "baseline": False},
    )
    assert res.status_code == 202, res.text
    job = wait(client, res.json()["id"])
    assert job["state"] == "done", job
    return job


def test_home_scenarios_and_schema(client):
    home = client.get("/")
    assert home.status_code == 200
    for name in xinyong.scenario.builtin_scenarios():
        assert f"/run?scenario={name}" in home.text
    assert "/design?pack=suqian" in home.text
    data = client.get("/api/scenarios").json()
    assert {s["name"] for s in data["scenarios"]} == {
        "c1",
        "c1-2021",
        "c1-defaulters-2024",
        "cities",
        "national",
        "p1",
        "p1c",
        "r1",
        "s1",
        "three-cities",
    }
    assert {p["id"] for p in data["packs"]} >= {"rongcheng", "national-defaulters"}
    schema = client.get("/openapi.json").json()
    assert "/api/runs" in schema["paths"] and "/api/compare" in schema["paths"]


def test_pages_and_assets_are_local(client):
    """Nothing a page loads comes from another host; the assets are served by the package."""
    for url in ("/", "/design", "/run", "/compare", "/design?pack=suqian"):
        text = client.get(url).text
        refs = re.findall(r'(?:src|href)="([^"]+)"', text)
        assert refs and not [r for r in refs if re.match(r"(https?:)?//", r)], url
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/app.css").status_code == 200
    for icon in ("/favicon.ico", "/static/favicon.svg"):  # asked for by every browser
        got = client.get(icon)
        assert got.status_code == 200 and got.headers["content-type"].startswith("image/svg")
    assert client.get("/docs").status_code == 404  # Swagger UI would load a CDN


def test_designer_form_round_trip(client):
    page = client.get("/design?scenario=s1")
    assert page.status_code == 200
    doc = xinyong.load_scenario("s1").model_dump(mode="json")
    form = {f.key: f.value for f in fields(doc) if f.kind != "check" or f.value == "true"}
    for key in (
        "packs.rongcheng.rules.jaywalking.points",
        "packs.rongcheng.tiers.2.min_score",
        "packs.rongcheng.lists.blacklist.min_stay_days",
        "channels.camera.misattribute",
        "channels.camera.weights.minority",
        "packs.rongcheng.lists.blacklist.consequences.0.name",
    ):
        assert f'name="{key}"' in page.text, key
    form["_doc"] = xinyong.load_scenario("s1").to_yaml()
    form["name"] = "s1-gentler-cameras"
    form["channels.camera.misattribute"] = "1/100"
    form["packs.rongcheng.rules.jaywalking.points"] = "-1"
    form.pop("packs.rongcheng.lists.blacklist.consequences.1.keep")  # remove a sanction
    res = client.post("/design", data=form, follow_redirects=False)
    assert res.status_code == 303, res.text[-2000:]
    did = re.search(r"design=([0-9a-f]{16})", res.headers["location"]).group(1)
    saved = client.get(f"/api/designs/{did}").json()
    data, lines = xinyong.yamlio.parse_yaml(saved["yaml"], "saved.yaml")
    sc = xinyong.scenario.validate_scenario(data, "saved.yaml", lines)
    assert sc.name == "s1-gentler-cameras"
    assert sc.channels["camera"].misattribute == pytest.approx(0.01)
    assert sc.packs["rongcheng"].rules["jaywalking"].points == -1
    names = [c.name for c in sc.packs["rongcheng"].lists["blacklist"].consequences]
    base = [
        c.name
        for c in xinyong.load_scenario("s1").packs["rongcheng"].lists["blacklist"].consequences
    ]
    assert names == base[:1] + base[2:]
    yaml_text = client.get(f"/designs/{did}.yaml")
    assert yaml_text.status_code == 200 and "attachment" in yaml_text.headers["content-disposition"]


def test_designer_shows_the_credit_parameters_with_units_and_bounds(client):
    """p1's credit section: every declared single-valued parameter, numbers labelled with
    their unit and bounds, the lender's policy as a choice, the two sharing switches as ticks;
    the form's values come back in the saved scenario."""
    page = client.get("/design?scenario=p1")
    assert page.status_code == 200
    text = page.text
    for key in (
        "credit.score_min",
        "credit.loan_rate",
        "credit.file_share.young",
        "credit.capacity.established",
        "credit.records_scale",
        "credit.worthy_max",
    ):
        assert f'name="{key}"' in text, key
    assert "the score policy&#39;s least private score to approve (points, 350 .. 950)" in text
    assert (
        "days from approval to the loan&#39;s end (repaid or defaulted) (days, 1 .. 3,650)" in text
    )
    lender = re.search(r'<select[^>]*name="credit.lender".*?</select>', text, re.S).group(0)
    assert re.findall(r'<option value="([a-z_]+)"', lender) == ["file", "score", "file_or_score"]
    assert 'value="file_or_score" selected' in lender
    for switch, ticked in (("court_list_to_private", True), ("records_to_private", False)):
        box = re.search(rf'<input type="checkbox"[^>]*name="credit.{switch}"[^>]*>', text)
        assert box is not None and ("checked" in box.group(0)) == ticked, switch
    doc = xinyong.load_scenario("p1").model_dump(mode="json")
    form = {f.key: f.value for f in fields(doc) if f.kind != "check" or f.value == "true"}
    form["_doc"] = xinyong.load_scenario("p1").to_yaml()
    form["name"] = "p1-networked-score-lender"
    form["credit.lender"] = "score"
    form["credit.records_to_private"] = "true"
    form["credit.score_min"] = "650"
    res = client.post("/design", data=form, follow_redirects=False)
    assert res.status_code == 303, res.text[-2000:]
    did = re.search(r"design=([0-9a-f]{16})", res.headers["location"]).group(1)
    data, lines = xinyong.yamlio.parse_yaml(client.get(f"/api/designs/{did}").json()["yaml"], "d")
    credit = xinyong.scenario.validate_scenario(data, "d", lines).credit
    assert (credit.lender, credit.records_to_private, credit.score_min) == ("score", True, 650)
    assert credit.court_list_to_private is True  # ticked in the form: kept


def test_designer_errors_next_to_the_field_as_validate_says(client, tmp_path):
    doc = xinyong.load_scenario("r1").model_dump(mode="json")
    form = {f.key: f.value for f in fields(doc) if f.kind != "check" or f.value == "true"}
    form["_doc"] = xinyong.load_scenario("r1").to_yaml()
    form["packs.rongcheng.tiers.2.min_score"] = "2000"  # above the grade before it
    res = client.post("/design", data=form)
    assert res.status_code == 422
    error = re.search(r'data-field="([^"]+)">([^<]+)<', res.text)
    assert error.group(1) == "packs.rongcheng.tiers.2.min_score"
    # The same message as `xinyong validate` gives for the same file.
    path = tmp_path / "design.yaml"
    data = json.loads(json.dumps(doc))
    data["packs"]["rongcheng"]["tiers"][2]["min_score"] = 2000
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(xinyong.XinyongError) as err:
        xinyong.load_scenario(path)
    assert err.value.message in error.group(2)
    shown = re.search(r'id="validate-error">([^<]+)<', res.text).group(1)
    # The same line, up to the line number (the form's YAML is laid out a little differently).
    assert re.sub(r"^design.yaml:\d+: ", "", shown) == f"{err.value.field}: {err.value.message}"

    form["packs.rongcheng.tiers.2.min_score"] = "960"
    form["channels.camera.misattribute"] = "lots"
    res = client.post("/design", data=form)
    assert res.status_code == 422
    assert 'data-field="channels.camera.misattribute"' in res.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("!!python/object/apply:os.system ['echo hi']", "invalid YAML"),
        ("a: &a [1, 2]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
         "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
         "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
         "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
         "f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n", "expands to more than"),
        ("extends: ../../etc/secret.yaml\nname: x\n", "cannot refer to files"),
        ("extends: r1\nname: x\ncities: [{name: c, share: 1.0, pack: /etc/x.yaml}]\n",
         "cannot refer to files"),
        ("name: x\nname: y\n", "key repeats"),
        ("\x1f", "unacceptable character"),
    ],
)  # fmt: skip
def test_uploads_are_data_only(client, text, message):
    res = client.post("/api/validate", json={"yaml": text})
    assert res.status_code == 200
    assert res.json()["ok"] is False and message in res.json()["error"]
    up = client.post(
        "/design",
        data={"_doc": xinyong.load_scenario("r1").to_yaml()},
        files={"upload": ("x.yaml", text.encode(), "text/yaml")},
    )
    assert up.status_code == 422 and message in up.text.replace("&#39;", "'")


def test_upload_scenario_and_pack(client):
    res = client.post("/api/validate", json={"yaml": "extends: s1\nname: mine\n"})
    assert res.json()["ok"] is True and "scenario 'mine'" in res.json()["summary"]
    pack = (xinyong.scheme.schema.PACKS_DIR / "rongcheng.yaml").read_text()
    pack = pack.replace("start_score: {value: 1000,", "start_score: {value: 900,")
    assert client.post("/api/validate", json={"yaml": pack}).json()["kind"] == "pack"
    up = client.post(
        "/design",
        data={"_doc": xinyong.load_scenario("r1").to_yaml()},
        files={"upload": ("p.yaml", pack.encode(), "text/yaml")},
        follow_redirects=False,
    )
    assert up.status_code == 303
    did = re.search(r"design=([0-9a-f]{16})", up.headers["location"]).group(1)
    assert "value: 900" in client.get(f"/api/designs/{did}").json()["yaml"]


def test_bounds_are_clear_4xx(client, runs):
    too_many = client.post("/api/runs", json={"scenario": "r1", "adults": 50_001})
    assert too_many.status_code == 422 and "at most 50,000 adults" in too_many.json()["detail"]
    days = client.post("/api/runs", json={"scenario": "r1", "adults": 10, "days": 801})
    assert days.status_code == 422 and "at most 800 days" in days.json()["detail"]
    reps = client.post("/api/runs", json={"scenario": "r1", "adults": 10, "replicates": 4})
    assert reps.status_code == 422 and "replicates" in reps.json()["detail"]
    unknown = client.post("/api/runs", json={"scenario": "nope", "adults": 10})
    assert unknown.status_code == 422 and "unknown scenario" in unknown.json()["detail"]
    big = client.post("/api/validate", content=b"{" + b" " * (3 << 20) + b"}")
    assert big.status_code == 413 and "larger than" in big.json()["detail"]
    extra = client.post("/api/runs", json={"scenario": "r1", "sql": "COPY x TO 'y'"})
    assert extra.status_code == 422
    with TestClient(
        create_app(Settings(runs=runs, max_queued=0, warm=False)), base_url="http://localhost"
    ) as full:
        queued = full.post("/api/runs", json={"scenario": "r1", "adults": 10, "days": 2})
        assert queued.status_code == 429 and "waiting" in queued.json()["detail"]


def test_run_ids_cannot_escape_runs(client, runs, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (runs / "link").symlink_to(outside)
    for url in (
        "/api/runs/..%2F..%2Fetc",
        "/api/runs/%2e%2e",
        "/api/runs/link",
        "/runs/..%2Foutside",
        "/runs/link/report.html",
        "/api/jobs/..%2Fx/cancel",
        "/designs/..%2F..%2Fx.yaml",
    ):
        res = client.post(url) if url.endswith("cancel") else client.get(url)
        assert res.status_code in (404, 405, 422), url
    settings = Settings(runs=runs)
    for bad in ("../x", "/etc", ".hidden", "a/b", "", "link"):
        with pytest.raises(ValueError):
            settings.run_path(bad)
    assert not [r for r in client.get("/api/runs").json() if r["id"] == "link"]


def test_a_run_is_an_ordinary_run_directory(client, finished, runs):
    run_id = finished["result"]["run"]
    assert finished["progress"] == 1.0 and finished["done"] == finished["total"]
    path = runs / run_id
    assert RunDir(path).summary()["adults"] == 3000
    assert (path / "report.html").is_file() and (path / "metrics.json").is_file()
    assert (
        xinyong.audit(path, report=False).metrics.loc[
            "ever_wrongly_listed_share.blacklist", "value"
        ]
        >= 0
    )
    listed = client.get("/api/runs").json()
    assert listed[0]["id"] == run_id and listed[0]["key_findings"]
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200 and 'id="key-findings"' in page.text
    assert f'src="/runs/{run_id}/report.html"' in page.text
    assert client.get(f"/runs/{run_id}/report.html").status_code == 200
    assert client.get(f"/api/runs/{run_id}/audit").json()["interval"] == "within-run"
    # The command line reads it.
    from xinyong.cli import main

    with pytest.raises(SystemExit) as code:
        main(["sql", str(path), "SELECT count(*) FROM records"])
    assert code.value.code == 0


def test_events_stream_to_the_end(client, finished):
    with client.stream("GET", f"/api/jobs/{finished['id']}/events") as res:
        assert res.headers["content-type"].startswith("text/event-stream")
        text = "".join(res.iter_text())
    last = json.loads(text.strip().split("data: ")[-1])
    assert last["state"] == "done" and last["progress"] == 1.0


def test_person_story_and_a_wrongly_blacklisted_one(client, finished):
    run_id = finished["result"]["run"]
    story = client.get(f"/api/runs/{run_id}/people/0").json()
    assert story["person"]["person"] == 0 and story["story"]["verdict"]
    assert client.get(f"/api/runs/{run_id}/people/3000").status_code == 404
    wrong = client.get(f"/api/runs/{run_id}/wrongly-listed").json()
    assert wrong["list"] == "blacklist" and wrong["person"] is not None
    doc = xinyong.explain(Path(client.app.state.settings.runs) / run_id, wrong["person"])
    assert any(s["wrong_days"] for s in doc.doc["story"]["spells"])
    page = client.get(f"/runs/{run_id}/people?wrong=1")
    assert page.status_code == 200 and 'id="verdict"' in page.text
    assert "rongly" in page.text  # "Wrongly on ..." or "Was wrongly on ..."
    assert client.get(f"/runs/{run_id}/people?person=abc").status_code == 422


def test_compare_a_run_with_a_reform_paired_by_seed(client, finished):
    run_id = finished["result"]["run"]
    design = client.post(
        "/api/designs",
        json={"scenario": "s1", "set": {"name": "s1-reform", "channels.camera.misattribute": 0.01}},
    )
    assert design.status_code == 201, design.text
    res = client.post(
        "/api/compare", json={"a": run_id, "reform": design.json()["id"], "replicates": 2}
    )
    assert res.status_code == 202, res.text
    job = wait(client, res.json()["id"])
    assert job["state"] == "done", job
    doc = client.get(f"/api/compare/{job['id']}").json()
    assert doc["interval"] == "paired-seeds" and doc["a"]["seeds"] == doc["b"]["seeds"] == [3, 4]
    assert {"key": "channels.camera.misattribute", "a": 0.1, "b": 0.01} in doc["parameters"]
    page = client.get(f"/compare/{job['id']}")
    assert page.status_code == 200 and 'id="differences"' in page.text
    assert client.get(f"/compare/{job['id']}/compare.html").status_code == 200
    # The reform is a run of its own, at A's size and seed.
    reform = client.get(f"/api/runs/{job['result']['b']}").json()
    assert (reform["adults"], reform["days"], reform["seed"]) == (3000, 400, 3)


def test_cancel_leaves_nothing(client, runs):
    res = client.post(
        "/api/runs", json={"scenario": "r1", "adults": 50_000, "days": 800, "baseline": False}
    )
    job_id = res.json()["id"]
    deadline = time.monotonic() + 120
    while client.get(f"/api/jobs/{job_id}").json()["phase"] != "simulating":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    cancelled = client.post(f"/api/jobs/{job_id}/cancel").json()
    assert cancelled["id"] == job_id
    job = wait(client, job_id)
    assert job["state"] == "cancelled"
    assert not (runs / job_id).exists()
    assert not [p for p in runs.iterdir() if p.name.startswith(f".{job_id}.partial")]


def test_serve_warns_off_localhost(monkeypatch, capsys, tmp_path):
    import xinyong.web
    from xinyong.cli import main

    seen = {}
    monkeypatch.setattr(xinyong.web, "serve", lambda s, host, port: seen.update(host=host))
    with pytest.raises(SystemExit):
        main(["serve", "--host", "0.0.0.0", "--runs", str(tmp_path)])
    assert seen["host"] == "0.0.0.0"
    assert "warning: listening on 0.0.0.0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--runs", str(tmp_path)])
    assert seen["host"] == "127.0.0.1" and "warning" not in capsys.readouterr().err
