"""The classroom submission site: a FastAPI app over one competition and its database.

``create_app(competition)`` returns the ASGI app that ``kit serve`` runs on uvicorn.

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
are capped per participant and, until their token has arrived, per client address. Every
score a participant sees is rounded to :data:`kit.scoring.metrics.SHOWN_DECIMALS` and ranked as
shown; the database keeps every digit.
"""
import hmac
import json
import logging
import math
import os
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from datetime import time as day_time
from pathlib import Path
from typing import Callable

from kit.competition import deadline as kit_deadline
from kit.board.inbox import identical_note
from kit.errors import UserError
from kit.scoring.metrics import SHOWN_DECIMALS, shown_scores
from kit.board.phases import CLOSED, REVEALED, REVEALED_CLOSED, TEACHER_CLOSED, SubmissionsClosed, decide_phase, utc_iso
from kit.board.store import MAX_FINALS, SCORED, SUBMISSIONS_FOLDER, Database, LimitReached
from kit.board.tokens import ensure_teacher_token, hash_token, same_token
from kit.server.limits import (ANONYMOUS_TIMEOUT, DEFAULT_ANONYMOUS_PER_ADDRESS, DEFAULT_REQUEST_TIMEOUT,
                               DEFAULT_UPLOADS_PER_TOKEN, HeadLimits, OpenUploads, RequestTimeLimit, TooManyOpen,
                               address_key)

log = logging.getLogger("kit.serve")

#: Default cap on an uploaded file.
DEFAULT_MAX_UPLOAD_MB = 50
#: Room for the form's other fields and the multipart framing, on top of the file's cap.
FORM_OVERHEAD = 64 * 1024
#: Longest description kept (characters); longer ones are cut.
MAX_DESCRIPTION = 200
#: Longest uploaded file name kept for display.
MAX_FILE_NAME = 120
#: Files scored at the same time (more wait their turn).
SCORING_SLOTS = max(2, min(8, os.cpu_count() or 2))
#: Longest bearer token looked at (real ones have 32 characters).
MAX_TOKEN = 256
#: Seconds an upload's body may take to arrive (``kit serve --upload-timeout``).
DEFAULT_UPLOAD_TIMEOUT = 120.0
#: Cookie a browser may carry the participant token in (read, never set, by the server).
TOKEN_COOKIE = "kit_token"
#: Rows the classroom screen (``/?view=projector``) shows.
PROJECTOR_ROWS = 20
#: Cookie holding the teacher's session on the /teacher page (set HttpOnly, SameSite=Strict).
TEACHER_COOKIE = "kit_teacher"
#: Seconds a teacher session lasts.
TEACHER_SESSION_SECONDS = 12 * 3600
#: Largest body of ``POST /api/reveal``, ``/api/open``, ``/api/deadline`` and ``/api/final``: a JSON object of one key.
MAX_REVEAL_BODY = 1024
#: What a participant is told when the server, not their file, failed.
INTERNAL_FAILURE = ("internal error while scoring (a bug in specsim-kit; the server log has the details); "
                    "the attempt counts against today's limit")

_HERE = Path(__file__).resolve().parent
_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")
# /docs serves Swagger UI from the installed swagger-ui-py package (a classroom network may
# have no internet); FastAPI's page starts it with an inline script.
_DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self' 'unsafe-inline'; "
             "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
DOCS_ASSETS = "/docs/assets"
# Only one thread draws the plots at a time (matplotlib's rc settings are global while it draws).
_PLOT_LOCK = threading.Lock()


def swagger_ui_assets():
    """The folder of Swagger UI's files shipped by the swagger-ui-py package (found without importing it).

    Examples
    --------
    >>> (swagger_ui_assets() / "swagger-ui-bundle.js").is_file()
    True
    """
    from importlib.util import find_spec

    spec = find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the swagger-ui-py package is missing: expected it installed with specsim-kit (pip install -r requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


class ApiError(Exception):
    """A refusal with its HTTP status and a one-line message for the client."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class ServerState:
    """What the app knows: the competition, its scorer and database, and the rules."""

    competition: object
    scorer: object
    db: Database
    teacher_hash: str
    limit: int
    tz: object
    deadline: datetime
    max_upload_bytes: int
    clock: Callable
    leaderboard: object
    refresh_ms: int = 10_000
    upload_timeout: float = DEFAULT_UPLOAD_TIMEOUT
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    exporter: object = None
    plots: dict = field(default_factory=dict)
    standings: tuple = None
    scoring_slots: object = None
    uploads_per_token: int = DEFAULT_UPLOADS_PER_TOKEN
    anonymous_per_address: int = DEFAULT_ANONYMOUS_PER_ADDRESS
    anonymous_timeout: float = ANONYMOUS_TIMEOUT
    uploads: OpenUploads = field(default_factory=OpenUploads)
    teacher_sessions: dict = field(default_factory=dict)

    @property
    def private_dir(self):
        return self.competition.path / "private"

    def day_window(self, now):
        """``(start, end)`` of the server-time day holding ``now``, as aware UTC datetimes."""
        local = now.astimezone(self.tz)
        start = datetime.combine(local.date(), day_time(0), tzinfo=self.tz)
        end = datetime.combine(local.date() + timedelta(days=1), day_time(0), tzinfo=self.tz)
        return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def current_phase(state, now=None):
    """The :class:`Phase` of the served competition now (or at ``now``), from the store and the clock."""
    return decide_phase(state.db.settings(), state.deadline, state.clock() if now is None else now)


def parse_deadline(value, tz=None):
    """A deadline as an aware UTC datetime, or None: :func:`kit.competition.deadline.parse_deadline`.

    One meaning in every mode: a time without zone is UTC (whatever ``--timezone``, which
    ``tz`` names and which only sets the days of the daily limit), a date alone is 23:59 UTC.

    Examples
    --------
    >>> parse_deadline("2026-06-30T23:59:00Z", timezone.utc).isoformat()
    '2026-06-30T23:59:00+00:00'
    >>> parse_deadline("2026-06-30", timezone.utc).isoformat()
    '2026-06-30T23:59:00+00:00'
    """
    return kit_deadline.parse_deadline(value, "deadline")


def load_timezone(name):
    """A :class:`zoneinfo.ZoneInfo` for a name such as ``Europe/Paris``; a UserError otherwise."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if name in (None, "", "UTC", "utc"):
        return timezone.utc
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UserError(f"unknown time zone {str(name)[:60]!r}: expected a name such as UTC or Europe/Paris") from None


def create_app(competition, *, data=None, leaderboard=None, timezone_name="UTC", deadline=None, max_upload_mb=None,
               clock=None, export_interval=2.0, refresh_seconds=10.0, upload_timeout=DEFAULT_UPLOAD_TIMEOUT,
               request_timeout=DEFAULT_REQUEST_TIMEOUT, uploads_per_token=DEFAULT_UPLOADS_PER_TOKEN,
               anonymous_per_address=DEFAULT_ANONYMOUS_PER_ADDRESS, anonymous_timeout=ANONYMOUS_TIMEOUT):
    """The FastAPI app serving one competition.

    Parameters
    ----------
    competition : Competition, str or Path
        Its ``private/solution.csv`` must be present (the server scores).
    data : str or Path, optional
        Folder holding named competitions (default ``./data``).
    leaderboard : str or Path, optional
        Where the CSV log and pages are exported (default ``./leaderboard``).
    timezone_name : str
        Time zone whose days the daily limit counts (default UTC).
    deadline : str or datetime, optional
        Submissions close then; default the ``deadline`` of competition.json.
    max_upload_mb : float, optional
        Cap on an uploaded file (default ``max_upload_mb`` of competition.json, else 50).
    clock : callable, optional
        Returns the current aware datetime (tests pass a fake one).
    export_interval : float
        Least seconds between two exports of the log and pages.
    refresh_seconds : float
        How often the live leaderboard page asks for news.
    upload_timeout : float
        Seconds an upload's body may take to arrive; a slower one is refused with 408.
    request_timeout : float
        Seconds any request may take in total (408, or the connection closed).
    uploads_per_token : int
        Uploads one participant may have open at once (429 past it).
    anonymous_per_address : int
        Forms one client address may have open at once before their token has arrived
        (429 past it); a class behind one NAT shares it.
    anonymous_timeout : float
        Seconds a form without an ``Authorization`` header or token cookie may take to
        deliver its first field, the token (408 past it).

    Returns
    -------
    fastapi.FastAPI
        ``app.state.kit`` holds the :class:`ServerState`.

    Examples
    --------
    >>> from fastapi.testclient import TestClient            # doctest: +SKIP
    >>> client = TestClient(create_app("data/practice"))     # doctest: +SKIP
    >>> client.get("/api/leaderboard").json()["rows"]        # doctest: +SKIP
    []
    """
    from kit.board.inbox import daily_limit
    from kit.board.recording import open_store
    from kit.scoring.scorer import Scorer
    from kit.board.standings import Exporter, export

    scorer = Scorer(competition, data=data)
    comp = scorer.competition
    tz = load_timezone(timezone_name)
    private = comp.path / "private"
    teacher_token, _ = ensure_teacher_token(private)
    cap_mb = max_upload_mb if max_upload_mb is not None else comp.metadata.get("max_upload_mb", DEFAULT_MAX_UPLOAD_MB)
    try:
        cap = int(float(cap_mb) * (1 << 20))
    except (TypeError, ValueError, OverflowError):
        cap = -1
    if cap <= 0:
        raise UserError(f"upload cap {cap_mb!r} MB: expected a positive number of megabytes")
    try:
        refresh_ms = int(float(refresh_seconds) * 1000)
    except (TypeError, ValueError, OverflowError):
        refresh_ms = -1
    if refresh_ms <= 0:
        raise UserError(f"refresh every {refresh_seconds!r} seconds: expected a positive number of seconds")
    upload_timeout = _positive_seconds(upload_timeout, "upload timeout")
    request_timeout = _positive_seconds(request_timeout, "request timeout")
    anonymous_timeout = _positive_seconds(anonymous_timeout, "anonymous form timeout")
    counts = ((uploads_per_token, "uploads per token"), (anonymous_per_address, "anonymous uploads per address"))
    for value, what in counts:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{what} {value!r}: expected a positive whole number")
    state = ServerState(
        competition=comp,
        scorer=scorer,
        db=open_store(comp, leaderboard),  # the store of record, with an earlier log imported once
        teacher_hash=hash_token(teacher_token),
        limit=daily_limit(comp.metadata),
        tz=tz,
        deadline=parse_deadline(deadline if deadline is not None else comp.metadata.get("deadline"), tz),
        max_upload_bytes=cap,
        clock=clock or (lambda: datetime.now(timezone.utc)),
        leaderboard=leaderboard,
        refresh_ms=max(500, refresh_ms),
        upload_timeout=upload_timeout,
        request_timeout=request_timeout,
        uploads_per_token=uploads_per_token,
        anonymous_per_address=anonymous_per_address,
        anonymous_timeout=anonymous_timeout,
    )
    for folder in (private / SUBMISSIONS_FOLDER, private / SUBMISSIONS_FOLDER / ".incoming"):
        folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_uploads(private / SUBMISSIONS_FOLDER / ".incoming")

    def export_job():
        with _PLOT_LOCK:
            export(state.db, comp, scorer.metric, leaderboard)

    state.exporter = Exporter(export_job, interval=export_interval)
    return _build(state)


class PollFilter(logging.Filter):
    """Drops uvicorn's access-log lines of answered page loads and polls (the live page asks every few seconds).

    Posts, refusals and failures are still logged.
    """

    QUIET = ("/api/leaderboard", "/api/info", "/plots/", "/static/", "/style.css", "/favicon.ico", "/docs/assets/")

    def filter(self, record):
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) != 5:
            return True
        _, method, path, _, status = args
        path = str(path).split("?")[0]
        answered = isinstance(status, int) and status < 400
        return not (method == "GET" and answered and (path == "/" or path.startswith(self.QUIET)))


