"""The web application: a JSON API (with its OpenAPI schema at /openapi.json) and the pages.

Pages are rendered on the server (Jinja2) with one small script of ours for the forms, the
progress bar (server-sent events) and cancel; charts are the audit report's and the
comparison's own pages (plotly embedded in them). Nothing is fetched from the internet.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from xinyong.errors import XinyongError
from xinyong.files import read_bytes
from xinyong.web import designs
from xinyong.web.jobs import FINISHED, Job, JobManager, QueueFullError
from xinyong.web.settings import RUN_ID, Settings, new_id
from xinyong.web.store import Store, pick, wrongly_listed
from xinyong.words import label, number, percent, plural

HERE = Path(__file__).resolve().parent
INT32_MAX = 2**31 - 1
SEED_MAX = 2**63 - 1
MAX_JSON_DEPTH = 32  # arrays and objects within each other; a design's `set` nests 3 deep
MAX_PAGE = 256 << 20  # a report or comparison page served (plotly embedded: about 5 MiB)

RunId = Annotated[str, PathParam(pattern=RUN_ID.pattern, max_length=80)]
DesignId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{16}$")]


class ApiError(Exception):
    """A request the server refuses: its status and one plain line (and the field)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


# Request and answer bodies (they make the OpenAPI schema).


class Strict(BaseModel):
    # Strict types: `{"adults": true}` is not one adult, `"3"` is not a number.
    model_config = ConfigDict(extra="forbid", strict=True)


class RunRequest(Strict):
    """A run: a built-in scenario or a saved design, at a size within the server's bounds."""

    scenario: str | None = Field(None, description="A built-in scenario name (r1, s1, ...).")
    design: str | None = Field(None, description="A saved design's id (from POST /api/designs).")
    adults: int | None = Field(None, ge=1, le=INT32_MAX)
    days: int | None = Field(None, ge=1, le=32_000)
    seed: int | None = Field(None, ge=0, le=SEED_MAX)
    replicates: int = Field(1, ge=1, le=1000, description="Seeds seed, seed+1, ...")
    baseline: bool = Field(True, description="Also run the scheme-off world (behaviour change).")


class CompareRequest(Strict):
    """B (a run, or a reform design run now at A's size and seed) against A."""

    a: str = Field(description="The base run's id.")
    b: str | None = Field(None, description="The reform run's id.")
    reform: str | None = Field(None, description="A saved design to run as the reform.")
    replicates: int = Field(2, ge=1, le=1000, description="Seeds to pair (1: within-run).")


class DesignRequest(Strict):
    """A design: YAML text (a scenario, or a pack that replaces the base's pack of its id),
    or a built-in scenario or pack with dotted-key changes."""

    yaml: str | None = Field(None, description="A scenario (or pack) as YAML.")
    scenario: str | None = Field(None, description="A built-in scenario to start from.")
    pack: str | None = Field(None, description="A built-in pack to start from.")
    set: dict[str, Any] = Field(default_factory=dict, description="Dotted keys to change.")


class ValidateRequest(Strict):
    yaml: str = Field(description="A scenario or rule pack as YAML.")


class Problem(BaseModel):
    message: str
    field: str | None = None
    line: int | None = None


class Validation(BaseModel):
    ok: bool
    kind: str | None = None
    summary: str | None = None
    error: str | None = None
    problems: list[Problem] = []


class DesignOut(BaseModel):
    id: str
    name: str
    yaml: str


class Message(BaseModel):
    detail: str
    field: str | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Message} for code in (400, 404, 409, 413, 422, 429)
}


