"""A property-based fuzz of the JSON API from its own OpenAPI schema (schemathesis): whatever
the request, the server answers without a 5xx. A few examples per operation in CI; many more
behind the slow marker. Jobs the fuzz manages to queue never run (the worker pool is not
started without the application's lifespan), so the fuzz simulates nothing."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

import xinyong  # noqa: E402
from xinyong.web import Settings, create_app  # noqa: E402


def _app():
    runs = Path(tempfile.mkdtemp(prefix="xinyong-fuzz-"))
    atexit.register(shutil.rmtree, runs, ignore_errors=True)
    xinyong.run(xinyong.load_scenario("r1", adults=200, days=5), runs / "tiny")
    return create_app(Settings(runs=runs, max_adults=1000, max_days=30, max_queued=4, warm=False))


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


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