def quiet_polls():
    """Put :class:`PollFilter` on uvicorn's access log (once)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, PollFilter) for f in access.filters):
        access.addFilter(PollFilter())


def _positive_seconds(value, what):
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise UserError(f"{what} {value!r}: expected a positive number of seconds")
    return seconds


def _remove_stale_uploads(folder, age=3600):
    """Delete uploads left half-way by a server that was killed (older than ``age`` seconds).

    Young ones may belong to another server running on the same competition.
    """
    import time

    for path in folder.glob("*.upload"):
        try:
            if time.time() - path.stat().st_mtime > age:
                path.unlink()
        except OSError:
            pass


# --- the app -------------------------------------------------------------------------


def _build(state):
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect

    templates = _templates()
    metric = state.scorer.metric

    @asynccontextmanager
    async def lifespan(app):
        import anyio

        state.scoring_slots = anyio.CapacityLimiter(SCORING_SLOTS)
        quiet_polls()
        # The exports follow the database: bring them up to date after a restart.
        state.exporter.request()
        yield
        await run_in_threadpool(state.exporter.stop)

    app = FastAPI(
        title=f"specsim-kit classroom: {state.competition.name}",
        description="Submit predictions, see the leaderboard. Authenticate with `Authorization: Bearer TOKEN` "
        "(your participant token). Errors are JSON objects `{\"error\": \"...\"}`.",
        version=_version(),
        lifespan=lifespan,
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

    @app.get("/docs", include_in_schema=False)
    async def api_docs():
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{app.title}: API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )

    # --- errors as {"error": ...} ----------------------------------------------------

    @app.exception_handler(ApiError)
    async def api_error(request, exc):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc):
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc):
        first = (exc.errors() or [{}])[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return JSONResponse({"error": f"invalid request: {where} {first.get('msg', '')}".strip()}, status_code=422)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request, exc):
        # Nobody is left to read the answer; not the server's failure, so not logged as one.
        return JSONResponse({"error": "the client closed the connection before its request had arrived"},
                            status_code=400)

    @app.exception_handler(Exception)
    async def internal_error(request, exc):
        log.exception("internal error on %s", request.url.path)
        return JSONResponse({"error": "internal error (a bug in specsim-kit; the server log has the details)"},
                            status_code=500)

    # --- API -------------------------------------------------------------------------

    @app.post(
        "/api/submissions",
        status_code=201,
        summary="Submit a prediction file",
        openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary", "description": "the submission CSV (id,similarity)"},
                "description": {"type": "string", "description": f"optional note, at most {MAX_DESCRIPTION} characters"},
            }}}}}},
        responses={401: {"description": "no, unknown or revoked token"},
                   403: {"description": "after the deadline, or once the Private ranking is revealed"},
                   408: {"description": "the file took too long to arrive"},
                   413: {"description": "file over the size cap"}, 415: {"description": "not multipart/form-data"},
                   422: {"description": "invalid file (the scorer's message); nothing recorded"},
                   429: {"description": "daily limit reached (server-time day), or too many uploads at once"},
                   500: {"description": "the server failed to score the file: nothing stored, the attempt "
                                        "counts against the daily limit"}},
    )
    async def post_submission(request: Request):
        participant = await _participant(state, _bearer(request))
        await _check_allowance(state, participant, state.clock())
        with _upload_slots(state) as held:
            form, _ = await _read_form(request, state, held, participant=participant)
            try:
                return await _accept(state, participant, form.get("file"), form.get("description"))
            finally:
                await form.close()

    @app.get("/api/leaderboard", summary="The leaderboard (Private scores once revealed)")
    async def get_leaderboard():
        current, latest = await run_in_threadpool(_standings, state)
        phase = await run_in_threadpool(current_phase, state)
        from kit.board.standings import leaderboard_json

        title, subtitle = _headings(current, phase)
        return {**leaderboard_json(current, latest), "state": phase.state, "title": title, "subtitle": subtitle}

    @app.get("/api/me", summary="Your submissions with their scores")
    async def get_me(request: Request):
        participant = await _participant(state, _bearer(request))
        return await run_in_threadpool(_history, state, participant)

    @app.post("/api/reveal", summary="Teacher: JSON {\"revealed\": true} ranks on the Private scores and closes "
              "submissions; {\"revealed\": false} hides them again and re-opens submissions until the deadline",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "type": "object", "required": ["revealed"], "additionalProperties": False,
                  "properties": {"revealed": {"type": "boolean"}}}}}}},
              responses={401: {"description": "no or unknown token"}, 403: {"description": "a participant's token"},
                         413: {"description": "body over 1 KiB"}, 415: {"description": "not application/json"},
                         422: {"description": "not the object {\"revealed\": true|false}"}})
    async def post_reveal(request: Request):
        await _teacher(state, request, "revealing the Private ranking")
        revealed = reveal_choice(request.headers.get("content-type"), await _read_body(request, MAX_REVEAL_BODY))
        await run_in_threadpool(set_revealed, state, revealed)
        return {"revealed": revealed}

    teacher_responses = {401: {"description": "no or unknown token"}, 403: {"description": "a participant's token"},
                         413: {"description": "body over 1 KiB"}, 415: {"description": "not application/json"}}

    @app.post("/api/open", summary="Teacher: JSON {\"open\": false} closes submissions and choices of final "
              "submissions; {\"open\": true} re-opens them (before the deadline, and not while revealed)",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "type": "object", "required": ["open"], "additionalProperties": False,
                  "properties": {"open": {"type": "boolean"}}}}}}},
              responses={**teacher_responses, 409: {"description": "re-opening after the deadline or while revealed"},
                         422: {"description": "not the object {\"open\": true|false}"}})
    async def post_open(request: Request):
        await _teacher(state, request, "closing or re-opening the competition")
        wanted = json_field(request.headers.get("content-type"), await _read_body(request, MAX_REVEAL_BODY), "open",
                            _is_bool, '{"open": true} or {"open": false}')
        phase = await run_in_threadpool(set_open, state, wanted)
        return {"open": phase.open, "state": phase.state}

    @app.post("/api/deadline", summary="Teacher: JSON {\"deadline\": \"2026-06-30T23:59:00Z\"} sets the deadline "
              "(a time without zone is UTC, a date alone 23:59 UTC); {\"deadline\": null} removes it",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "type": "object", "required": ["deadline"], "additionalProperties": False,
                  "properties": {"deadline": {"type": ["string", "null"], "format": "date-time"}}}}}}},
              responses={**teacher_responses,
                         422: {"description": "not the object {\"deadline\": ISO 8601 text or null}"}})
    async def post_deadline(request: Request):
        await _teacher(state, request, "setting the deadline")
        value = json_field(request.headers.get("content-type"), await _read_body(request, MAX_REVEAL_BODY), "deadline",
                           _is_deadline, '{"deadline": "2026-06-30T23:59:00Z"} or {"deadline": null}')
        deadline = checked_deadline(value, state.tz)
        phase = await run_in_threadpool(set_deadline, state, deadline)
        return {"deadline": None if deadline is None else utc_iso(deadline), "state": phase.state}

    @app.post("/api/final", summary=f"Choose up to {MAX_FINALS} of your scored submissions as final: JSON "
              "{\"submissions\": [ID, ...]} (an empty list takes the choice back)",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "type": "object", "required": ["submissions"], "additionalProperties": False,
                  "properties": {"submissions": {"type": "array", "maxItems": MAX_FINALS,
                                                 "items": {"type": "integer"}}}}}}}},
              responses={401: {"description": "no, unknown or revoked token"},
                         403: {"description": "after the deadline, once closed or revealed"},
                         413: {"description": "body over 1 KiB"}, 415: {"description": "not application/json"},
                         422: {"description": f"more than {MAX_FINALS} ids, or an id that is not one of yours"}})
    async def post_final(request: Request):
        participant = await _participant(state, _bearer(request))
        ids = json_field(request.headers.get("content-type"), await _read_body(request, MAX_REVEAL_BODY),
                         "submissions", _is_id_list, '{"submissions": [ID, ...]}')
        return await _choose_finals(state, participant, ids)

    @app.get("/api/info", summary="The competition's rules: metric, limits, deadline")
    async def get_info():
        return _info(state)

    # --- pages -------------------------------------------------------------------------

    def page(request, name, status=200, **context):
        context.update(competition=state.competition.name, info=_info(state))
        return templates.TemplateResponse(request, name, context, status_code=status)

    @app.get("/", include_in_schema=False)
    async def leaderboard_page(request: Request):
        current, latest = await run_in_threadpool(_standings, state)
        phase = await run_in_threadpool(current_phase, state)
        titles, rows = _table(current)
        title, subtitle = _headings(current, phase)
        # The classroom screen: large type, the top rows, no navigation; it refreshes itself.
        projector = request.query_params.get("view") == "projector"
        return page(request, "leaderboard.html", title=title, subtitle=subtitle, titles=titles,
                    rows=rows[:PROJECTOR_ROWS] if projector else rows, projector=projector,
                    revealed=current.private, entries=len(current.log),
                    decimals=min(metric.decimals, SHOWN_DECIMALS),
                    refresh_ms=state.refresh_ms, version=_version_tag(current, phase))

    @app.get("/style.css", include_in_schema=False)
    async def stylesheet():
        from kit.board import pages

        return Response(pages.STYLESHEET, media_type="text/css")

    @app.get("/plots/{name}.png", include_in_schema=False)
    async def plot(name: str):
        images = await run_in_threadpool(_plot_images, state)
        if name not in images:
            raise ApiError(404, "no such plot")
        return Response(images[name], media_type="image/png", headers={"Cache-Control": "no-cache"})

    @app.get("/submit", include_in_schema=False)
    async def submit_form(request: Request):
        return page(request, "submit.html")  # info.state says whether the form is shown

    @app.post("/submit", include_in_schema=False)
    async def submit_page(request: Request):
        async def authorize(token):
            participant = await _participant(state, token.strip())
            await _check_allowance(state, participant, state.clock())
            return participant

        form = None
        try:
            with _upload_slots(state) as held:
                # The token is checked as soon as it has arrived (a header, a cookie, or the
                # form's first field), before the file's bytes are taken: an anonymous post
                # cannot make the server store a large file, nor hold a connection for long.
                participant = await _early_participant(state, request, authorize)
                form, participant = await _read_form(request, state, held, participant=participant,
                                                     authorize=authorize)
                result = await _accept(state, participant, form.get("file"), form.get("description"))
        except ApiError as exc:
            return page(request, "submit.html", status=exc.status, error=exc.message)
        finally:
            if form is not None:
                await form.close()
        return page(request, "submit.html", status=201, result=result, score=metric.format(result["public"]))

    @app.get("/me", include_in_schema=False)
    async def me_form(request: Request):
        return page(request, "me.html")

    @app.post("/me", include_in_schema=False)
    async def me_page(request: Request):
        async def authorize(token):
            return await _participant(state, token.strip())

        try:
            with _upload_slots(state) as held:
                participant = await _early_participant(state, request, authorize)
                # The same limits as an upload's, with no room for a file.
                form, participant = await _read_form(request, state, held, participant=participant,
                                                     authorize=authorize, cap=0)
                await form.close()
        except ApiError as exc:
            return page(request, "me.html", status=exc.status, error=exc.message)
        return await me_history(request, participant, form.get("token"))

    @app.post("/me/final", include_in_schema=False)
    async def me_final(request: Request):
        async def authorize(token):
            return await _participant(state, token.strip())

        participant, token = None, None
        try:
            _same_origin(request)
            with _upload_slots(state) as held:
                # The token must come in the form: a cookie alone would let another site choose for a browser.
                form, participant = await _read_form(request, state, held, authorize=authorize, cap=0)
                await form.close()
            token = form.get("token")
            values = form.getlist("final")
            if not all(isinstance(v, str) and v.isascii() and v.isdigit() and len(v) < 18 for v in values):
                raise ApiError(422, "expected submission numbers in the field 'final'")
            await _choose_finals(state, participant, [int(v) for v in values])
        except ApiError as exc:
            if participant is None:
                return page(request, "me.html", status=exc.status, error=exc.message)
            return await me_history(request, participant, token, status=exc.status, error=exc.message)
        return await me_history(request, participant, token, saved=True)

    async def me_history(request, participant, token, status=200, **context):
        history = await run_in_threadpool(_history, state, participant)
        for row in history["submissions"]:
            row["public_text"] = metric.format(row["public"])
            row["private_text"] = metric.format(row.get("private"))
        # The token rides in the page's own choice form (typed by its owner a moment ago): never cached.
        token = token if isinstance(token, str) and token.strip() else None
        response = page(request, "me.html", status=status, history=history, token=token, **context)
        response.headers["Cache-Control"] = "no-store"
        return response

    # --- the teacher's page -----------------------------------------------------------------

    def teacher_page(request, session, status=200, **context):
        participants = state.db.participants()
        response = page(request, "teacher.html", status=status, signed_in=session is not None,
                        csrf=_csrf(session) if session else "", participants=participants,
                        phase=current_phase(state), **context)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/teacher", include_in_schema=False)
    async def teacher_get(request: Request):
        return teacher_page(request, _teacher_session(state, request))

    @app.post("/teacher", include_in_schema=False)
    async def teacher_post(request: Request):
        from fastapi.responses import RedirectResponse

        session = _teacher_session(state, request)
        try:
            _same_origin(request)
            form = await _small_form(request)
            if session is None:
                token = form.get("token") or ""
                if not same_token(token.strip()[:MAX_TOKEN], state.teacher_hash):
                    raise ApiError(401, "unknown token: expected the teacher token (private/teacher_token)")
                response = RedirectResponse("/teacher", status_code=303)
                response.set_cookie(TEACHER_COOKIE, _new_teacher_session(state), max_age=TEACHER_SESSION_SECONDS,
                                    path="/teacher", httponly=True, samesite="strict")
                return response
            if not hmac.compare_digest(str(form.get("csrf") or ""), _csrf(session)):
                raise ApiError(403, "this form is stale or came from another site: reload the teacher page")
            message = await run_in_threadpool(_teacher_action, state, form)
        except ApiError as exc:
            return teacher_page(request, session, status=exc.status, error=exc.message)
        if message is None:  # signed out
            state.teacher_sessions.pop(hash_token(session), None)
            response = RedirectResponse("/teacher", status_code=303)
            response.delete_cookie(TEACHER_COOKIE, path="/teacher", httponly=True, samesite="strict")
            return response
        return teacher_page(request, session, done=message)

    return app


async def _small_form(request):
    """A URL-encoded form of a few fields (415 for anything else)."""
    if _media_type(request) != "application/x-www-form-urlencoded":
        raise ApiError(415, "expected a form (application/x-www-form-urlencoded)")
    return await _parse_small_form(request, None)


def _new_teacher_session(state):
    """A new teacher session id; only its hash is kept, with its expiry (and expired ones are dropped)."""
    import secrets
    import time

    now = time.monotonic()
    for key, expiry in list(state.teacher_sessions.items()):
        if expiry <= now:
            state.teacher_sessions.pop(key, None)
    session = secrets.token_urlsafe(32)
    state.teacher_sessions[hash_token(session)] = now + TEACHER_SESSION_SECONDS
    return session


def _teacher_session(state, request):
    """The request's live teacher session id (from its cookie), or None."""
    import time

    session = request.cookies.get(TEACHER_COOKIE, "")
    if not session or len(session) > MAX_TOKEN:
        return None
    expiry = state.teacher_sessions.get(hash_token(session))
    return session if expiry is not None and expiry > time.monotonic() else None


