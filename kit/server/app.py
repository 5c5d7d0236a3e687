"""The classroom submission site: a FastAPI app over one competition and its database.

``create_app(competition)`` returns the ASGI app that ``kit serve`` runs on uvicorn.

Trust: everything a request carries is hostile. Tokens are looked up by their hash;
uploads are streamed to a private temporary file under a size cap (refused with 413 as
soon as the cap is passed, before the rest is read), stored under the file's sha256 and
never under the name the client sent; the scorer runs in a worker thread; every page is a
Jinja2 template with autoescaping and a Content-Security-Policy that allows no inline
script. Times are the server's clock in UTC; the daily limit counts days in the server's
time zone (UTC unless ``--timezone``).
"""
import logging
import math
import os
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from datetime import time as day_time
from pathlib import Path
from typing import Callable

from kit.errors import UserError
from kit.server.db import (DB_NAME, ERROR, SCORED, SUBMISSIONS_FOLDER, Database, LimitReached, SubmissionsClosed,
                           ensure_teacher_token, hash_token, same_token, utc_iso)
from kit.server.limits import DEFAULT_REQUEST_TIMEOUT, RequestTimeLimit

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
               request_timeout=DEFAULT_REQUEST_TIMEOUT):
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
    from starlette.formparsers import MultiPartException

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
    # Added first, so it runs inside SecurityHeaders: its 408 carries the headers too.
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
                   429: {"description": "daily limit reached (server-time day)"}},
    )
    async def post_submission(request: Request):
        participant = await _participant(state, _bearer(request))
        await _check_open(state, state.clock())
        form = await _read_form(request, state)
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

    @app.post("/api/reveal", summary="Teacher: rank on the Private scores and close submissions "
              "(JSON {\"revealed\": false} hides them again and re-opens submissions until the deadline)")
    async def post_reveal(request: Request):
        token = _bearer(request)
        if not same_token(token[:MAX_TOKEN], state.teacher_hash):
            known = await run_in_threadpool(state.db.participant_for_token, token[:MAX_TOKEN])
            if known is not None:
                raise ApiError(403, "revealing the Private ranking needs the teacher token, not a participant's")
            raise ApiError(401, "unknown token: expected the teacher token (private/teacher_token)")
        revealed = True
        if request.headers.get("content-type", "").lower().startswith("application/json"):
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("revealed", True), bool):
                raise ApiError(422, 'expected no body, or the JSON object {"revealed": true} or {"revealed": false}')
            revealed = body.get("revealed", True)
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
                    revealed=current.private, entries=len(current.log), decimals=metric.decimals,
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
        form, holder = None, []

        async def authorize(token):
            holder.append(await _participant(state, token.strip()))
            await _check_open(state, state.clock())

        try:
            # The token is checked as soon as its field has arrived, before the file's bytes
            # are taken: an anonymous post cannot make the server store a large file.
            form = await _read_form(request, state, authorize=authorize)
            if not holder:
                await authorize(str(form.get("token") or ""))
            result = await _accept(state, holder[0], form.get("file"), form.get("description"))
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
        try:
            try:
                form = await request.form(max_files=0, max_fields=4, max_part_size=4096)
            except (StarletteHTTPException, MultiPartException):
                raise ApiError(422, "expected a form with a token field") from None
            participant = await _participant(state, str(form.get("token") or "").strip())
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


def _closed_message(state, reason):
    if reason == "revealed":
        return REVEALED_CLOSED
    return f"submissions closed at the deadline, {utc_iso(state.deadline)[:19]}Z (UTC)"


class _TooLarge(Exception):
    pass


def _token_first_parser():
    """Starlette's multipart parser, noting when the first file part begins."""
    from starlette.formparsers import MultiPartParser

    class TokenFirstParser(MultiPartParser):
        file_started = False

        def on_headers_finished(self):
            super().on_headers_finished()
            if self._current_part.file is not None:
                self.file_started = True

    return TokenFirstParser


async def _read_form(request, state, authorize=None):
    """The multipart form, read under a size cap (413) and a time limit (408).

    With ``authorize`` (an async callable taking the ``token`` field, raising ApiError),
    the token is checked before any chunk after the one where it, or the file, appeared:
    the form must put the token field before the file, and an unauthorised post is
    refused having sent at most one chunk of its file (kept in memory, never on disk).
    """
    import anyio

    try:
        with anyio.fail_after(state.upload_timeout):
            return await _parse_form(request, state.max_upload_bytes, authorize)
    except TimeoutError:
        raise ApiError(408, f"upload too slow: the form did not arrive within {state.upload_timeout:g} s; "
                            "try again on a better connection") from None


