"""A property-based fuzz of the JSON API from its own OpenAPI schema (schemathesis): whatever
the request, the server answers without a 5xx. A few examples per operation in CI; many more
behind the slow marker. Jobs the fuzz manages to queue never run (the worker pool is not
started without the application's lifespan), so the fuzz simulates nothing.

A second fuzz writes JSON bodies as text (hypothesis), with what a schema cannot describe:
NaN, Infinity and numbers past a double's range, and values nested thousands deep; each
such body is a 422, never a 5xx or a dropped connection."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

import xinyong  # noqa: E402
from xinyong.web import LOCALHOST, Settings, create_app  # noqa: E402
from xinyong.web.app import MAX_JSON_DEPTH  # noqa: E402


def _app():
    runs = Path(tempfile.mkdtemp(prefix="xinyong-fuzz-"))
    atexit.register(shutil.rmtree, runs, ignore_errors=True)
    xinyong.run(xinyong.load_scenario("r1", adults=200, days=5), runs / "tiny")
    # schemathesis calls the application as the host "testserver".
    hosts = (*LOCALHOST, "testserver")
    return create_app(
        Settings(runs=runs, max_adults=1000, max_days=30, max_queued=4, warm=False, hosts=hosts)
    )


APP = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
client = TestClient(APP, base_url="http://localhost")  # no lifespan: queued jobs never run


FAST = settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
SLOW = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@schema.parametrize()
@FAST
def test_api_never_answers_5xx(case):
    case.call_and_validate(checks=[not_a_server_error])


@pytest.mark.slow
@schema.parametrize()
@SLOW
def test_api_never_answers_5xx_many(case):
    case.call_and_validate(checks=[not_a_server_error])


# JSON bodies written as text, with non-finite numbers and deep nesting.

NOT_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e400", "1E+309"]
FIELDS = ["scenario", "design", "adults", "days", "seed", "replicates", "baseline", "a", "b",
          "reform", "yaml", "pack", "set"]  # fmt: skip
POSTS = {
    "/api/runs": {"scenario": "r1", "adults": 100, "days": 5},
    "/api/validate": {"yaml": "name: x\n"},
    "/api/designs": {"scenario": "r1", "set": {"population.minority_share": 0.2}},
    "/api/compare": {"a": "tiny", "b": "tiny", "replicates": 1},
}
finite = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
).map(json.dumps)
not_finite = st.sampled_from(NOT_FINITE)


def _object(items: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in items) + "}"


def _nested(leaf: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3).map(lambda xs: "[" + ",".join(xs) + "]"),
            st.lists(
                st.tuples(st.sampled_from([*FIELDS, "population.adults"]), inner), max_size=3
            ).map(_object),
        ),
        max_leaves=12,
    )


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, str]:
    """(url, a body that is not strict JSON: a non-finite number, or nested too deep)."""
    url = draw(st.sampled_from(sorted(POSTS)))
    fields = {k: json.dumps(v) for k, v in POSTS[url].items()}
    kind = draw(st.sampled_from(["non-finite", "deep", "both"]))
    if kind == "deep":
        depth = draw(st.integers(MAX_JSON_DEPTH + 1, 20_000))
        value = "[" * depth + draw(finite) + "]" * depth
    else:
        value = draw(_nested(not_finite))
        if not any(tok in value for tok in NOT_FINITE):
            value = "[" + value + "," + draw(not_finite) + "]"
        if kind == "both":
            value = "[" * 3000 + value + "]" * 3000
    where = draw(st.sampled_from([*FIELDS, "<body>"]))
    if where == "<body>":
        return url, value
    fields[where] = value
    return url, _object(list(fields.items()))


def _answers_4xx(url: str, body: str) -> None:
    res = client.post(url, content=body, headers={"content-type": "application/json"})
    assert res.status_code == 422, (url, body[:200], res.status_code, res.text[:200])
    assert res.json()["detail"]


@given(bodies())
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_non_finite_and_deep_json_is_4xx(case: tuple[str, str]) -> None:
    _answers_4xx(*case)


@pytest.mark.slow
@given(bodies())
@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
def test_non_finite_and_deep_json_is_4xx_many(case: tuple[str, str]) -> None:
    _answers_4xx(*case)