def _csrf(session):
    """The CSRF token of a teacher session: its forms carry it, another site cannot know it."""
    return hmac.new(session.encode("ascii", "replace"), b"kit-teacher-form", "sha256").hexdigest()


def _teacher_action(state, form):
    """Carry out one form of the teacher page; the sentence to show, or None to sign out."""
    action = form.get("action")
    if action == "signout":
        return None
    if action in ("reveal", "unreveal"):
        set_revealed(state, action == "reveal")
        return "The final ranking is revealed." if action == "reveal" else "The Private ranking is hidden again."
    if action in ("close", "open"):
        set_open(state, action == "open")
        return "Submissions are open." if action == "open" else "Submissions are closed."
    if action == "deadline":
        deadline = checked_deadline(str(form.get("deadline") or "")[:64], state.tz)
        set_deadline(state, deadline)
        return "Deadline removed." if deadline is None else f"Deadline set to {utc_iso(deadline)[:16].replace('T', ' ')} UTC."
    if action == "revoke":
        try:
            name = state.db.revoke_participant(str(form.get("name") or "")[:200], state.clock())
        except UserError as exc:
            raise ApiError(422, str(exc)) from None
        return f"Revoked {name}'s token; their submissions stay."
    raise ApiError(422, "unknown action on the teacher page")