async def _parse_form(request, cap, authorize):
    from starlette.formparsers import MultiPartException

    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
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
        fields = {name: value for name, value in parser.items if isinstance(value, str)}
        if "token" in fields:
            await pending.pop()(fields["token"])
        elif parser.file_started or seen > FORM_OVERHEAD:
            raise ApiError(401, "missing token: the form's token field must come before its file")

    async def limited():
        nonlocal seen
        async for chunk in request.stream():
            if pending:
                await gate()
            seen += len(chunk)
            if seen > limit:
                raise _TooLarge()
            yield chunk

    seen = 0
    parser = _token_first_parser()(request.headers, limited(), max_files=1, max_fields=8,
                                   max_part_size=FORM_OVERHEAD)
    try:
        return await parser.parse()
    except _TooLarge:
        raise ApiError(413, _too_large(cap)) from None
    except MultiPartException as exc:
        raise ApiError(422, f"malformed form: {_clean(exc.message, 200)}") from None


def _too_large(cap):
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
    await _check_open(state, now)
    window = state.day_window(now)
    if state.limit is not None:
        used = await run_in_threadpool(state.db.count_scored, participant.id, *window)
        if used >= state.limit:
            raise ApiError(429, _limit_message(state, window))
    name = _file_name(upload.filename)
    staged, digest, size = await run_in_threadpool(_stage, state, upload)
    try:
        try:
            # At most a few files are scored at once: each holds its file and arrays in
            # memory, and on a small machine more threads only share the same cores.
            result = await anyio.to_thread.run_sync(state.scorer.score, staged, limiter=state.scoring_slots)
        except UserError as exc:
            raise ApiError(422, _clean(str(exc).replace(str(staged), name), 1000)) from None
        except Exception as exc:  # noqa: BLE001 - recorded for the teacher, then reported as ours
            stored = await run_in_threadpool(_keep, state, staged, digest)
            await run_in_threadpool(state.db.add_submission, {
                "participant_id": participant.id, "submitted_at": now, "sha256": digest, "stored_path": stored,
                "file_name": name, "size": size, "status": ERROR, "error": _clean(repr(exc), 500),
                "description": _clean(description or "", MAX_DESCRIPTION)})
            raise
        if not all(math.isfinite(v) for v in (result.public, result.private) if v is not None):
            raise ApiError(422, f"{name}: the score is not a finite number: expected similarities the metric can use")
        # Shielded from the request's time limit: a submission is recorded and counted
        # whole, or not at all.
        with anyio.CancelScope(shield=True):
            stored = await run_in_threadpool(_keep, state, staged, digest)
            record = _record(participant, now, digest, stored, name, size, result, description)
            try:
                submission_id = await run_in_threadpool(state.db.add_submission, record, state.limit, window,
                                                        state.deadline, True)
            except LimitReached:
                raise ApiError(429, _limit_message(state, window)) from None
            except SubmissionsClosed as exc:
                raise ApiError(403, _closed_message(state, exc.reason)) from None
            remaining = None
            if state.limit is not None:
                remaining = max(0, state.limit - await run_in_threadpool(state.db.count_scored, participant.id,
                                                                         *window))
    finally:
        staged.unlink(missing_ok=True)
    state.exporter.request()
    return {
        "id": submission_id,
        "participant": participant.name,
        "public": result.public,
        "submitted_at": utc_iso(now),
        "remaining_today": remaining,
        "sha256": digest,
        "file": name,
        "rows": result.rows,
        "warnings": [_clean(w, 300) for w in result.warnings],
    }


def _record(participant, now, digest, stored, name, size, result, description):
    import json

    from kit.leaderboard import per_bin_for_log

    private = result.details.get("Private")
    return {
        "participant_id": participant.id,
        "submitted_at": now,
        "sha256": digest,
        "stored_path": stored,
        "file_name": name,
        "size": size,
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
    """The ``GET /api/me`` object."""
    revealed = state.db.revealed
    now = state.clock()
    rows = []
    for row in state.db.submissions(participant_id=participant.id):
        item = {key: row[key] for key in ("id", "submitted_at", "file_name", "sha256", "description", "status",
                                          "public", "rows")}
        item["file"] = item.pop("file_name")
        if row["status"] != SCORED:
            item["error"] = "could not be scored (an internal error; your teacher can see it)"
        if revealed:
            item["private"] = row["private"]
        rows.append(item)
    remaining = None
    if state.limit is not None:
        remaining = max(0, state.limit - state.db.count_scored(participant.id, *state.day_window(now)))
    return {"participant": participant.name, "revealed": revealed, "remaining_today": remaining,
            "submissions": rows}


def _standings(state):
    """``(standings, latest submission time per participant)`` from the database, kept per version."""
    from kit.server.standings import latest_times, standings

    version = state.db.version()
    cached = state.standings
    if cached is None or cached[0] != version:
        current = standings(state.db, state.competition, state.scorer.metric)
        cached = state.standings = (version, current, latest_times(current.log))
    return cached[1], cached[2]


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
        "decimals": metric.decimals,
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