# The application.


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application for `settings` (its runs folder, bounds and worker pool)."""
    settings = settings or Settings()
    settings.runs.mkdir(parents=True, exist_ok=True)
    jobs = JobManager(settings)
    store = Store(settings)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(settings=settings)
    templates.env.filters["num"] = number
    templates.env.filters["pct"] = percent
    templates.env.filters["plural"] = plural
    templates.env.filters["words"] = label
    templates.env.filters["ident"] = _breakable
    templates.env.filters["run_label"] = _run_label
    templates.env.filters["value"] = _value

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        jobs.start()
        try:
            yield
        finally:
            await run_in_threadpool(jobs.stop)

    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        title="Xinyong",
        version=_version(),
        summary="Simulate and audit social credit schemes on synthetic populations.",
        lifespan=lifespan,
    )
    app.router.route_class = StrictJsonRoute
    app.state.settings, app.state.jobs, app.state.store = settings, jobs, store
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(HostAllowList, hosts=settings.hosts)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, template, context, status_code=status)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.message, "field": exc.field}, exc.status)
        return page(request, "error.html", exc.status, message=exc.message)

    @app.exception_handler(XinyongError)
    async def _input_error(request: Request, exc: XinyongError) -> Response:
        return await _api_error(request, ApiError(422, exc.format(), exc.field))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        # The first problem in one line, without echoing the input back.
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "path", "query")]
        field = ".".join(loc) or None
        message = f"{field}: {first.get('msg', 'invalid')}" if field else first.get("msg", "")
        return await _api_error(request, ApiError(422, message or "invalid request", field))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/") or request.url.path.startswith("/static/"):
            return JSONResponse({"detail": exc.detail}, exc.status_code)
        return page(request, "error.html", exc.status_code, message=str(exc.detail))

    # Shared steps.

    def scenario_doc(req: RunRequest | DesignRequest) -> dict[str, Any]:
        if getattr(req, "design", None) is not None:
            doc = store.design(req.design) if isinstance(req.design, str) else None
            if doc is None:
                raise ApiError(404, f"no saved design '{req.design}'", "design")
            return doc
        name = req.scenario or "r1"
        if name not in _scenario_names():
            raise ApiError(
                422, f"unknown scenario '{name}' (built-in: {', '.join(_scenario_names())})",
                "scenario",
            )  # fmt: skip
        return designs.from_scenario(name)

    def bounded(sc: Any, replicates: int) -> Any:
        """Refuse sizes past the settings (and the memory estimate) with a 422."""
        if sc.adults > settings.max_adults:
            raise ApiError(
                422, f"at most {settings.max_adults:,} adults per run on this server "
                f"(asked {sc.adults:,}; xinyong serve --max-adults)", "adults",
            )  # fmt: skip
        if sc.days > settings.max_days:
            raise ApiError(
                422, f"at most {settings.max_days:,} days per run on this server "
                f"(asked {sc.days:,}; xinyong serve --max-days)", "days",
            )  # fmt: skip
        if replicates > settings.max_replicates:
            raise ApiError(
                422, f"at most {settings.max_replicates} replicates per run on this server "
                f"(asked {replicates}; xinyong serve --max-replicates)", "replicates",
            )  # fmt: skip
        from xinyong.sizing import check_size

        check_size(sc, at_once=min(replicates, os.cpu_count() or 1))
        return sc

    def submit(job: Job) -> Job:
        try:
            return jobs.submit(job)
        except QueueFullError as exc:
            raise ApiError(429, str(exc)) from None

    def taken() -> set[str]:
        root = settings.runs
        names = {p.name for p in root.iterdir()} if root.is_dir() else set()
        return names | set(jobs.jobs)

    def start_run(req: RunRequest) -> Job:
        if req.scenario is not None and req.design is not None:
            raise ApiError(422, "give a scenario or a design, not both", "design")
        doc = scenario_doc(req)
        checked = designs.check(doc)
        if checked.scenario is None:
            raise ApiError(422, checked.error or "invalid design", "design")
        changes: dict[str, Any] = {}
        if req.adults is not None:
            changes["population.adults"] = req.adults
        if req.days is not None:
            changes["days"] = req.days
        if req.seed is not None:
            changes["seed"] = req.seed
        if req.adults is None and checked.scenario.adults > settings.max_adults:
            changes["population.adults"] = settings.max_adults
        sc = checked.scenario.with_(**changes) if changes else checked.scenario
        bounded(sc, req.replicates)
        rid = new_id(sc.name, taken())
        out = settings.run_path(rid)
        spec = {
            "kind": "run",
            "scenario": sc,
            "out": str(out),
            "replicates": req.replicates,
            "baseline": req.baseline,
        }
        return submit(Job(rid, "run", spec, [out], total=sc.days))

    def start_compare(req: CompareRequest) -> Job:
        a = store.run(req.a)
        if a is None:
            raise ApiError(404, f"no finished run '{req.a}'", "a")
        if (req.b is None) == (req.reform is None):
            raise ApiError(422, "give b (a run) or reform (a design), one of them", "b")
        if req.replicates > settings.max_replicates:
            raise ApiError(
                422, f"at most {settings.max_replicates} seeds to pair on this server "
                f"(asked {req.replicates})", "replicates",
            )  # fmt: skip
        cid = new_id("compare", {p for p, _ in store.comparisons()} | set(jobs.jobs))
        out = settings.compare_path(cid)
        spec: dict[str, Any] = {"kind": "compare", "a": str(a.path), "out": str(out)}
        spec["replicates"] = req.replicates
        targets = [out]
        if req.b is not None:
            b = store.run(req.b)
            if b is None:
                raise ApiError(404, f"no finished run '{req.b}'", "b")
            spec["b"] = str(b.path)
        else:
            doc = store.design(req.reform) if isinstance(req.reform, str) else None
            if doc is None:
                raise ApiError(404, f"no saved design '{req.reform}'", "reform")
            checked = designs.check(doc)
            if checked.scenario is None:
                raise ApiError(422, checked.error or "invalid design", "reform")
            first = a.summary.get("seeds") or [a.summary.get("seed")]
            sc = checked.scenario.with_(
                **{
                    "population.adults": a.summary["adults"],
                    "days": a.summary["days"],
                    "seed": int(first[0]),
                }
            )
            bounded(sc, req.replicates)
            rid = new_id(sc.name, taken())
            spec |= {"reform": sc, "b": str(settings.run_path(rid))}
            targets.append(settings.run_path(rid))
        return submit(Job(cid, "compare", spec, targets))

    def job_or_404(job_id: str) -> Job:
        job = jobs.jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"no job '{job_id}'")
        return job

    def run_or_404(run_id: str) -> Any:
        info = store.run(run_id)
        if info is None:
            raise ApiError(404, f"no finished run '{run_id}' under {settings.runs}")
        return info

    def explained(info: Any, person: int) -> dict[str, Any]:
        import xinyong
        from xinyong.replicates import replicate_dirs

        first = replicate_dirs(info.path)[0]
        adults = int(info.summary.get("adults") or 0)
        if not 0 <= person < adults:
            raise ApiError(404, f"no adult {person} (adults are 0 to {adults - 1})", "person")
        doc = xinyong.explain(first, person).doc
        doc["seed_dir"] = str(first.relative_to(info.path)) if first != info.path else ""
        return doc

    def random_wrong(info: Any, lst: str | None) -> tuple[int | None, str | None]:
        from xinyong.api import Run
        from xinyong.replicates import replicate_dirs

        lists = _sanction_lists(Run.open(replicate_dirs(info.path)[0]).scenario)
        if lst is None:
            lst = "blacklist" if "blacklist" in lists else (lists[0] if lists else None)
        if lst is None or lst not in lists:
            return None, lst
        return pick(wrongly_listed(replicate_dirs(info.path)[0], lst)), lst

    def validation(text: str) -> Validation:
        _, checked = designs.parse_upload(text, None)
        if checked.scenario is None:
            return Validation(
                ok=False,
                error=checked.error,
                problems=[Problem(**vars(p)) for p in checked.problems],
            )
        sc = checked.scenario
        return Validation(
            ok=True,
            kind="scenario",
            summary=f"ok: scenario '{sc.name}': {sc.adults:,} adults, {sc.days} days, "
            f"{plural(len(sc.cities), 'city')}, packs {', '.join(sc.packs)}",
        )

    # JSON API.

    @app.get("/api/scenarios", tags=["scenarios"])
    def api_scenarios() -> dict[str, Any]:
        """The built-in scenarios and rule packs."""
        return {"scenarios": _scenarios(), "packs": _packs()}

    @app.get("/api/scenarios/{name}", tags=["scenarios"], responses=ERRORS)
    def api_scenario(name: Annotated[str, PathParam(max_length=64)]) -> dict[str, Any]:
        """A built-in scenario, resolved (packs embedded)."""
        if name not in _scenario_names():
            raise ApiError(404, f"unknown scenario '{name}'")
        return designs.from_scenario(name)

    @app.post("/api/validate", tags=["designs"], responses=ERRORS)
    def api_validate(req: ValidateRequest) -> Validation:
        """Validate a scenario (or a pack against R1) as `xinyong validate` does."""
        from xinyong.yamlio import parse_yaml

        try:
            data, lines = parse_yaml(req.yaml, "upload.yaml")
        except XinyongError as err:
            return Validation(
                ok=False, error=err.format(), problems=[Problem(message=err.message, line=err.line)]
            )
        if isinstance(data, dict) and data.get("kind") in ("municipal", "national"):
            from xinyong.scheme.schema import parse_pack

            try:
                behaviours = set(designs.from_scenario("r1")["behaviours"])
                pack = parse_pack(data, "upload.yaml", lines, behaviours)
            except XinyongError as err:
                return Validation(
                    ok=False, error=err.format(),
                    problems=[Problem(message=err.message, field=err.field, line=err.line)],
                )  # fmt: skip
            return Validation(
                ok=True,
                kind="pack",
                summary=f"ok: pack '{pack.id}' ({pack.kind}): {len(pack.rules)} rules, "
                f"{len(pack.lists)} lists, tiers {', '.join(pack.tier_names) or 'none'}",
            )
        return validation(req.yaml)

    @app.post("/api/designs", tags=["designs"], status_code=201, responses=ERRORS)
    def api_design(req: DesignRequest) -> DesignOut:
        """Save a design (validated); its id is what POST /api/runs and /api/compare take."""
        if sum(x is not None for x in (req.yaml, req.scenario, req.pack)) > 1:
            raise ApiError(422, "give one of yaml, scenario or pack", "yaml")
        if req.yaml is not None:
            data, checked = designs.parse_upload(req.yaml, None)
        else:
            data = designs.from_pack(req.pack) if req.pack else scenario_doc(req)
            for key, value in req.set.items():
                try:
                    designs.set_dotted(data, str(key), value)
                except (KeyError, IndexError, ValueError, TypeError, AttributeError):
                    raise ApiError(422, "no such key to set", str(key)) from None
            checked = designs.check(data)
        if checked.scenario is None:
            first = checked.problems[0].field if checked.problems else None
            raise ApiError(422, checked.error or "invalid design", first)
        data = checked.scenario.model_dump(mode="json")
        did = store.save_design(data)
        return DesignOut(id=did, name=checked.scenario.name, yaml=store.design_text(did) or "")

    @app.get("/api/designs", tags=["designs"])
    def api_designs() -> list[dict[str, str]]:
        """Saved designs, newest first."""
        return [{"id": i, "name": n} for i, n in store.designs()]

    @app.get("/api/designs/{design_id}", tags=["designs"], responses=ERRORS)
    def api_design_get(design_id: DesignId) -> DesignOut:
        text = store.design_text(design_id)
        data = store.design(design_id)
        if text is None or data is None:
            raise ApiError(404, f"no saved design '{design_id}'")
        return DesignOut(id=design_id, name=str(data.get("name")), yaml=text)

    @app.post("/api/runs", tags=["runs"], status_code=202, responses=ERRORS)
    def api_run(req: RunRequest) -> dict[str, Any]:
        """Queue a run (then its audit); follow it at /api/jobs/{id} or its events."""
        return start_run(req).public()

    @app.get("/api/runs", tags=["runs"])
    def api_runs() -> list[dict[str, Any]]:
        """Finished runs under --runs, newest first, with their key findings."""
        return [r.public() for r in store.runs(jobs.busy())]

    @app.get("/api/runs/{run_id}", tags=["runs"], responses=ERRORS)
    def api_run_get(run_id: RunId) -> dict[str, Any]:
        """A finished run: its summary and key findings."""
        info = run_or_404(run_id)
        return {**info.public(), "summary": info.summary}

    @app.get("/api/runs/{run_id}/audit", tags=["runs"], responses=ERRORS)
    def api_audit(run_id: RunId) -> dict[str, Any]:
        """The run's audit document (metrics.json)."""
        info = run_or_404(run_id)
        if info.audit is None:
            raise ApiError(409, "the run has no audit yet (xinyong audit RUN)")
        return info.audit

    @app.get("/api/runs/{run_id}/people/{person}", tags=["runs"], responses=ERRORS)
    def api_person(
        run_id: RunId, person: Annotated[int, PathParam(ge=0, le=INT32_MAX)]
    ) -> dict[str, Any]:
        """One adult's story (xinyong explain)."""
        return explained(run_or_404(run_id), person)

    @app.get("/api/runs/{run_id}/wrongly-listed", tags=["runs"], responses=ERRORS)
    def api_wrong(
        run_id: RunId, list_: Annotated[str | None, Query(alias="list", max_length=64)] = None
    ) -> dict[str, Any]:
        """A random adult who was on a sanction list only through wrong records."""
        person, lst = random_wrong(run_or_404(run_id), list_)
        if lst is None:
            raise ApiError(404, "the run has no sanction list", "list")
        return {"list": lst, "person": person}

    @app.get("/api/jobs", tags=["jobs"])
    def api_jobs() -> list[dict[str, Any]]:
        """Jobs since the server started, newest first."""
        return [j.public() for j in sorted(jobs.jobs.values(), key=lambda j: -j.created)]

    @app.get("/api/jobs/{job_id}", tags=["jobs"], responses=ERRORS)
    def api_job(job_id: RunId) -> dict[str, Any]:
        return job_or_404(job_id).public()

    @app.post("/api/jobs/{job_id}/cancel", tags=["jobs"], responses=ERRORS)
    def api_cancel(job_id: RunId) -> dict[str, Any]:
        """Cancel a queued or running job; its run directory is then as it was."""
        job_or_404(job_id)
        job = jobs.cancel(job_id)
        return job.public() if job else {}

    @app.get("/api/jobs/{job_id}/events", tags=["jobs"], responses=ERRORS)
    async def api_events(job_id: RunId) -> StreamingResponse:
        """Server-sent events: the job's state each time it changes, until it finishes."""
        job_or_404(job_id)

        async def events() -> AsyncIterator[str]:
            version = -1
            while True:
                job = await run_in_threadpool(jobs.wait, job_id, version, 2.0)
                if job is None:
                    return
                if job.version != version:
                    version = job.version
                    yield f"event: progress\ndata: {json.dumps(job.public())}\n\n"
                else:
                    yield ": still running\n\n"
                if job.state in FINISHED:
                    return
                await asyncio.sleep(0)

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    @app.post("/api/compare", tags=["compare"], status_code=202, responses=ERRORS)
    def api_compare(req: CompareRequest) -> dict[str, Any]:
        """Queue a comparison of B (a run, or a reform design) against A, paired by seed."""
        return start_compare(req).public()

    @app.get("/api/compare/{compare_id}", tags=["compare"], responses=ERRORS)
    def api_comparison(compare_id: RunId) -> dict[str, Any]:
        """A finished comparison (compare.json)."""
        doc = store.comparison(compare_id)
        if doc is None:
            raise ApiError(404, f"no finished comparison '{compare_id}'")
        return doc

    # Pages.

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        # Browsers ask for /favicon.ico whatever the page links: the same icon, as SVG.
        return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request) -> Response:
        running = [j for j in jobs.jobs.values() if j.state not in FINISHED]
        return page(
            request,
            "home.html",
            scenarios=_scenarios(),
            packs=_packs(),
            runs=store.runs(jobs.busy())[:20],
            running=running,
            comparisons=store.comparisons()[:10],
        )

    @app.get("/design", response_class=HTMLResponse, include_in_schema=False)
    def design_page(
        request: Request,
        scenario: str | None = None,
        pack: str | None = None,
        design: str | None = None,
        saved: bool = False,
    ) -> Response:
        if design is not None:
            doc = store.design(design)
            if doc is None:
                raise ApiError(404, f"no saved design '{design}'")
        elif pack is not None:
            doc = designs.from_pack(pack)
        else:
            doc = designs.from_scenario(scenario or "r1")
        return design_form(request, doc, design_id=design, saved=saved, pack=pack)

    def design_form(
        request: Request,
        doc: dict[str, Any],
        *,
        pack: str | None = None,
        design_id: str | None = None,
        checked: designs.Checked | None = None,
        saved: bool = False,
        status: int = 200,
    ) -> Response:
        problems = checked.problems if checked else []
        secs, loose = designs.with_errors(doc, problems)
        return page(
            request,
            "design.html",
            status,
            sections=secs,
            loose=loose,
            error=checked.error if checked else None,
            doc_yaml=designs.to_yaml(doc),
            design_id=design_id,
            saved=saved,
            name=doc.get("name"),
            pack=pack,
            scenarios=_scenario_names(),
            packs=[p["id"] for p in _packs()],
        )

    @app.post("/design", response_class=HTMLResponse, include_in_schema=False)
    async def design_post(request: Request) -> Response:
        async with request.form(
            max_fields=20_000, max_part_size=settings.max_body_bytes
        ) as form:  # closes the uploaded file's spool
            values = {k: v for k, v in form.items() if isinstance(v, str)}
            upload = form.get("upload")
            raw = (
                await upload.read(settings.max_body_bytes + 1)
                if upload is not None and not isinstance(upload, str)
                else None
            )
        if raw is not None:
            current = _doc_of(values.get("_doc"))
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                return design_form(
                    request, current or designs.from_scenario("r1"), status=422,
                    checked=designs.Checked(None, "upload.yaml: not UTF-8 text"),
                )  # fmt: skip
            _, checked = designs.parse_upload(text, current)
            if checked.scenario is None:
                return design_form(
                    request, current or designs.from_scenario("r1"), checked=checked, status=422
                )
            did = store.save_design(checked.scenario.model_dump(mode="json"))
            return RedirectResponse(f"/design?design={did}&saved=true", 303)
        base = _doc_of(values.get("_doc"))
        if base is None:
            raise ApiError(422, "the form lost its design; start again from the designer")
        try:
            doc = designs.apply(base, values)
        except XinyongError as err:
            return design_form(
                request, base, checked=designs.Checked(None, err.format()), status=422
            )
        checked = designs.check(doc)
        if checked.scenario is None:
            return design_form(request, doc, checked=checked, status=422)
        did = store.save_design(checked.scenario.model_dump(mode="json"))
        return RedirectResponse(f"/design?design={did}&saved=true", 303)

    @app.get("/designs/{design_id}.yaml", include_in_schema=False)
    def design_yaml(design_id: DesignId) -> Response:
        text = store.design_text(design_id)
        if text is None:
            raise ApiError(404, f"no saved design '{design_id}'")
        return PlainTextResponse(
            text,
            media_type="application/yaml",
            headers={"Content-Disposition": f'attachment; filename="design-{design_id}.yaml"'},
        )

    @app.get("/run", response_class=HTMLResponse, include_in_schema=False)
    def run_page(
        request: Request, scenario: str | None = None, design: str | None = None
    ) -> Response:
        if design is not None:
            doc = store.design(design)
            if doc is None:
                raise ApiError(404, f"no saved design '{design}'")
        else:
            if scenario is not None and scenario not in _scenario_names():
                raise ApiError(404, f"unknown scenario '{scenario}'")
            doc = designs.from_scenario(scenario or "r1")
        adults = min(int(doc["population"]["adults"]), settings.max_adults)
        return page(
            request,
            "run.html",
            scenario=None if design else (scenario or "r1"),
            design=design,
            name=doc.get("name"),
            adults=adults,
            days=min(int(doc["days"]), settings.max_days),
            seed=doc.get("seed", 0),
            scenarios=_scenario_names(),
            designs=store.designs(),
        )

    @app.get("/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    def job_page(request: Request, job_id: RunId) -> Response:
        return page(request, "job.html", job=job_or_404(job_id).public())

    @app.get("/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
    def result_page(request: Request, run_id: RunId) -> Response:
        from xinyong.audit.compare import KEY_METRICS, flat_rows
        from xinyong.audit.report import key_findings

        info = run_or_404(run_id)
        findings = key_findings(info.audit) if info.audit else []
        rows = flat_rows(info.audit) if info.audit else {}
        key = [(m, rows[m]) for m in KEY_METRICS if m in rows]
        return page(
            request,
            "result.html",
            run=info,
            findings=[text for text, _, _ in findings],
            metrics=key,
            audit=info.audit,
            report=(info.path / "report.html").exists(),
            runs=[r for r in store.runs(jobs.busy()) if r.id != info.id],
        )

    @app.get("/runs/{run_id}/report.html", include_in_schema=False)
    def report_file(run_id: RunId) -> Response:
        info = run_or_404(run_id)
        page = served(info.path / "report.html")
        if page is None:
            raise ApiError(404, "the run has no report (xinyong audit RUN)")
        return Response(page, media_type="text/html")

    @app.get("/runs/{run_id}/people", response_class=HTMLResponse, include_in_schema=False)
    def person_page(
        request: Request, run_id: RunId, person: str | None = None, wrong: str | None = None
    ) -> Response:
        info = run_or_404(run_id)
        if wrong is not None:
            pid, lst = random_wrong(info, None)
            if pid is None:
                return page(
                    request, "person.html", run=info, doc=None,
                    message=f"No adult was wrongly on the {lst or 'sanction lists'} in this run.",
                )  # fmt: skip
            return RedirectResponse(f"/runs/{run_id}/people?person={pid}", 303)
        try:
            number = int(person or "")
        except ValueError:
            raise ApiError(422, f"not an adult's id: '{person}'", "person") from None
        doc = explained(info, number)
        by_id = {r["record_id"]: r for r in doc["records"]}
        mattered = [by_id[i] for i in doc["story"]["mattered"]]
        return page(request, "person.html", run=info, doc=doc, mattered=mattered, message=None)

    @app.get("/persona", response_class=HTMLResponse, include_in_schema=False)
    def persona_page(
        request: Request,
        name: str | None = None,
        packs: Annotated[list[str] | None, Query()] = None,
    ) -> Response:
        """A built-in persona under the chosen city packs (all eight by default)."""
        from xinyong.persona import DEFAULT_PACKS, builtin_personas

        cities = [p for p in _packs() if p["kind"] == "municipal"]
        chosen = tuple(packs or DEFAULT_PACKS)
        known = {p["id"] for p in cities}
        if name is not None and name not in builtin_personas():
            raise ApiError(404, f"no built-in persona '{name}'", "name")
        unknown = [p for p in chosen if p not in known]
        if unknown:
            raise ApiError(422, f"no built-in city pack '{unknown[0]}'", "packs")
        body = plotly = None
        if name is not None:
            from plotly.offline import get_plotlyjs

            body, plotly = _persona_body(name, chosen), get_plotlyjs()
        return page(
            request,
            "persona.html",
            personas=builtin_personas(),
            cities=cities,
            name=name,
            chosen=chosen,
            body=body,
            plotly=plotly,
        )

    @app.get("/compare", response_class=HTMLResponse, include_in_schema=False)
    def compare_page(request: Request, a: str | None = None, reform: str | None = None) -> Response:
        return page(
            request,
            "compare.html",
            runs=store.runs(jobs.busy()),
            designs=store.designs(),
            a=a,
            reform=reform,
            comparisons=store.comparisons()[:20],
        )

    @app.get("/compare/{compare_id}", response_class=HTMLResponse, include_in_schema=False)
    def comparison_page(request: Request, compare_id: RunId) -> Response:
        from xinyong.audit.compare import KEY_METRICS

        doc = store.comparison(compare_id)
        if doc is None:
            raise ApiError(404, f"no finished comparison '{compare_id}'")
        rows = {r["metric"]: r for r in doc["rows"]}
        key = [rows[m] for m in KEY_METRICS if m in rows]
        return page(
            request,
            "comparison.html",
            cid=compare_id,
            doc=doc,
            rows=key,
            summary=comparison_summary(doc, key),
        )

    @app.get("/compare/{compare_id}/compare.html", include_in_schema=False)
    def compare_file(compare_id: RunId) -> Response:
        path = settings.compare_path(compare_id) / "compare.html"
        page = served(path) if store.comparison(compare_id) is not None else None
        if page is None:
            raise ApiError(404, f"no finished comparison '{compare_id}'")
        return Response(page, media_type="text/html")

    return app


def served(path: Path) -> bytes | None:
    """A page of a run or comparison to serve: a regular file read without following a
    symbolic link (one in a run directory could point anywhere), or None."""
    try:
        return read_bytes(path, MAX_PAGE, follow_links=False)
    except XinyongError:
        return None


def strict_json(body: bytes) -> Any:
    """A request's JSON, strictly: finite numbers only (no NaN, Infinity or 1e999), nested at
    most MAX_JSON_DEPTH deep; anything else is refused with a 422 naming the problem."""

    def finite(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(f"{text[:40]} is not a finite number")
        return value

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a number JSON allows")

    try:
        data = json.loads(body, parse_float=finite, parse_constant=constant)
    except RecursionError:
        raise StarletteHTTPException(422, f"JSON nested more than {MAX_JSON_DEPTH} deep") from None
    except ValueError as exc:  # also a number of more than 4,300 digits, and bad UTF-8
        raise StarletteHTTPException(422, f"not valid JSON: {str(exc)[:200]}") from None
    stack = [(data, 1)] if isinstance(data, dict | list) else []
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise StarletteHTTPException(422, f"JSON nested more than {MAX_JSON_DEPTH} deep")
        children = value.values() if isinstance(value, dict) else value
        stack += [(v, depth + 1) for v in children if isinstance(v, dict | list)]
    return data


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """Routes whose JSON bodies are read by `strict_json`."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict


def _doc_of(text: str | None) -> dict[str, Any] | None:
    """The design a form carries (its hidden YAML), read strictly; None when unusable."""
    if not text:
        return None
    from xinyong.yamlio import parse_yaml

    try:
        data, _ = parse_yaml(text, "form")
    except XinyongError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("packs"), dict):
        return None
    return data


def _sanction_lists(sc: Any) -> list[str]:
    out = []
    for pack in sc.packs.values():
        out += [name for name, lst in pack.lists.items() if lst.kind == "sanction"]
    return sorted(set(out), key=lambda n: (n != "blacklist", n))


def _version() -> str:
    import xinyong

    return xinyong.__version__


def _scenario_names() -> list[str]:
    from xinyong.scenario import builtin_scenarios

    return builtin_scenarios()


_SCENARIOS: list[dict[str, Any]] = []
_PACKS: list[dict[str, Any]] = []


def _scenarios() -> list[dict[str, Any]]:
    if not _SCENARIOS:
        from xinyong.scenario import load_scenario

        for name in _scenario_names():
            sc = load_scenario(name)
            _SCENARIOS.append(
                {
                    "name": name,
                    "description": sc.description.strip(),
                    "adults": sc.adults,
                    "days": sc.days,
                    "packs": list(sc.packs),
                }
            )
    return _SCENARIOS


@functools.lru_cache(maxsize=16)
def _persona_body(name: str, packs: tuple[str, ...]) -> str:
    """A persona's page fragment: the runs are exact, so the same question has one answer."""
    from xinyong.persona import body_html, load_persona, run_persona

    persona = load_persona(name)
    return body_html(persona, run_persona(persona, packs))


def _packs() -> list[dict[str, Any]]:
    if not _PACKS:
        from xinyong.scheme.schema import builtin_packs, load_pack

        for pid in builtin_packs():
            p = load_pack(pid)
            _PACKS.append(
                {
                    "id": pid,
                    "kind": p.kind,
                    "title": p.title,
                    "description": (p.description or "").strip(),
                }
            )
    return _PACKS


def _run_label(info: Any) -> str:
    """A run as a menu shows it: id, scenario, size, days and seeds."""
    summary = info.summary
    seeds = summary.get("seeds") or [summary.get("seed")]
    seed = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]} to {seeds[-1]}"
    return (
        f"{info.id}: {summary.get('scenario')}, {plural(summary.get('adults', 0), 'adult')}, "
        f"{plural(summary.get('days', 0), 'day')}, {seed}"
    )


def comparison_summary(doc: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """A comparison in plain language (HTML-safe lines): what changed, over how many seeds,
    and which key metrics moved beyond the noise (only across seeds can one)."""
    params = [p for p in doc.get("parameters") or [] if p["key"] not in ("name", "description")]
    changed = Markup(", ").join(
        Markup("{} from {} to {}").format(_breakable(p["key"]), _value(p["a"]), _value(p["b"]))
        for p in params[:3]
    )
    if len(params) > 3:
        changed += f" and {plural(len(params) - 3, 'more key')}"
    seeds = len(doc["b"].get("seeds") or [])
    out = [
        escape(
            f"B ({doc['b'].get('scenario')}) against A ({doc['a'].get('scenario')}), "
            f"{plural(seeds, 'seed')} a side: "
        )
        + (Markup("B changes {}.").format(changed) if params else "no scenario parameter differs.")
    ]
    if doc.get("interval") == "within-run":
        out.append(
            "One run a side: nothing is called significant, since a second seed could move "
            "these numbers as much. Pair two or more seeds to tell."
        )
        return out
    moved = [r for r in rows if r.get("significant")]
    for r in moved[:4]:
        direction = "rose" if (r.get("difference") or 0) > 0 else "fell"
        what = r.get("meaning") or label(r["metric"])
        out.append(
            f"{what[:1].upper()}{what[1:]}: {direction} from {number(r['a'])} to "
            f"{number(r['b'])} (B - A {number(r['difference'])}, 95% interval "
            f"[{number(r['low'])}, {number(r['high'])}] across seeds)."
        )
    if not moved:
        out.append(
            f"None of the {plural(len(rows), 'key metric')} differs beyond the noise across "
            f"{plural(seeds, 'seed')}: each interval of B - A includes 0."
        )
    elif len(moved) > 4:
        out.append(f"And {plural(len(moved) - 4, 'more key metric')} (marked below).")
    return out


def _value(x: object) -> str:
    """A scenario value as read: numbers without float noise or exponents, the rest as is."""
    return number(x, 6) if isinstance(x, int | float) else str(x)


def _breakable(name: object) -> Markup:
    """An id or a path that may wrap after its dots, underscores, hyphens and slashes, and
    nowhere else (never inside a word)."""
    return Markup(re.sub(r"([._/-])", r"\1<wbr>", str(escape(name))))


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, however they are sent: by their
    Content-Length, or as they arrive (chunked). The body is read here, whole, before the
    application sees it (the application's own reader would answer 400 to a cut body)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        try:
            declared = int(length) if length is not None else 0
        except ValueError:
            declared = self.limit + 1
        if declared > self.limit:
            await _refuse(send, 413, f"the request is larger than {self.limit:,} bytes "
                          "(the server's bound)")  # fmt: skip
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > self.limit:
                await _refuse(send, 413, f"the request is larger than {self.limit:,} bytes "
                              "(the server's bound)")  # fmt: skip
                return
            if not message.get("more_body", False):
                break
        whole = {"type": "http.request", "body": bytes(body), "more_body": False}

        async def replay() -> dict:
            nonlocal whole
            if whole is None:
                return await receive()  # what follows: a disconnect
            message, whole = whole, None
            return message

        await self.app(scope, replay, send)


class HostAllowList:
    """Answer only requests whose Host header names this server (localhost names and the
    address it was started on, `Settings.hosts`): a web page elsewhere cannot reach a
    server on localhost by pointing its own name at 127.0.0.1 (DNS rebinding)."""

    def __init__(self, app: Any, hosts: tuple[str, ...]) -> None:
        self.app = app
        self.hosts = {host_name(h) for h in hosts}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            raw = dict(scope.get("headers") or []).get(b"host", b"")
            if host_name(raw.decode("latin-1")) not in self.hosts:
                await _refuse(send, 400, "this server answers only to its own names (Host "
                              "header); start it with --allow-host NAME for another")  # fmt: skip
                return
        await self.app(scope, receive, send)


def host_name(host: str) -> str:
    """The name in a Host header or an address, without its port or brackets, lower case."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8000
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:  # name:port (an IPv6 address without brackets has several)
        host = host.split(":", 1)[0]
    return host.rstrip(".")


async def _refuse(send: Any, status: int, detail: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps({"detail": detail}).encode()})


__all__ = ["Settings", "create_app"]