class SecurityHeaders:
    """Pure ASGI middleware adding security headers to every response (streaming-safe)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        docs = scope.get("path", "").startswith("/docs")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"content-security-policy", b"x-frame-options")]
                headers += [
                    (b"content-security-policy", (_DOCS_CSP if docs else _CSP).encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


#: Query parameter names that would put a secret in the address (and so in logs and
#: browser history); compared in lower case, ``token`` also inside longer names.
_SECRET_PARAMETERS = ("token", "key", "apikey", "api_key", "auth", "authorization", "bearer", "password", "secret")


class NoTokenInAddress:
    """Pure ASGI middleware: a request whose address carries a token is refused with 400.

    The address is written to access logs, proxies' logs and browser history; a token
    sent there would be kept in all of them. It is refused before any route runs, so
    it is never looked up either.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and _secret_in_query(scope.get("query_string", b"")):
            body = json.dumps({"error": "a token never goes in the address (it would be kept in logs and "
                                        "history): send it in the header 'Authorization: Bearer TOKEN' or "
                                        "in the form"}).encode()
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            return await send({"type": "http.response.body", "body": body})
        return await self.app(scope, receive, send)


def _secret_in_query(query):
    """Whether a raw query string names a parameter that would hold a secret.

    Examples
    --------
    >>> _secret_in_query(b"view=projector"), _secret_in_query(b"x=1&Access%5FToken=abc"), _secret_in_query(b"key")
    (False, True, True)
    """
    from urllib.parse import parse_qsl

    names = [name.strip().lower() for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)]
    return any("token" in name or name in _SECRET_PARAMETERS for name in names)


# --- requests ------------------------------------------------------------------------


