"""The classroom submission site: a FastAPI app over one competition and its database.

``create_app(competition, settings)`` assembles the app that ``kit serve`` runs on uvicorn:
the routers (:mod:`kit.server.routers`: the participants' API, the teacher's API and page,
the pages), the middleware of :mod:`kit.server.security` and :mod:`kit.server.limits`, and
the handlers that turn every refusal into the one-line body ``{"error": "..."}``.

Trust: everything a request carries is hostile. Tokens are looked up by their hash;
uploads are streamed to a private temporary file under a size cap (refused with 413 as
soon as the cap is passed, before the rest is read), stored under the file's sha256 and
never under the name the client sent; the scorer runs in a worker thread; every page is a
Jinja2 template with autoescaping and a Content-Security-Policy that allows no inline
script. Times are the server's clock in UTC; the daily limit counts days in the server's
time zone (UTC unless ``--timezone``).

Failures cost the sender, not the class: a file the scorer refuses is a 4xx that stores
nothing; a failure of the server is a 500 that stores no file but counts against the
sender's day (``failed_attempts``). A form without an ``Authorization`` header or token
cookie must begin with its token, within 64 KiB and a few seconds; uploads open at once
are capped per participant and, until their token has arrived, per client address.
"""
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import replace
from importlib.util import find_spec
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from kit._version import __version__
from kit.board.inbox import daily_limit
from kit.board.recording import open_store
from kit.board.standings import Exporter, export
from kit.board.store import SUBMISSIONS_FOLDER, hash_token
from kit.board.tokens import ensure_teacher_token
from kit.errors import UserError
from kit.scoring.scorer import Scorer
from kit.server.limits import HeadLimits, RequestTimeLimit
from kit.server.routers import api, pages, teacher
from kit.server.security import NoTokenInAddress, SecurityHeaders, quiet_polls
from kit.server.settings import DEFAULT_MAX_UPLOAD_MB, Settings, check_setting, parse_deadline
from kit.server.state import PLOT_LOCK, ServerState
from kit.server.upload import SCORING_SLOTS

log = logging.getLogger("kit.serve")

_HERE = Path(__file__).resolve().parent
DOCS_ASSETS = "/docs/assets"


def swagger_ui_assets():
    """The folder of Swagger UI's files shipped by the swagger-ui-py package (found without importing it).

    Examples
    --------
    >>> (swagger_ui_assets() / "swagger-ui-bundle.js").is_file()
    True
    """
    spec = find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the swagger-ui-py package is missing: expected it installed with specsim-kit "
                        "(pip install -r requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def create_app(competition, settings=None, **options):
    """The FastAPI app serving one competition.

    Parameters
    ----------
    competition : Competition, str or Path
        Its ``private/solution.csv`` must be present (the server scores).
    settings : Settings, optional
        How to serve it (:class:`kit.server.settings.Settings`; default its defaults).
    **options
        Settings to change, by name (``clock=``, ``leaderboard=``, ...): a shorthand for
        ``dataclasses.replace(settings, **options)``, checked the same way.

    Returns
    -------
    fastapi.FastAPI
        ``app.state.kit`` holds the :class:`kit.server.state.ServerState`.

    Examples
    --------
    >>> from fastapi.testclient import TestClient                                # doctest: +SKIP
    >>> client = TestClient(create_app("data/practice", Settings(refresh_seconds=5)))  # doctest: +SKIP
    >>> client.get("/api/leaderboard").json()["rows"]                            # doctest: +SKIP
    []
    """
    settings = settings or Settings()
    if options:
        settings = replace(settings, **options)
    scorer = Scorer(competition, data=settings.data)
    comp = scorer.competition
    private = comp.path / "private"
    teacher_token, _ = ensure_teacher_token(private)
    cap_mb = settings.max_upload_mb
    if cap_mb is None:  # competition.json's, checked as the option would be
        cap_mb = check_setting("max_upload_mb", comp.metadata.get("max_upload_mb", DEFAULT_MAX_UPLOAD_MB))
    cap = int(cap_mb * (1 << 20))
    if cap < 1:
        raise UserError(f"upload cap (MB) must be at least one byte, found {cap_mb!r}")
    deadline = settings.deadline if settings.deadline is not None else comp.metadata.get("deadline")
    state = ServerState(
        competition=comp,
        scorer=scorer,
        db=open_store(comp, settings.leaderboard),  # the store of record, with an earlier log imported once
        teacher_hash=hash_token(teacher_token),
        limit=daily_limit(comp.metadata),
        tz=settings.tz,
        deadline=parse_deadline(deadline, settings.tz),
        max_upload_bytes=cap,
        clock=settings.clock,
        leaderboard=settings.leaderboard,
        refresh_ms=max(500, int(settings.refresh_seconds * 1000)),
        upload_timeout=settings.upload_timeout,
        request_timeout=settings.request_timeout,
        uploads_per_token=settings.uploads_per_token,
        anonymous_per_address=settings.anonymous_per_address,
        anonymous_timeout=settings.anonymous_timeout,
    )
    for folder in (private / SUBMISSIONS_FOLDER, private / SUBMISSIONS_FOLDER / ".incoming"):
        folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_uploads(private / SUBMISSIONS_FOLDER / ".incoming")

    def export_job():
        with PLOT_LOCK:
            export(state.db, comp, scorer.metric, settings.leaderboard)

    state.exporter = Exporter(export_job, interval=settings.export_interval)
    return _build(state)


