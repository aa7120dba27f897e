"""Security and damage (issue 28): paths from users go through one resolver, the web app reads
nothing outside its runs, every reader runs one damage check, numbers and YAML are bounded.
Each case is refused in one line with exit code 2 (CLI) or a 4xx answer (web)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

import xinyong
from tests.test_reliability import main, one_line
from xinyong.errors import XinyongError
from xinyong.scenario import load_scenario, parse_number, parse_value
from xinyong.scheme.schema import PACKS_DIR
from xinyong.store import RunDir
from xinyong.web import Settings, create_app
from xinyong.web.app import host_name
from xinyong.yamlio import MAX_VALUES, load_yaml

SECRET = "top-secret-line-of-a-server-file"
TINY = ("--adults", "300", "--days", "8", "--quiet")


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small finished and audited run, copied by the tests that damage it."""
    out = tmp_path_factory.mktemp("made") / "run"
    xinyong.run(xinyong.load_scenario("s1", adults=300, days=20, seed=2), out)
    xinyong.audit(out, baseline=False, report=True)
    return out


def copy_of(run: Path, tmp: Path, name: str) -> Path:
    dest = tmp / name
    shutil.copytree(run, dest)
    return dest


@pytest.fixture(scope="module")
def secret(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A server file outside --runs that nothing may read."""
    path = tmp_path_factory.mktemp("outside") / "secret.yaml"
    path.write_text(f"id: x\n# {SECRET}\n")
    return path


@pytest.fixture(scope="module")
def web(made: Path, tmp_path_factory: pytest.TempPathFactory):
    runs = tmp_path_factory.mktemp("web-runs")
    shutil.copytree(made, runs / "good")
    settings = Settings(runs=runs, max_adults=1000, max_days=30, max_queued=0, warm=False)
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        yield client, runs


# 1. Paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["companies.packs.0", "cities.0.pack", "national_packs.0"],
)
def test_a_design_cannot_name_a_file_of_the_server(web, secret: Path, key: str) -> None:
    client, _ = web
    answers = []
    for ref in (str(secret), str(secret.with_name("absent.yaml")), "../../secret.yaml"):
        res = client.post("/api/designs", json={"scenario": "c1", "set": {key: ref}})
        assert res.status_code == 422, res.text
        assert SECRET not in res.text
        answers.append(res.json()["detail"].replace(ref, "REF"))
    # Whether the file exists is not revealed: the same words for a file there and not there.
    assert answers[0] == answers[1] == answers[2], answers
    assert "cannot refer to files" in answers[0]


def test_an_upload_cannot_name_a_file_of_the_server(web, secret: Path) -> None:
    client, _ = web
    uploads = [
        "extends: c1\nname: x\nset:\n  companies.packs.0: {ref}\n",
        "extends: c1\nname: x\ncompanies:\n  packs: [{ref}]\n",
        "extends: c1\nname: x\nnational_packs: [{ref}]\n",
        "extends: {ref}\nname: x\n",
    ]
    absent = secret.with_name("absent.yaml")
    for text in uploads:
        errors = []
        for ref in (secret, absent):
            res = client.post("/api/validate", json={"yaml": text.format(ref=ref)})
            assert res.status_code == 200 and not res.json()["ok"], res.text
            assert SECRET not in res.text
            errors.append(res.json()["error"].replace(str(ref), "REF"))
            res = client.post("/api/designs", json={"yaml": text.format(ref=ref)})
            assert res.status_code == 422 and SECRET not in res.text, res.text
        assert errors[0] == errors[1], errors  # existence not revealed


def test_the_cli_still_follows_a_pack_given_by_path(tmp_path: Path) -> None:
    from xinyong.scenario import SCENARIOS_DIR

    shutil.copy(PACKS_DIR / "national-tax-rating.yaml", tmp_path / "my-pack.yaml")
    text = (SCENARIOS_DIR / "c1.yaml").read_text()
    assert "[national-tax-rating," in text
    mine = tmp_path / "mine.yaml"
    mine.write_text(text.replace("[national-tax-rating,", "[my-pack.yaml,"))
    assert "national-tax-rating" in load_scenario(mine).company_packs


@pytest.mark.parametrize("name", ["report.html", "summary.json", "metrics.json"])
def test_a_symbolic_link_in_a_run_is_never_followed(web, secret: Path, name: str) -> None:
    client, runs = web
    run = copy_of(runs / "good", runs, f"linked-{name.split('.')[0]}")
    (run / name).unlink()
    (run / name).symlink_to(secret)
    for url in (f"/runs/{run.name}/report.html", f"/api/runs/{run.name}", "/api/runs"):
        res = client.get(url)
        assert SECRET not in res.text
        if url != "/api/runs":
            assert res.status_code == 404, (url, res.status_code)
    assert run.name not in [r["id"] for r in client.get("/api/runs").json()]
    assert "good" in [r["id"] for r in client.get("/api/runs").json()]
    # The command line refuses the run in one line too.
    with pytest.raises(XinyongError, match="symbolic link"):
        RunDir(run)


def test_a_linked_table_part_is_refused(made: Path, tmp_path: Path, capsys) -> None:
    run = copy_of(made, tmp_path, "run")
    part = next((run / "records").glob("part-*.parquet"))
    moved = tmp_path / "elsewhere.parquet"
    part.rename(moved)
    part.symlink_to(moved)
    code, _, err = main(capsys, "sql", run, "SELECT count(*) FROM records")
    one_line(code, err, "part-", "symbolic link")


# 2. Strict JSON, Host, body size --------------------------------------------------------------

POSTS = {
    "/api/runs": {"scenario": "s1", "adults": 100, "days": 5},
    "/api/validate": {"yaml": "name: x\n"},
    "/api/designs": {"scenario": "s1", "set": {"population.minority_share": 0.2}},
    "/api/compare": {"a": "good", "b": "good", "replicates": 1},
}
NOT_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]


@pytest.mark.parametrize("url", list(POSTS))
@pytest.mark.parametrize("number", NOT_FINITE)
def test_non_finite_numbers_are_422(web, url: str, number: str) -> None:
    client, _ = web
    body = dict(POSTS[url])
    first = next(iter(body))
    bodies = [
        number,  # the whole body
        json.dumps(body).replace(json.dumps(body[first]), number, 1),  # a field
        json.dumps({**body, "set": {"population.adults": "X"}}).replace('"X"', number),
    ]
    for raw in bodies:
        res = client.post(url, content=raw, headers={"content-type": "application/json"})
        assert res.status_code == 422, (raw, res.status_code, res.text)
        assert res.json()["detail"]


def test_deep_keys_and_values_are_422(web) -> None:
    client, _ = web
    deep_key = {"scenario": "s1", "set": {"a." * 3000 + "b": 1}}
    res = client.post("/api/designs", json=deep_key)
    assert res.status_code == 422, res.text
    assert "at most 32 parts" in res.text
    for depth in (40, 5000, 100_000):
        raw = '{"scenario": "s1", "set": {"x": ' + "[" * depth + "]" * depth + "}}"
        for url in POSTS:
            res = client.post(url, content=raw, headers={"content-type": "application/json"})
            assert res.status_code == 422, (url, depth, res.text)
            assert "nested more than" in res.json()["detail"]
    deep_yaml = "name: x\nset:\n  a: " + "[" * 200 + "]" * 200 + "\n"
    res = client.post("/api/validate", json={"yaml": deep_yaml})
    assert res.status_code == 200 and "nested more than 64" in res.json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        {"scenario": "s1", "adults": True},
        {"scenario": "s1", "days": "5"},
        {"scenario": "s1", "adults": 100.0},
        {"scenario": 1},
        {"scenario": "s1", "baseline": "no"},
    ],
)
def test_wrongly_typed_fields_are_422(web, body: dict) -> None:
    client, _ = web
    res = client.post("/api/runs", json=body)
    assert res.status_code == 422, res.text
    assert res.json()["field"] in {"adults", "days", "scenario", "baseline"}


def test_only_the_servers_own_names_are_answered(made: Path, tmp_path: Path) -> None:
    app = create_app(Settings(runs=tmp_path, warm=False, hosts=("localhost", "my-box.lan")))
    with TestClient(app, base_url="http://localhost") as client:
        for host in ("evil.example", "attacker.test:8000", "127.0.0.1.evil.example", ""):
            res = client.get("/api/scenarios", headers={"host": host})
            assert res.status_code == 400, host
            assert "Host" in res.json()["detail"]
        for host in ("localhost", "LOCALHOST:8000", "my-box.lan:80", "my-box.lan."):
            assert client.get("/api/scenarios", headers={"host": host}).status_code == 200, host
    assert host_name("[::1]:8000") == "::1"
    assert host_name("::1") == "::1"
    assert host_name("127.0.0.1:8000") == "127.0.0.1"


def test_serve_answers_to_its_host_and_the_names_allowed(monkeypatch, tmp_path: Path) -> None:
    import uvicorn

    from xinyong.cli import main as cli_main

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app))
    args = ["serve", "--host", "10.1.2.3", "--allow-host", "my-box.lan", "--runs", str(tmp_path)]
    with pytest.raises(SystemExit):
        cli_main(args)
    hosts = set(seen["app"].state.settings.hosts)
    assert hosts == {"127.0.0.1", "localhost", "::1", "10.1.2.3", "my-box.lan"}


def _asgi_post(app, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> int:
    """POST `chunks` as they would arrive without a Content-Length (chunked); the status."""
    import asyncio

    sent: list[dict] = []
    queue = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/validate",
        "raw_path": b"/api/validate",
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5000),
        "http_version": "1.1",
        "headers": [(b"host", b"localhost:8000"), *headers],
    }
    asyncio.run(app(scope, receive, send))
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def test_oversize_bodies_are_413_however_sent(tmp_path: Path) -> None:
    app = create_app(Settings(runs=tmp_path, warm=False))
    json_type = [(b"content-type", b"application/json")]
    big = b'{"yaml": "' + b"x" * (3 << 20) + b'"}'
    chunked = [big[i : i + 65536] for i in range(0, len(big), 65536)]
    assert _asgi_post(app, chunked, json_type) == 413
    declared = [*json_type, (b"content-length", str(len(big)).encode())]
    assert _asgi_post(app, [big], declared) == 413
    small = json.dumps({"yaml": "name: x\n"}).encode()
    assert _asgi_post(app, [small[:5], small[5:]], json_type) == 200  # chunked and small


# 3. One damage check for every reader ----------------------------------------------------------


def _damage(run: Path, how: str) -> None:
    if how == "run.json deleted":
        (run / "run.json").unlink()
    elif how == "run.json cut":
        (run / "run.json").write_text('{"kind": "xinyong run dir')
    elif how == "summary wrongly typed":
        summary = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**summary, "adults": "300"}))
    elif how == "summary metric a string":
        summary = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**summary, "mean_score": "high"}))
    elif how == "scenario garbage":
        (run / "scenario.yaml").write_text("name: [unclosed\n")
    elif how == "scenario invalid":
        (run / "scenario.yaml").write_text("name: x\ndays: 5\n")
    elif how == "meta deleted":
        (run / "meta.json").unlink()
    elif how == "spells deleted":
        shutil.rmtree(run / "spells")
    elif how == "spells cut":
        part = next((run / "spells").glob("part-*.parquet"))
        part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    elif how == "daily without a column":
        table = pq.read_table(run / "daily.parquet").drop_columns(["day"])
        pq.write_table(table, run / "daily.parquet")
    elif how == "a FIFO":
        os.mkfifo(run / "notes.txt")
    else:  # pragma: no cover
        raise AssertionError(how)


DAMAGE = {
    "run.json deleted": ("run.json", "missing"),
    "run.json cut": ("run.json", "damaged"),
    "summary wrongly typed": ("summary.json", "'adults' is str"),
    "summary metric a string": ("summary.json", "'mean_score' is str"),
    "scenario garbage": ("scenario.yaml", "damaged"),
    "scenario invalid": ("scenario.yaml", "damaged"),
    "meta deleted": ("meta.json", "missing"),
    "spells deleted": ("spells", "missing"),
    "spells cut": ("spells", "damaged"),
    "daily without a column": ("daily", "no column 'day'"),
    "a FIFO": ("notes.txt", "not a regular file"),
}


@pytest.mark.parametrize("how", list(DAMAGE))
def test_every_reader_refuses_a_damaged_run(
    made: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    run = copy_of(made, tmp_path, "run")
    _damage(run, how)
    before = sorted(p.name for p in run.iterdir())
    for args in (
        ("audit", run, "--no-baseline"),
        ("explain", run, "1"),
        ("sql", run, "SELECT count(*) FROM persons"),
        ("compare", made, run, "--out", tmp_path / "c.html"),
        ("compare", run, made, "--out", tmp_path / "c.html"),
    ):
        code, _, err = main(capsys, *args)
        one_line(code, err, *DAMAGE[how])
    with pytest.raises(XinyongError, match=DAMAGE[how][1]):
        xinyong.Run.open(run)
    assert sorted(p.name for p in run.iterdir()) == before  # the audit wrote nothing into it


def test_the_web_app_does_not_list_a_damaged_run(made: Path, web) -> None:
    client, runs = web
    for how in ("summary wrongly typed", "spells deleted", "run.json cut"):
        name = "damaged-" + how.replace(" ", "-").replace(".", "")
        run = copy_of(made, runs, name)
        assert client.get(f"/api/runs/{name}").status_code == 200  # listed while whole
        _damage(run, how)
        assert client.get(f"/api/runs/{name}").status_code == 404
        assert client.get(f"/runs/{name}/people?person=1").status_code == 404
    assert client.get("/api/runs/good").status_code == 200


def test_an_untouched_run_passes_the_check_once(made: Path) -> None:
    from xinyong import store

    store._CHECKED.clear()
    RunDir(made)
    assert made.resolve() in store._CHECKED
    started = time.perf_counter()
    for _ in range(20):
        RunDir(made)
    assert time.perf_counter() - started < 0.5  # cached: no footer or scenario read again


def test_every_table_holds_the_columns_the_check_requires(tmp_path: Path) -> None:
    from xinyong.store import COLUMNS

    out = tmp_path / "c1"
    xinyong.run(load_scenario("c1", adults=200, days=3), out)
    rd = RunDir(out)
    for name, needed in COLUMNS.items():
        names = pq.read_schema(rd.files(name)[0]).names
        assert set(needed) <= set(names), (name, set(needed) - set(names))


# 4. Numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "parts"),
    [
        ("population.child_ratio=1e308", ("child_ratio", "do not fit")),
        ("population.risk_sigma=1e308", ("population", "mass")),
        ("population.civic_sigma=1e300", ("population", "mass")),
        ("channels.camera.weights.minority=1e308", ("weights.minority", "less than")),
        ("population.child_ratio=1e999", ("not a finite number",)),
        ("population.child_ratio=.inf", ("child_ratio",)),
        ("population.adults=2.5e-3", ("adults",)),
        ("a." * 5000 + "b=1", ("at most 32 parts",)),
    ],
)
def test_extreme_numbers_and_keys_are_one_line(
    capsys: pytest.CaptureFixture[str], setting: str, parts: tuple[str, ...]
) -> None:
    code, _, err = main(capsys, "show", "r1", "--set", setting)
    one_line(code, err, *parts)


def test_company_sigma_past_what_the_model_computes(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = main(capsys, "show", "c1", "--set", "companies.risk_sigma=1e308")
    one_line(code, err, "companies.risk_sigma", "mass")


def test_one_number_syntax_everywhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_number("1e6") == 1_000_000 and isinstance(parse_number("1e6"), int)
    assert parse_number("1_000") == 1000
    assert parse_number("2.5e-3") == 0.0025
    assert parse_number("2.5e3") == 2500 and isinstance(parse_number("2.5e3"), int)
    assert parse_number("2500.0") == 2500.0 and isinstance(parse_number("2500.0"), float)
    assert parse_value("1e3") == 1000 and parse_value("0.5") == 0.5
    assert parse_value("1/200") == "1/200" and parse_value("true") is True
    with pytest.raises(XinyongError, match="not a whole number"):
        parse_number("2.5e-3", whole=True)
    for bad in ("1_", "1__0", "1e", "e5", "--1"):
        with pytest.raises(XinyongError, match="not a number"):
            parse_number(bad)
    sc = load_scenario("r1", overrides={"population.adults": parse_value("1e3")})
    assert sc.adults == 1000
    for command in (("run", "s1"), ("sweep", "s1", "--set", "consequences.rho=0,0.1")):
        code, _, err = main(capsys, *command, "--adults", "2.5e-2", "--days", "3")
        one_line(code, err, "--adults", "not a whole number: '2.5e-2'")
        code, _, err = main(capsys, *command, "--adults", "1e999")
        one_line(code, err, "--adults", "not a finite number")
    code, _, err = main(capsys, "run", "s1", "--days", "1e999")
    one_line(code, err, "--days")


def test_replicates_are_bounded(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from xinyong import cli
    from xinyong.replicates import MAX_REPLICATES, run_replicates

    assert cli.MAX_REPLICATES == MAX_REPLICATES
    code, _, err = main(capsys, "run", "s1", "--replicates", "100000", "--out", tmp_path / "x")
    one_line(code, err, "--replicates", "less than or equal to 1000")
    with pytest.raises(XinyongError, match="replicates are 1 to 1,000"):
        run_replicates(load_scenario("s1", adults=100, days=2), tmp_path / "y", 100_000)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


# 5. YAML limits, FIFOs and devices ------------------------------------------------------------


def test_a_large_plain_yaml_is_refused_while_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("name: x\nvalues: [" + ", ".join(["1"] * 950_000) + "]\n")  # 2.8 MiB
    started = time.perf_counter()
    with pytest.raises(XinyongError, match=f"more than {MAX_VALUES:,} values"):
        load_yaml(path)
    # The first MAX_VALUES values are parsed (~0.1 ms each), not the 950,000.
    assert time.perf_counter() - started < 30


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_fifos_and_devices_are_refused(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        path = tmp_path / "pipe.yaml"
        os.mkfifo(path)
    elif kind == "device":
        path = Path("/dev/zero")
    else:
        path = tmp_path / "folder.yaml"
        path.mkdir()
    res = subprocess.run(
        [sys.executable, "-m", "xinyong.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,  # a FIFO used to hang here
    )
    one_line(res.returncode, res.stderr, str(path), "not a regular file")


# 6. Replicate summaries, audit, checkpoint ------------------------------------------------------


def test_a_replicate_sets_summary_is_the_same_byte_for_byte(tmp_path: Path) -> None:
    from xinyong.replicates import run_replicates

    sc = load_scenario("s1", adults=300, days=10, seed=4)
    for name in ("a", "b"):
        run_replicates(sc, tmp_path / name, 2, workers=1)
    a, b = ((tmp_path / n / "summary.json").read_bytes() for n in ("a", "b"))
    assert a == b
    assert b"wall_seconds" not in a
    assert json.loads((tmp_path / "a" / "run.json").read_text())["wall_seconds"] > 0


def test_a_failed_audit_leaves_the_run_as_it_was(
    made: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from xinyong.audit import report

    run = copy_of(made, tmp_path, "run")
    (run / "metrics.json").unlink()
    (run / "report.html").unlink()

    def too_large(doc, daily, path) -> None:
        Path(path).write_text("half a report")
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))

    monkeypatch.setattr(report, "render_report", too_large)
    before = sorted(p.name for p in run.iterdir())
    code, _, err = main(capsys, "audit", run, "--no-baseline")
    one_line(code, err, str(run), "File too large", "as they were")
    assert sorted(p.name for p in run.iterdir()) == before  # no metrics.json, no .tmp


def test_resume_from_a_cut_checkpoint_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_resume import killed
    from xinyong.checkpoint import CHECKPOINT

    out = tmp_path / "run"
    stage = killed(out, "s1", "--adults", "3000", "--days", "800", "--checkpoint-days", "10",
                   sig=signal.SIGKILL)  # fmt: skip
    checkpoint = stage / CHECKPOINT
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    code, _, err = main(capsys, "run", "--resume", out, "--quiet")
    one_line(code, err, CHECKPOINT, "damaged checkpoint")


# 7. The memory estimate at the extremes of graph density ----------------------------------------

PEAK = """
import resource, sys, tempfile, pathlib
import xinyong
from xinyong.sizing import estimate
sc = xinyong.load_scenario("r1", adults=int(sys.argv[1]), days=2,
                           overrides={"population.edges_per_adult": int(sys.argv[2])})
with tempfile.TemporaryDirectory() as t:
    xinyong.run(sc, pathlib.Path(t) / "r")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, estimate(sc))
"""


@pytest.mark.slow
@pytest.mark.parametrize(("adults", "edges"), [(200_000, 0), (60_000, 1000), (20_000, 1000)])
def test_the_memory_estimate_bounds_the_peak(adults: int, edges: int) -> None:
    res = subprocess.run(
        [sys.executable, "-c", PEAK, str(adults), str(edges)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stderr
    peak, estimate = map(int, res.stdout.split())
    assert peak <= estimate, (peak >> 20, estimate >> 20)


def test_list_shows_the_company_packs(capsys: pytest.CaptureFixture[str]) -> None:
    from xinyong.scheme.schema import builtin_packs

    code, out, _ = main(capsys, "list")
    assert code == 0
    (line,) = [ln for ln in out.splitlines() if ln.startswith("company packs: ")]
    assert line == "company packs: " + ", ".join(builtin_packs("company"))
    assert "national-tax-rating" in line