def _bearer(request):
    """The token of an ``Authorization: Bearer TOKEN`` header; 401 when there is none."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if not header.strip():
        raise ApiError(401, "missing token: expected the header 'Authorization: Bearer TOKEN'")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "malformed Authorization header: expected 'Bearer TOKEN'")
    return token.strip()


async def _participant(state, token):
    """The active participant holding ``token``; 401 otherwise."""
    from fastapi.concurrency import run_in_threadpool

    if not token:
        raise ApiError(401, "missing token: enter the token your teacher gave you")
    if len(token) > MAX_TOKEN or not token.isascii() or not token.isprintable():
        raise ApiError(401, "unknown token: check the token your teacher gave you")
    participant = await run_in_threadpool(state.db.participant_for_token, token)
    if participant is None:
        raise ApiError(401, "unknown token: check the token your teacher gave you")
    if not participant.active:
        raise ApiError(401, "this token was revoked: ask your teacher for a new one")
    return participant


async def _teacher(state, request, what):
    """Check the request's ``Authorization: Bearer`` is the teacher token: 401 when unknown, 403 for a participant's."""
    from fastapi.concurrency import run_in_threadpool

    token = _bearer(request)
    if not same_token(token[:MAX_TOKEN], state.teacher_hash):
        known = await run_in_threadpool(state.db.participant_for_token, token[:MAX_TOKEN])
        if known is not None:
            raise ApiError(403, f"{what} needs the teacher token, not a participant's")
        raise ApiError(401, "unknown token: expected the teacher token (private/teacher_token)")


def set_revealed(state, revealed):
    """Reveal the Private ranking, or hide it again; either way the competition is closed after.

    Un-revealing returns to the closed state (the Public standings): re-opening is a
    separate choice (:func:`set_open`).
    """
    state.db.reveal(revealed)
    state.exporter.request()
    return current_phase(state)


def set_open(state, wanted):
    """Close the competition, or re-open it; the new :class:`Phase`.

    Re-opening is refused with 409 while the ranking is revealed or after the deadline.
    """
    phase = current_phase(state)
    if wanted and phase.reason == "revealed":
        raise ApiError(409, "the final ranking is revealed: hide it first ({\"revealed\": false}), then re-open")
    if wanted and phase.reason == "deadline":
        raise ApiError(409, f"the deadline {utc_iso(phase.deadline)[:19]}Z (UTC) has passed: set a later deadline "
                            "first (POST /api/deadline), or remove it")
    state.db.set_settings({"closed": "0" if wanted else "1"})
    return current_phase(state)


def checked_deadline(value, tz):
    """A deadline a teacher sent (ISO 8601 text, or None/empty for none) as an aware datetime; ApiError 422 otherwise.

    Years outside 1970-9998 are refused: the store keeps fixed-width UTC text.

    Examples
    --------
    >>> checked_deadline("2026-06-30T23:59:00+02:00", timezone.utc).isoformat()
    '2026-06-30T21:59:00+00:00'
    >>> checked_deadline("1969-12-31T23:00:00Z", timezone.utc)
    Traceback (most recent call last):
    ...
    kit.server.app.ApiError: deadline '1969-12-31T23:00:00Z': expected a date between the years 1970 and 9998
    """
    if value is not None and not (str(value).isascii() and str(value).isprintable()):
        raise ApiError(422, f"deadline {_clean(value, 60)!r}: expected ISO 8601 such as 2026-06-30T23:59:00Z")
    try:
        deadline = parse_deadline(value, tz)
        if deadline is not None:
            deadline = deadline.astimezone(timezone.utc)
    except UserError as exc:
        raise ApiError(422, str(exc)) from None
    except (OverflowError, ValueError):
        deadline = datetime.min.replace(tzinfo=timezone.utc)
    if deadline is not None and not 1970 <= deadline.year <= 9998:
        raise ApiError(422, f"deadline {_clean(value, 60)!r}: expected a date between the years 1970 and 9998")
    return deadline


def set_deadline(state, deadline):
    """Set (an aware datetime) or remove (None) the deadline in the store; the new :class:`Phase`."""
    state.db.set_settings({"deadline": "" if deadline is None else utc_iso(deadline)})
    return current_phase(state)


async def _choose_finals(state, participant, ids):
    """Record a participant's final submissions; the ``POST /api/final`` answer, or ApiError 403 / 422."""
    from fastapi.concurrency import run_in_threadpool

    now = state.clock()
    await _check_open(state, now)
    try:
        chosen = await run_in_threadpool(state.db.set_finals, participant.id, ids, now, _still_open(state, now))
    except SubmissionsClosed as exc:
        raise ApiError(403, _closed_message(exc.reason)) from None
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    return {"participant": participant.name, "submissions": chosen}


async def _check_open(state, now):
    """403 when submissions are closed at ``now`` (:func:`current_phase`); the phase otherwise.

    A quick refusal before any work; :func:`_accept` checks again in the transaction that
    records the submission.
    """
    from fastapi.concurrency import run_in_threadpool

    phase = await run_in_threadpool(current_phase, state, now)
    if not phase.open:
        raise ApiError(403, _closed_message(phase))
    return phase


async def _check_allowance(state, participant, now):
    """403 when closed, 429 when the participant's day is used up; ``(day window, failed attempts)``.

    Checked before a form is read (a spent allowance costs the server no upload) and again
    when it has arrived.
    """
    from fastapi.concurrency import run_in_threadpool

    await _check_open(state, now)
    window = state.day_window(now)
    scored, failed = await run_in_threadpool(_used_today, state, participant, window)
    if state.limit is not None:
        used = failed + scored
        if used >= state.limit:
            raise ApiError(429, _limit_message(state, window))
    return window, failed


def _used_today(state, participant, window):
    """``(scored, failed)`` submissions in ``window`` of the participant's team (or their own): one allowance."""
    members = state.db.team_members(participant.id)
    return (sum(state.db.count_scored(member, *window) for member in members),
            sum(state.db.count_failed(member, *window) for member in members))


def _closed_message(phase):
    """Why submissions (and choices of final submissions) are refused, in one line."""
    if phase.reason == "revealed":
        return REVEALED_CLOSED
    if phase.reason == "closed":
        return TEACHER_CLOSED
    return f"submissions closed at the deadline, {utc_iso(phase.deadline)[:19]}Z (UTC)"


def _still_open(state, now):
    """The check :meth:`Database.add_submission` runs in its transaction: None while open at ``now``, else the phase."""
    def check(settings):
        phase = decide_phase(settings, state.deadline, now)
        return None if phase.open else phase

    return check


class _TooLarge(Exception):
    pass


@contextmanager
def _upload_slots(state):
    """The open-upload slots a request takes (a list of keys), given back when it ends."""
    held = []
    try:
        yield held
    finally:
        for key in held:
            state.uploads.release(key)


def _take_slot(state, held, key):
    """Count one more open upload under ``key`` (a participant or an address); 429 past its cap."""
    kind = key[0]
    cap = state.uploads_per_token if kind == "participant" else state.anonymous_per_address
    try:
        held.append(state.uploads.acquire(key, cap))
    except TooManyOpen:
        if kind == "participant":
            raise ApiError(429, f"too many uploads at once: at most {cap} of yours are taken at a time; "
                                "wait for one to finish") from None
        raise ApiError(429, f"too many forms at once from your network address ({cap} are waiting for "
                            "their token): try again in a moment") from None


async def _early_participant(state, request, authorize):
    """The participant of a form's ``Authorization: Bearer`` header or token cookie, or None.

    ``authorize`` (async, takes the token) checks it and returns the participant.
    """
    # Another scheme (a reverse proxy's Basic login, say) is not ours: the form's token counts then.
    if request.headers.get("authorization", "").strip().lower().startswith("bearer "):
        return await authorize(_bearer(request))
    cookie = request.cookies.get(TOKEN_COOKIE, "").strip()
    return await authorize(cookie) if cookie else None


def _client_address(request):
    return address_key(request.client.host if request.client is not None else "unknown")


