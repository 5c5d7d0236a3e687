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
score a participant sees is rounded to :data:`kit.metrics.SHOWN_DECIMALS` and ranked as
shown; the database keeps every digit.
"""
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

from kit.errors import UserError
from kit.metrics import SHOWN_DECIMALS, shown_scores
from kit.server.db import (DB_NAME, SCORED, SUBMISSIONS_FOLDER, Database, LimitReached, SubmissionsClosed,
                           ensure_teacher_token, hash_token, same_token, utc_iso)
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
#: What a refused upload is told once the Private ranking is revealed.
REVEALED_CLOSED = "the final ranking is revealed; submissions are closed"
#: Cookie a browser may carry the participant token in (read, never set, by the server).
TOKEN_COOKIE = "kit_token"
#: Largest body of ``POST /api/reveal``: a JSON object of one key.
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

    @property
    def private_dir(self):
        return self.competition.path / "private"

    def day_window(self, now):
        """``(start, end)`` of the server-time day holding ``now``, as aware UTC datetimes."""
        local = now.astimezone(self.tz)
        start = datetime.combine(local.date(), day_time(0), tzinfo=self.tz)
        end = datetime.combine(local.date() + timedelta(days=1), day_time(0), tzinfo=self.tz)
        return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def parse_deadline(value, tz):
    """A deadline (ISO 8601; a time without zone is in ``tz``) as an aware datetime, or None.

    Examples
    --------
    >>> parse_deadline("2026-06-30T23:59:00Z", timezone.utc).isoformat()
    '2026-06-30T23:59:00+00:00'
    """
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise UserError(
                f"deadline {str(value)[:60]!r} is not a date: expected ISO 8601 such as 2026-06-30T23:59:00Z"
            ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


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
    from kit.classroom import daily_limit
    from kit.leaderboard import open_store
    from kit.scoring import Scorer
    from kit.server.standings import Exporter, export

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
        from kit.server.standings import leaderboard_json

        return leaderboard_json(current, latest)

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
        token = _bearer(request)
        if not same_token(token[:MAX_TOKEN], state.teacher_hash):
            known = await run_in_threadpool(state.db.participant_for_token, token[:MAX_TOKEN])
            if known is not None:
                raise ApiError(403, "revealing the Private ranking needs the teacher token, not a participant's")
            raise ApiError(401, "unknown token: expected the teacher token (private/teacher_token)")
        revealed = reveal_choice(request.headers.get("content-type"), await _read_body(request, MAX_REVEAL_BODY))
        await run_in_threadpool(state.db.set_revealed, revealed)
        state.exporter.request()
        return {"revealed": revealed}

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
        from kit import leaderboard_pages as pages

        titles, rows = pages.table(current)
        title, subtitle, _ = pages.headings(current)
        return page(request, "leaderboard.html", title=title, subtitle=subtitle, titles=titles, rows=rows,
                    revealed=current.private, entries=len(current.log),
                    decimals=min(metric.decimals, SHOWN_DECIMALS),
                    refresh_ms=state.refresh_ms, version=_version_tag(current))

    @app.get("/style.css", include_in_schema=False)
    async def stylesheet():
        from kit import leaderboard_pages as pages

        return Response(pages.STYLESHEET, media_type="text/css")

    @app.get("/plots/{name}.png", include_in_schema=False)
    async def plot(name: str):
        images = await run_in_threadpool(_plot_images, state)
        if name not in images:
            raise ApiError(404, "no such plot")
        return Response(images[name], media_type="image/png", headers={"Cache-Control": "no-cache"})

    @app.get("/submit", include_in_schema=False)
    async def submit_form(request: Request):
        return page(request, "submit.html")

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
            history = await run_in_threadpool(_history, state, participant)
        except ApiError as exc:
            return page(request, "me.html", status=exc.status, error=exc.message)
        for row in history["submissions"]:
            row["public_text"] = metric.format(row["public"])
            row["private_text"] = metric.format(row.get("private"))
        return page(request, "me.html", history=history)

    return app


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


async def _check_open(state, now):
    """403 when submissions are closed at ``now``: past the deadline, or the Private ranking revealed.

    A quick refusal before any work; :func:`_accept` checks again in the transaction that
    records the submission.
    """
    from fastapi.concurrency import run_in_threadpool

    if state.deadline is not None and now >= state.deadline:
        raise ApiError(403, _closed_message(state, "deadline"))
    if await run_in_threadpool(lambda: state.db.revealed):
        raise ApiError(403, _closed_message(state, "revealed"))


async def _check_allowance(state, participant, now):
    """403 when closed, 429 when the participant's day is used up; ``(day window, failed attempts)``.

    Checked before a form is read (a spent allowance costs the server no upload) and again
    when it has arrived.
    """
    from fastapi.concurrency import run_in_threadpool

    await _check_open(state, now)
    window = state.day_window(now)
    failed = await run_in_threadpool(state.db.count_failed, participant.id, *window)
    if state.limit is not None:
        used = failed + await run_in_threadpool(state.db.count_scored, participant.id, *window)
        if used >= state.limit:
            raise ApiError(429, _limit_message(state, window))
    return window, failed


def _closed_message(state, reason):
    if reason == "revealed":
        return REVEALED_CLOSED
    return f"submissions closed at the deadline, {utc_iso(state.deadline)[:19]}Z (UTC)"


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
    from email.message import Message

    header = Message()
    header["content-type"] = str(content_type or "")
    params = {key.lower(): value for key, value in header.get_params(failobj=[("", "")])[1:]}
    kind = str(content_type or "").split(";")[0].strip().lower()
    charset = str(params.pop("charset", "utf-8")).strip().lower()
    if kind != "application/json" or params or charset not in ("utf-8", "utf8"):
        raise ApiError(415, f"expected Content-Type application/json, found {_clean(content_type, 80) or 'none'}")
    expected = 'expected the JSON object {"revealed": true} or {"revealed": false}'

    def unique_keys(pairs):
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate key")
        return dict(pairs)

    def no_constant(name):
        raise ValueError(f"{name} is not JSON")

    try:
        value = json.loads(body.decode("utf-8"), object_pairs_hook=unique_keys, parse_constant=no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(422, f"{expected}, found a body that is not JSON with unique keys") from None
    if not isinstance(value, dict) or set(value) != {"revealed"} or not isinstance(value["revealed"], bool):
        raise ApiError(422, f"{expected}, found {_clean(body.decode('utf-8', 'replace'), 60)}")
    return value["revealed"]


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
    return {
        "id": submission_id,
        "participant": participant.name,
        "public": shown_scores(result.public),
        "submitted_at": utc_iso(now),
        "remaining_today": remaining,
        "sha256": attempt["sha256"],
        "file": name,
        "rows": result.rows,
        "warnings": [_clean(w, 300) for w in result.warnings],
    }


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
        submission_id = await run_in_threadpool(state.db.add_submission, record, limit, window, state.deadline, True)
    except (LimitReached, SubmissionsClosed) as exc:
        await run_in_threadpool(_unkeep, state, stored)
        if isinstance(exc, LimitReached):
            raise ApiError(429, _limit_message(state, window)) from None
        raise ApiError(403, _closed_message(state, exc.reason)) from None
    except Exception as exc:  # noqa: BLE001 - the server's failure, as in scoring
        await run_in_threadpool(_unkeep, state, stored)
        await _count_failure(state, attempt, exc)
    remaining = None
    if limit is not None:
        remaining = max(0, limit - await run_in_threadpool(state.db.count_scored, participant.id, *window))
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

    from kit.leaderboard import per_bin_for_log

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
    """The ``GET /api/me`` object: submissions and failed attempts in order of arrival, scores as shown."""
    revealed = state.db.revealed
    now = state.clock()
    failure = "could not be scored (an internal error; your teacher can see it)"
    rows = []
    for row in state.db.submissions(participant_id=participant.id):
        item = {key: row[key] for key in ("id", "submitted_at", "file_name", "sha256", "description", "status",
                                          "public", "rows")}
        item["file"] = item.pop("file_name")
        if row["status"] != SCORED:
            item["error"] = failure
        if revealed:
            item["private"] = row["private"]
        rows.append(item)
    for row in state.db.failed_attempts(participant_id=participant.id):
        rows.append({"id": None, "submitted_at": row["attempted_at"], "file": row["file_name"], "sha256": row["sha256"],
                     "description": "", "status": "error", "public": None, "rows": None, "error": failure,
                     **({"private": None} if revealed else {})})
    rows.sort(key=lambda item: item["submitted_at"])
    remaining = None
    if state.limit is not None:
        window = state.day_window(now)
        used = state.db.count_scored(participant.id, *window) + state.db.count_failed(participant.id, *window)
        remaining = max(0, state.limit - used)
    return {"participant": participant.name, "revealed": revealed, "remaining_today": remaining,
            "submissions": shown_scores(rows)}


def _standings(state):
    """``(standings, latest submission time per participant)`` from the database, kept per version."""
    from kit.server.standings import latest_times, standings

    version = state.db.version()
    cached = state.standings
    if cached is None or cached[0] != version:
        current = shown_standings(standings(state.db, state.competition, state.scorer.metric))
        cached = state.standings = (version, current, latest_times(current.log))
    return cached[1], cached[2]


def shown_standings(current):
    """Standings as a participant sees them: every score rounded to ``SHOWN_DECIMALS``, ranked on those.

    What the API, the pages and the plots are made from, so that no digit past the
    shown ones reaches a participant, and two scores that look the same rank by time.
    """
    from kit.leaderboard import rank

    shown = current.log.copy()
    for column in ("public", "private", "validation"):
        shown[column] = shown[column].round(SHOWN_DECIMALS)
    for column in ("per_bin_public", "per_bin_private"):
        shown[column] = shown[column].map(shown_scores)
    return replace(current, log=shown, ranking=rank(shown, current.metric, private=current.private))


def _plot_images(state):
    """``{"history": png bytes, "bins": png bytes}`` for the live page, drawn once per leaderboard version."""
    import base64

    from kit import leaderboard_pages as pages

    version = state.db.version()
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


def _version_tag(current):
    return f"{len(current.log)}-{int(current.private)}"


def _info(state):
    metric = state.scorer.metric
    return {
        "competition": state.competition.name,
        "metric": metric.name,
        "direction": metric.direction,
        "decimals": min(metric.decimals, SHOWN_DECIMALS),
        "rows": state.scorer.expected_rows,
        "max_daily_submissions": state.limit,
        "timezone": "UTC" if state.tz is timezone.utc else str(state.tz),
        "deadline": None if state.deadline is None else utc_iso(state.deadline),
        "max_upload_bytes": state.max_upload_bytes,
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

