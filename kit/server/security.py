"""Who may do what: tokens, the teacher's sessions, and the headers and checks every request gets.

Participants and the teacher authenticate with ``Authorization: Bearer TOKEN``
(:data:`bearer`, FastAPI's :class:`~fastapi.security.HTTPBearer`); the route dependencies
:func:`participant` and :func:`teacher` answer 401 for a missing or unknown token (the
scheme is built with ``auto_error=False``: some FastAPI versions would answer 403), and the
teacher's routes 403 for a participant's. Tokens are looked up by their hash, never in
the address (:class:`NoTokenInAddress`).
"""
import hmac
import json
import logging
import secrets
import time
from urllib.parse import parse_qsl, urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kit.board.store import hash_token
from kit.board.tokens import same_token
from kit.server.state import ServerState, get_state

#: Longest bearer token looked at (real ones have 32 characters).
MAX_TOKEN = 256


#: Cookie a browser may carry the participant token in (read, never set, by the server).
TOKEN_COOKIE = "kit_token"


#: Cookie holding the teacher's session on the /teacher page (set HttpOnly, SameSite=Strict).
TEACHER_COOKIE = "kit_teacher"


#: Seconds a teacher session lasts.
TEACHER_SESSION_SECONDS = 12 * 3600


_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")


# /docs serves Swagger UI from the installed swagger-ui-py package (a classroom network may
# have no internet); FastAPI's page starts it with an inline script.
_DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self' 'unsafe-inline'; "
             "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


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
    names = [name.strip().lower() for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)]
    return any("token" in name or name in _SECRET_PARAMETERS for name in names)


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


#: The ``Authorization: Bearer`` scheme, as /docs shows it; a missing or odd header is left to :func:`token`.
bearer = HTTPBearer(auto_error=False, description="your participant token, or the teacher token")


def bearer_token(request):
    """The token of an ``Authorization: Bearer TOKEN`` header; 401 when there is none."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if not header.strip():
        raise HTTPException(401, "missing token: expected the header 'Authorization: Bearer TOKEN'")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "malformed Authorization header: expected 'Bearer TOKEN'")
    return token.strip()


def token(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
    """Dependency: the request's bearer token; 401 (naming what is wrong) when there is none."""
    if credentials is not None and credentials.credentials.strip():
        return credentials.credentials.strip()
    return bearer_token(request)  # says whether the header is missing or malformed


def participant_for(state, token):
    """The active participant holding ``token``; 401 otherwise (blocking: a database look-up)."""
    if not token:
        raise HTTPException(401, "missing token: enter the token your teacher gave you")
    if len(token) > MAX_TOKEN or not token.isascii() or not token.isprintable():
        raise HTTPException(401, "unknown token: check the token your teacher gave you")
    participant = state.db.participant_for_token(token)
    if participant is None:
        raise HTTPException(401, "unknown token: check the token your teacher gave you")
    if not participant.active:
        raise HTTPException(401, "this token was revoked: ask your teacher for a new one")
    return participant


def participant(token: str = Depends(token), state: ServerState = Depends(get_state)):
    """Dependency: the active participant of the request's bearer token; 401 otherwise."""
    return participant_for(state, token)


def check_teacher(state, token, what):
    """Check ``token`` is the teacher token: 401 when unknown, 403 for a participant's (``what`` says why)."""
    if not same_token(token[:MAX_TOKEN], state.teacher_hash):
        if state.db.participant_for_token(token[:MAX_TOKEN]) is not None:
            raise HTTPException(403, f"{what} needs the teacher token, not a participant's")
        raise HTTPException(401, "unknown token: expected the teacher token (private/teacher_token)")


def teacher(what):
    """A dependency admitting only the teacher token; ``what`` names the action in the 403 for a participant's.

    Examples
    --------
    >>> callable(teacher("revealing the Private ranking"))
    True
    """

    def teacher_only(token: str = Depends(token), state: ServerState = Depends(get_state)) -> None:
        check_teacher(state, token, what)

    return teacher_only


def new_teacher_session(state):
    """A new teacher session id; only its hash is kept, with its expiry (and expired ones are dropped)."""
    now = time.monotonic()
    for key, expiry in list(state.teacher_sessions.items()):
        if expiry <= now:
            state.teacher_sessions.pop(key, None)
    session = secrets.token_urlsafe(32)
    state.teacher_sessions[hash_token(session)] = now + TEACHER_SESSION_SECONDS
    return session


def teacher_session(state, request):
    """The request's live teacher session id (from its cookie), or None."""
    session = request.cookies.get(TEACHER_COOKIE, "")
    if not session or len(session) > MAX_TOKEN:
        return None
    expiry = state.teacher_sessions.get(hash_token(session))
    return session if expiry is not None and expiry > time.monotonic() else None


def csrf(session):
    """The CSRF token of a teacher session: its forms carry it, another site cannot know it."""
    return hmac.new(session.encode("ascii", "replace"), b"kit-teacher-form", "sha256").hexdigest()


def same_origin(request):
    """403 when a browser says the form came from another site.

    ``Sec-Fetch-Site`` decides where the browser sends it; else ``Origin`` must name this
    host (a browser under this site's ``Referrer-Policy: no-referrer`` sends ``Origin: null``
    with its own forms, and ``Sec-Fetch-Site`` with them too).
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site.strip().lower() not in ("same-origin", "none"):
            raise HTTPException(403, "this form must be sent from this site's own page")
        return
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, "this form must be sent from this site's own page")