async def _read_form(request, state, held, participant=None, authorize=None, cap=None):
    """``(form, participant)``: the multipart form, read under the upload limits.

    The limits: a size cap (413), a time limit (408), and a cap on the uploads open at
    once (429) per participant, or, while the form is anonymous, per client address.

    With ``participant`` (authorised by a header or cookie) the form is read as it
    comes. Without, the form is anonymous until its first field, which must be the
    token, has arrived within ``state.anonymous_timeout`` seconds and
    :data:`FORM_OVERHEAD` bytes; ``authorize`` (async, takes the token, returns the
    participant or raises ApiError) checks it before any later chunk is taken, so an
    unauthorised post is refused having sent at most one chunk of its file (kept in
    memory, never on disk), and a slow anonymous one cannot hold its connection for long.

    ``cap`` is the file's size cap in bytes (default the server's; 0 for a form without
    a file).
    """
    import anyio
    from starlette.datastructures import FormData

    cap = state.max_upload_bytes if cap is None else cap
    if participant is not None:
        _take_slot(state, held, ("participant", participant.id))
    else:
        _take_slot(state, held, ("address", _client_address(request)))
    start = anyio.current_time()
    found = [participant]

    with anyio.CancelScope(deadline=start + state.upload_timeout) as scope:
        if participant is None:
            scope.deadline = start + min(state.anonymous_timeout, state.upload_timeout)

        async def authorized(token):
            who = await authorize(token)
            address = held[-1]
            _take_slot(state, held, ("participant", who.id))
            held.remove(address)
            state.uploads.release(address)
            found[0] = who
            scope.deadline = start + state.upload_timeout

        check = None if participant is not None else authorized
        if not request.headers.get("content-type") and request.headers.get("content-length", "").strip() == "0":
            form = FormData()  # no body at all: the token can only have come from a header or cookie
            if check is not None:
                await check("")
        elif not cap and _media_type(request) == "application/x-www-form-urlencoded":
            form = await _parse_small_form(request, check)
        else:
            form = await _parse_form(request, cap, check)
    if scope.cancelled_caught:
        if found[0] is None:
            raise ApiError(408, f"form too slow: its first field, the token, did not arrive within "
                                f"{min(state.anonymous_timeout, state.upload_timeout):g} s")
        raise ApiError(408, f"upload too slow: the form did not arrive within {state.upload_timeout:g} s; "
                            "try again on a better connection")
    return form, found[0]


def _token_first_parser():
    """Starlette's multipart parser; with ``token_first``, a form whose first part is not the token is refused."""
    from starlette.formparsers import MultiPartParser

    class TokenFirstParser(MultiPartParser):
        token_first = False
        parts = 0

        def on_headers_finished(self):
            super().on_headers_finished()
            self.parts += 1
            if self.token_first and self.parts == 1:
                if self._current_part.field_name != "token":
                    raise ApiError(401, "missing token: the form's first field must be the token")
                if self._current_part.file is not None:
                    raise ApiError(422, "malformed form: the token field is a file, expected text")

    return TokenFirstParser


def _media_type(request):
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _parse_small_form(request, authorize):
    """A URL-encoded form of a few fields (a browser's form without a file), at most :data:`FORM_OVERHEAD` bytes."""
    from urllib.parse import parse_qsl

    from starlette.datastructures import FormData

    body = await _read_body(request, FORM_OVERHEAD)
    try:
        fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(422, "malformed form: expected at most 8 UTF-8 fields") from None
    form = FormData(fields)
    if authorize is not None:
        await authorize(form.get("token") or "")
    return form


async def _parse_form(request, cap, authorize):
    from starlette.formparsers import MultiPartException

    content_type = request.headers.get("content-type", "")
    if _media_type(request) != "multipart/form-data":
        raise ApiError(415, f"expected a multipart/form-data body with a 'file' field, found "
                            f"{_clean(content_type, 60) or 'no content type'}")
    limit = cap + FORM_OVERHEAD
    length = request.headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise ApiError(400, "malformed Content-Length header")
        if int(length) > limit:
            raise ApiError(413, _too_large(cap))

    pending = [authorize] if authorize is not None else []

    async def gate():
        tokens = [value for name, value in parser.items if name == "token" and isinstance(value, str)]
        if tokens:
            await pending.pop()(tokens[0])
        elif seen >= FORM_OVERHEAD:
            raise ApiError(401, f"missing token: the form's first field must be the token, within its first "
                                f"{FORM_OVERHEAD // 1024} KiB")

    async def limited():
        nonlocal seen
        chunks = request.stream().__aiter__()
        while True:
            if pending:  # what came so far is parsed: check the token before taking more
                await gate()
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
            seen += len(chunk)
            if seen > limit:
                raise _TooLarge()
            yield chunk

    seen = 0
    parser = _token_first_parser()(request.headers, limited(), max_files=1 if cap else 0, max_fields=8,
                                   max_part_size=FORM_OVERHEAD)
    parser.token_first = authorize is not None
    try:
        form = await parser.parse()
    except _TooLarge:
        raise ApiError(413, _too_large(cap)) from None
    except MultiPartException as exc:
        raise ApiError(422, f"malformed form: {_clean(exc.message, 200)}") from None
    if pending:  # the whole form came in one piece
        token = form.get("token")
        await form.close()
        await pending.pop()(token if isinstance(token, str) else "")
    return form