def _remove_stale_uploads(folder, age=3600):
    """Delete uploads left half-way by a server that was killed (older than ``age`` seconds).

    Young ones may belong to another server running on the same competition.
    """
    for path in folder.glob("*.upload"):
        try:
            if time.time() - path.stat().st_mtime > age:
                path.unlink()
        except OSError:
            pass


@asynccontextmanager
async def _lifespan(app):
    state = app.state.kit
    state.scoring_slots = anyio.CapacityLimiter(SCORING_SLOTS)
    quiet_polls()
    # The exports follow the database: bring them up to date after a restart.
    state.exporter.request()
    yield
    await run_in_threadpool(state.exporter.stop)


def _build(state):
    app = FastAPI(
        title=f"specsim-kit classroom: {state.competition.name}",
        description="Submit predictions, see the leaderboard. Authenticate with `Authorization: Bearer TOKEN` "
        "(your participant token). Errors are JSON objects `{\"error\": \"...\"}`.",
        version=__version__,
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.kit = state
    # Added first, so they run inside SecurityHeaders: their 400 and 408 carry the headers too.
    app.add_middleware(NoTokenInAddress)
    app.add_middleware(HeadLimits)
    app.add_middleware(RequestTimeLimit, seconds=state.request_timeout)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_assets()), name="docs-assets")
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _internal_error)
    app.add_api_route("/docs", _api_docs, include_in_schema=False)
    for router in (api.router, teacher.api, teacher.page, pages.router):
        app.include_router(router)
    return app


async def _api_docs(request: Request):
    # Swagger UI from the installed swagger-ui-py package: a classroom network may have no internet.
    app = request.app
    return get_swagger_ui_html(
        openapi_url=app.openapi_url, title=f"{app.title}: API",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
    )


# --- errors as {"error": ...} ----------------------------------------------------------


async def _http_error(request, exc):
    message = exc.detail if isinstance(exc.detail, str) else "request refused"
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _validation_error(request, exc):
    first = (exc.errors() or [{}])[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return JSONResponse({"error": f"invalid request: {where} {first.get('msg', '')}".strip()}, status_code=422)


async def _client_gone(request, exc):
    # Nobody is left to read the answer; not the server's failure, so not logged as one.
    return JSONResponse({"error": "the client closed the connection before its request had arrived"},
                        status_code=400)


async def _internal_error(request, exc):
    log.exception("internal error on %s", request.url.path)
    return JSONResponse({"error": "internal error (a bug in specsim-kit; the server log has the details)"},
                        status_code=500)