async def _read_body(request, cap):
    """A small request body, refused with 413 past ``cap`` bytes."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise ApiError(413, f"body too large: expected at most {cap} bytes")
    return bytes(body)


def reveal_choice(content_type, body):
    """The ``revealed`` boolean of a ``POST /api/reveal`` body; ApiError 415 or 422 otherwise.

    Only ``application/json`` (charset utf-8 at most) is taken, and only an object whose
    single key ``revealed`` is ``true`` or ``false``: a reveal publishes the Private scores
    and closes submissions, so nothing else is guessed to mean one.

    Examples
    --------
    >>> reveal_choice("application/json; charset=UTF-8", b'{"revealed": false}')
    False
    >>> reveal_choice("application/x-www-form-urlencoded", b'{"revealed": false}')
    Traceback (most recent call last):
    ...
    kit.server.app.ApiError: expected Content-Type application/json, found application/x-www-form-urlencoded
    """
    return json_field(content_type, body, "revealed", _is_bool, '{"revealed": true} or {"revealed": false}')


def _is_bool(value):
    return isinstance(value, bool)


def _is_deadline(value):
    return value is None or (isinstance(value, str) and 0 < len(value) <= 64 and value.isascii()
                             and value.isprintable())


def _is_id_list(value):
    return isinstance(value, list) and all(type(item) is int and 0 < item < 1 << 62 for item in value)


def json_field(content_type, body, key, accept, expected):
    """The value of the one key of a small JSON body; ApiError 415 or 422 otherwise.

    Only ``application/json`` (charset utf-8 at most) is taken, and only an object with
    the single key ``key`` whose value ``accept`` takes; duplicate keys, NaN and
    Infinity are refused. ``expected`` shows the object wanted, for the message.

    Examples
    --------
    >>> json_field("application/json", b'{"open": true}', "open", _is_bool, '{"open": true}')
    True
    >>> json_field("application/json", b'{"open": 1}', "open", _is_bool, '{"open": true}')
    Traceback (most recent call last):
    ...
    kit.server.app.ApiError: expected the JSON object {"open": true}, found {"open": 1}
    """
    from email.message import Message

    header = Message()
    header["content-type"] = str(content_type or "")
    params = {name.lower(): value for name, value in header.get_params(failobj=[("", "")])[1:]}
    kind = str(content_type or "").split(";")[0].strip().lower()
    charset = str(params.pop("charset", "utf-8")).strip().lower()
    if kind != "application/json" or params or charset not in ("utf-8", "utf8"):
        raise ApiError(415, f"expected Content-Type application/json, found {_clean(content_type, 80) or 'none'}")
    expected = f"expected the JSON object {expected}"

    def unique_keys(pairs):
        keys = [name for name, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate key")
        return dict(pairs)

    def no_constant(name):
        raise ValueError(f"{name} is not JSON")

    try:
        value = json.loads(body.decode("utf-8"), object_pairs_hook=unique_keys, parse_constant=no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(422, f"{expected}, found a body that is not JSON with unique keys") from None
    if not isinstance(value, dict) or set(value) != {key} or not accept(value[key]):
        raise ApiError(422, f"{expected}, found {_clean(body.decode('utf-8', 'replace'), 60)}")
    return value[key]


def _too_large(cap):
    if not cap:
        return f"form too large: at most {FORM_OVERHEAD // 1024} KiB is accepted"
    return f"file too large: at most {cap / (1 << 20):g} MB is accepted (a submission is one short line per test pair)"


async def _accept(state, participant, upload, description):
    """Score an upload and record it; the 201 body, or an :class:`ApiError`."""
    import anyio.to_thread
    from fastapi.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile

    if not isinstance(upload, UploadFile):
        raise ApiError(422, "expected the submission file in the multipart field 'file'")
    if description is not None and not isinstance(description, str):
        raise ApiError(422, "expected 'description' to be text, found a file")
    # The upload's time is when its body had arrived; the same time is checked against the
    # deadline and recorded, in the transaction that inserts it (below).
    now = state.clock()
    window, failed = await _check_allowance(state, participant, now)
    name = _file_name(upload.filename)
    attempt = {"participant_id": participant.id, "attempted_at": now, "sha256": "", "file_name": name, "size": 0}
    try:
        staged, attempt["sha256"], attempt["size"] = await run_in_threadpool(_stage, state, upload)
    except ApiError:
        raise
    except Exception as exc:  # noqa: BLE001 - the server's failure (a full disk, say), as in scoring
        await _count_failure(state, attempt, exc)
    try:
        try:
            # At most a few files are scored at once: each holds its file and arrays in
            # memory, and on a small machine more threads only share the same cores.
            result = await anyio.to_thread.run_sync(state.scorer.score, staged, limiter=state.scoring_slots)
        except UserError as exc:
            raise ApiError(422, _clean(str(exc).replace(str(staged), name), 1000)) from None
        except Exception as exc:  # noqa: BLE001 - the server's failure: counted, logged, one line to the sender
            await _count_failure(state, attempt, exc)
        if not all(math.isfinite(v) for v in (result.public, result.private) if v is not None):
            raise ApiError(422, f"{name}: the score is not a finite number: expected similarities the metric can use")
        # Shielded from the request's time limit: a submission is recorded and counted
        # whole, or not at all.
        with anyio.CancelScope(shield=True):
            submission_id, remaining = await _store(state, participant, staged, attempt, result, description,
                                                    window, failed)
    finally:
        staged.unlink(missing_ok=True)
    state.exporter.request()
    # The teacher's terminal: one line per scored submission (uvicorn's logger, at its level).
    terminal = logging.getLogger("uvicorn.error")
    terminal.info("scored #%d by %s: Public %s", submission_id, _clean(participant.name, 80),
                  f"{shown_scores(result.public):.{SHOWN_DECIMALS}f}")
    warnings = [_clean(w, 300) for w in result.warnings]
    identical = await run_in_threadpool(_identical, state, participant, submission_id, attempt)
    if identical is not None:
        # The teacher's terminal names both; the sender is told without naming a classmate.
        terminal.warning("#%d: %s", submission_id, identical)
        warnings.append(IDENTICAL_TO_SENDER)
    return {
        "id": submission_id,
        "participant": participant.name,
        "public": shown_scores(result.public),
        "submitted_at": utc_iso(now),
        "remaining_today": remaining,
        "daily_limit": state.limit,
        "sha256": attempt["sha256"],
        "file": name,
        "rows": result.rows,
        "warnings": warnings,
    }


#: What the sender of a file identical to another participant's earlier one is told.
IDENTICAL_TO_SENDER = "this file is identical to one another participant submitted earlier; your teacher is told"


def _identical(state, participant, submission_id, attempt):
    """The note (:func:`kit.board.inbox.identical_note`) when another participant sent these bytes first, else None.

    Teammates share their files freely; an earlier file of the store's other writers (the
    inbox, ``kit score``) counts too. Noting is best effort: the submission is stored already.
    """
    try:
        team = set(state.db.team_members(participant.id))
        rows = state.db.submissions(status=SCORED, sha256=attempt["sha256"])
        ours = next(row for row in rows if row["id"] == submission_id)
        earlier = [row for row in rows if row["participant_id"] not in team
                   and (row["submitted_at"], row["id"]) < (ours["submitted_at"], ours["id"])]
    except Exception:  # noqa: BLE001 - a failed look-up must not turn a stored submission into an error
        log.exception("could not look for identical submissions")
        return None
    if not earlier:
        return None
    first = earlier[0]
    return _clean(identical_note(attempt["file_name"], participant.name, first["participant"],
                                 together=first["submitted_at"] == ours["submitted_at"]), 300)


async def _count_failure(state, attempt, exc):
    """Record a failed attempt (it counts against the day's limit), log it, and raise the 500.

    The file is not kept: a file that breaks the scorer is the sender's to fix, and what
    failed is in the log and in ``failed_attempts`` for the teacher.
    """
    from fastapi.concurrency import run_in_threadpool

    log.error("internal error while scoring %s from participant %s", attempt["file_name"], attempt["participant_id"],
              exc_info=exc)
    with_error = dict(attempt, error=_clean(f"{type(exc).__name__}: {exc}", 500))
    try:
        await run_in_threadpool(state.db.add_failed_attempt, with_error)
    except Exception:  # noqa: BLE001 - the database failing too: the 500 still goes out
        log.exception("could not record the failed attempt")
    raise ApiError(500, INTERNAL_FAILURE)


async def _store(state, participant, staged, attempt, result, description, window, failed):
    """Keep a scored upload and record it; ``(submission id, submissions left today)``.

    ``failed`` attempts of the day count against the limit too. A failure of the server
    here is recorded as a failed attempt, and the stored file removed unless another
    submission holds it.
    """
    from fastapi.concurrency import run_in_threadpool

    limit = None if state.limit is None else state.limit - failed
    stored = None
    try:
        stored = await run_in_threadpool(_keep, state, staged, attempt["sha256"])
        record = _record(participant, attempt, stored, result, description)
        submission_id = await run_in_threadpool(state.db.add_submission, record, limit, window, None, False,
                                                _still_open(state, attempt["attempted_at"]))
    except (LimitReached, SubmissionsClosed) as exc:
        await run_in_threadpool(_unkeep, state, stored)
        if isinstance(exc, LimitReached):
            raise ApiError(429, _limit_message(state, window)) from None
        raise ApiError(403, _closed_message(exc.reason)) from None
    except Exception as exc:  # noqa: BLE001 - the server's failure, as in scoring
        await run_in_threadpool(_unkeep, state, stored)
        await _count_failure(state, attempt, exc)
    remaining = None
    if limit is not None:
        remaining = max(0, limit - (await run_in_threadpool(_used_today, state, participant, window))[0])
    return submission_id, remaining


def _unkeep(state, stored):
    """Remove a stored file that no recorded submission holds (best effort)."""
    if stored is None or any(row["stored_path"] == stored for row in state.db.submissions()):
        return
    try:
        (state.private_dir / stored).unlink(missing_ok=True)
    except OSError:
        pass


def _record(participant, attempt, stored, result, description):
    import json

    from kit.board.logfile import per_bin_for_log

    private = result.details.get("Private")
    return {
        "participant_id": participant.id,
        "submitted_at": attempt["attempted_at"],
        "sha256": attempt["sha256"],
        "stored_path": stored,
        "file_name": attempt["file_name"],
        "size": attempt["size"],
        "rows": result.rows,
        "public": result.public,
        "private": result.private,
        "per_bin_public": json.dumps(per_bin_for_log(result.details["Public"]), separators=(",", ":")),
        "per_bin_private": json.dumps(per_bin_for_log(private), separators=(",", ":")),
        "status": SCORED,
        "error": None,
        "description": _clean(description or "", MAX_DESCRIPTION),
    }


def _limit_message(state, window):
    start = window[0].astimezone(state.tz)
    zone = "UTC" if state.tz is timezone.utc else str(state.tz)
    return (f"daily limit reached: {state.limit} scored submission(s) per day; the next day starts at "
            f"{(window[1].astimezone(state.tz)).strftime('%Y-%m-%d %H:%M')} {zone} (today began "
            f"{start.strftime('%Y-%m-%d %H:%M')})")


def _stage(state, upload):
    """Copy an upload to a private temporary file, hashing it; ``(path, sha256, size)``."""
    import hashlib

    incoming = state.private_dir / SUBMISSIONS_FOLDER / ".incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    path = incoming / f"{uuid.uuid4().hex}.upload"
    digest, size = hashlib.sha256(), 0
    source = upload.file
    source.seek(0)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            for block in iter(lambda: source.read(1 << 20), b""):
                size += len(block)
                if size > state.max_upload_bytes:
                    raise ApiError(413, _too_large(state.max_upload_bytes))
                digest.update(block)
                handle.write(block)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest(), size


def _keep(state, staged, digest):
    """Store a staged upload as ``private/submissions/<sha256>.csv``; the path relative to private/.

    Named by content, never by what the client called it; the same file twice is stored once.
    """
    relative = f"{SUBMISSIONS_FOLDER}/{digest}.csv"
    with open(staged, "rb") as handle:
        os.fsync(handle.fileno())  # on disk before the database says it is
    os.replace(staged, state.private_dir / relative)
    folder = os.open(state.private_dir / SUBMISSIONS_FOLDER, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename too, so that a power cut cannot lose the file behind a committed row
    finally:
        os.close(folder)
    return relative


def _history(state, participant):
    """The ``GET /api/me`` object: submissions and failed attempts in order of arrival, scores as shown.

    Each scored submission says whether it is one of the participant's final ones (``final``).
    A team member sees the team's submissions (``by`` names the member who sent each).
    """
    now = state.clock()
    phase = current_phase(state, now)
    revealed = phase.state == REVEALED
    finals = {number for ids in state.db.finals(participant.id).values() for number in ids}
    members = state.db.team_members(participant.id)
    failure = "could not be scored (an internal error; your teacher can see it)"
    rows = []
    mine = [row for member in members for row in state.db.submissions(participant_id=member)]
    for row in mine:
        item = {key: row[key] for key in ("id", "submitted_at", "file_name", "sha256", "description", "status",
                                          "public", "rows")}
        item["file"] = item.pop("file_name")
        item["by"] = row["participant"]
        item["final"] = row["id"] in finals
        if row["status"] != SCORED:
            item["error"] = failure
        if revealed:
            item["private"] = row["private"]
        rows.append(item)
    for row in (row for member in members for row in state.db.failed_attempts(participant_id=member)):
        rows.append({"id": None, "submitted_at": row["attempted_at"], "file": row["file_name"], "sha256": row["sha256"],
                     "description": "", "status": "error", "public": None, "rows": None, "error": failure, "final": False,
                     "by": row["participant"], **({"private": None} if revealed else {})})
    rows.sort(key=lambda item: item["submitted_at"])
    remaining = None
    if state.limit is not None:
        remaining = max(0, state.limit - sum(_used_today(state, participant, state.day_window(now))))
    return {"participant": participant.name, "team": state.db.teams().get(participant.name),
            "revealed": revealed, "state": phase.state,
            "remaining_today": remaining, "finals": sorted(finals), "submissions": shown_scores(rows)}


def _standings(state):
    """``(standings, latest submission time per participant)`` from the database, kept per version."""
    from kit.board.standings import latest_times, standings

    version = _board_version(state)
    cached = state.standings
    if cached is None or cached[0] != version:
        current = shown_standings(standings(state.db, state.competition, state.scorer.metric))
        cached = state.standings = (version, current, latest_times(current.log))
    return cached[1], cached[2]


def _board_version(state):
    """What the standings depend on: the store's version and, once revealed, the chosen final submissions."""
    version = state.db.version()
    return (version, tuple(sorted(state.db.finals().items()))) if state.db.revealed else (version, ())


def shown_standings(current):
    """Standings as a participant sees them: every score rounded to ``SHOWN_DECIMALS``, ranked on those.

    What the API, the pages and the plots are made from, so that no digit past the
    shown ones reaches a participant, and two scores that look the same rank by time.
    """
    from kit.board.standings import rank_standings

    shown = current.log.copy()
    for column in ("public", "private", "validation"):
        shown[column] = shown[column].round(SHOWN_DECIMALS)
    for column in ("per_bin_public", "per_bin_private"):
        shown[column] = shown[column].map(shown_scores)
    return replace(current, log=shown, ranking=rank_standings(shown, current.metric, private=current.private))


def _plot_images(state):
    """``{"history": png bytes, "bins": png bytes}`` for the live page, drawn once per leaderboard version."""
    import base64

    from kit.board import pages

    version = _board_version(state)
    if state.plots.get("version") != version:
        with _PLOT_LOCK:  # many pages asking at once: one draws, the others find it drawn
            if state.plots.get("version") != version:
                current, _ = _standings(state)
                images = {}
                if len(current.ranking):
                    drawn = pages.plot_images(current)
                    images = {key: base64.b64decode(png) for key, (_, _, png) in zip(("history", "bins"), drawn)}
                state.plots = {"version": version, "images": images}
    return state.plots["images"]


def _table(current):
    """``(titles, rows)`` of the live page's table; once revealed, with what each row was ranked on."""
    from kit.board import pages

    titles, rows = pages.table(current)
    if current.private:
        titles = [*titles, "ranked on"]
        rows = [[*row, basis] for row, basis in zip(rows, current.ranking["basis"])]
    return titles, rows


def _headings(current, phase):
    """``(title, subtitle)`` of the live page in the competition's :class:`Phase`."""
    from kit.board import pages

    title, subtitle, _ = pages.headings(current)
    if current.private:
        subtitle = (f"{current.metric.describe()}; final standings on the Private rows: each participant's best "
                    f"chosen final submission, else their best Public one; ties go to the earlier submission")
    elif phase.state == CLOSED:
        subtitle += "; submissions are closed"
    return title, subtitle


def _same_origin(request):
    """403 when a browser says the form came from another site.

    ``Sec-Fetch-Site`` decides where the browser sends it; else ``Origin`` must name this
    host (a browser under this site's ``Referrer-Policy: no-referrer`` sends ``Origin: null``
    with its own forms, and ``Sec-Fetch-Site`` with them too).
    """
    from urllib.parse import urlsplit

    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site.strip().lower() not in ("same-origin", "none"):
            raise ApiError(403, "this form must be sent from this site's own page")
        return
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise ApiError(403, "this form must be sent from this site's own page")


def _version_tag(current, phase):
    """What the live page compares with each poll's answer (live.js builds the same from it)."""
    return f"{len(current.log)}-{int(current.private)}-{phase.state}"


def _info(state, phase=None):
    metric = state.scorer.metric
    phase = phase or current_phase(state)
    return {
        "competition": state.competition.name,
        "metric": metric.name,
        "direction": metric.direction,
        "decimals": min(metric.decimals, SHOWN_DECIMALS),
        "rows": state.scorer.expected_rows,
        "max_daily_submissions": state.limit,
        "timezone": "UTC" if state.tz is timezone.utc else str(state.tz),
        "deadline": None if phase.deadline is None else utc_iso(phase.deadline),
        "max_upload_bytes": state.max_upload_bytes,
        "state": phase.state,
        "max_final_submissions": MAX_FINALS,
    }


def _file_name(name):
    """The uploaded file's name for display: its last path part, printable, short."""
    base = str(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    return _clean(base, MAX_FILE_NAME) or "submission.csv"


def _clean(text, limit):
    """One line of printable text, at most ``limit`` characters (as the log keeps its text cells)."""
    from kit.safetext import one_line

    return one_line(text, limit)


def _templates():
    import jinja2
    from starlette.templating import Jinja2Templates

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    return Jinja2Templates(env=env)


def _version():
    from kit._version import __version__

    return __version__

