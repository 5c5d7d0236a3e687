"""Reading what a request sends, under limits: multipart uploads with their token first, small forms, small JSON.

An upload is read in chunks under a size cap (413 as soon as it is passed), a time limit
(408) and a cap on the uploads open at once (429). A form sent without an
``Authorization`` header or token cookie must begin with its token, which is checked
before any later chunk is taken: this is the one place that needs its own multipart
parser (:class:`TokenFirstParser`, on Starlette's).
"""
import json
from contextlib import contextmanager
from email.message import Message
from urllib.parse import parse_qsl

import anyio
from fastapi import HTTPException
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser

from kit.safetext import one_line
from kit.server.limits import TooManyOpen, address_key
from kit.server.schemas import RevealRequest
from kit.server.security import TOKEN_COOKIE, bearer_token

#: Room for the form's other fields and the multipart framing, on top of the file's cap.
FORM_OVERHEAD = 64 * 1024


#: Largest body of ``POST /api/reveal``, ``/api/open``, ``/api/deadline`` and ``/api/final``: a JSON object of one key.
MAX_REVEAL_BODY = 1024


class _TooLarge(Exception):
    pass


@contextmanager
def upload_slots(state):
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
            raise HTTPException(429, f"too many uploads at once: at most {cap} of yours are taken at a time; "
                                     "wait for one to finish") from None
        raise HTTPException(429, f"too many forms at once from your network address ({cap} are waiting for "
                                 "their token): try again in a moment") from None


async def early_participant(state, request, authorize):
    """The participant of a form's ``Authorization: Bearer`` header or token cookie, or None.

    ``authorize`` (async, takes the token) checks it and returns the participant.
    """
    # Another scheme (a reverse proxy's Basic login, say) is not ours: the form's token counts then.
    if request.headers.get("authorization", "").strip().lower().startswith("bearer "):
        return await authorize(bearer_token(request))
    cookie = request.cookies.get(TOKEN_COOKIE, "").strip()
    return await authorize(cookie) if cookie else None


def _client_address(request):
    return address_key(request.client.host if request.client is not None else "unknown")


async def read_form(request, state, held, participant=None, authorize=None, cap=None):
    """``(form, participant)``: the multipart form, read under the upload limits.

    The limits: a size cap (413), a time limit (408), and a cap on the uploads open at
    once (429) per participant, or, while the form is anonymous, per client address.

    With ``participant`` (authorised by a header or cookie) the form is read as it
    comes. Without, the form is anonymous until its first field, which must be the
    token, has arrived within ``state.anonymous_timeout`` seconds and
    :data:`FORM_OVERHEAD` bytes; ``authorize`` (async, takes the token, returns the
    participant or raises HTTPException) checks it before any later chunk is taken, so an
    unauthorised post is refused having sent at most one chunk of its file (kept in
    memory, never on disk), and a slow anonymous one cannot hold its connection for long.

    ``cap`` is the file's size cap in bytes (default the server's; 0 for a form without
    a file).
    """
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
        elif not cap and media_type(request) == "application/x-www-form-urlencoded":
            form = await _parse_small_form(request, check)
        else:
            form = await _parse_form(request, cap, check)
    if scope.cancelled_caught:
        if found[0] is None:
            raise HTTPException(408, f"form too slow: its first field, the token, did not arrive within "
                                     f"{min(state.anonymous_timeout, state.upload_timeout):g} s")
        raise HTTPException(408, f"upload too slow: the form did not arrive within {state.upload_timeout:g} s; "
                                 "try again on a better connection")
    return form, found[0]


class TokenFirstParser(MultiPartParser):
    """Starlette's multipart parser; with ``token_first``, a form whose first part is not the token is refused.

    Starlette offers no hook for a part's headers but this parser's callbacks, so the
    check reads its private ``_current_part`` (field name, and whether it is a file): the
    only use of Starlette's private attributes in the kit. Without it, an anonymous
    form could make the server store a file before its token is known.
    """

    token_first = False
    parts = 0

    def on_headers_finished(self):
        super().on_headers_finished()
        self.parts += 1
        if self.token_first and self.parts == 1:
            if self._current_part.field_name != "token":
                raise HTTPException(401, "missing token: the form's first field must be the token")
            if self._current_part.file is not None:
                raise HTTPException(422, "malformed form: the token field is a file, expected text")


def media_type(request):
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def small_form(request):
    """A URL-encoded form of a few fields (415 for anything else)."""
    if media_type(request) != "application/x-www-form-urlencoded":
        raise HTTPException(415, "expected a form (application/x-www-form-urlencoded)")
    return await _parse_small_form(request, None)


async def _parse_small_form(request, authorize):
    """A URL-encoded form of a few fields (a browser's form without a file), at most :data:`FORM_OVERHEAD` bytes."""

    body = await read_body(request, FORM_OVERHEAD)
    try:
        fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(422, "malformed form: expected at most 8 UTF-8 fields") from None
    form = FormData(fields)
    if authorize is not None:
        await authorize(form.get("token") or "")
    return form


async def _parse_form(request, cap, authorize):

    content_type = request.headers.get("content-type", "")
    if media_type(request) != "multipart/form-data":
        raise HTTPException(415, f"expected a multipart/form-data body with a 'file' field, found "
                                 f"{one_line(content_type, 60) or 'no content type'}")
    limit = cap + FORM_OVERHEAD
    length = request.headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise HTTPException(400, "malformed Content-Length header")
        if int(length) > limit:
            raise HTTPException(413, too_large(cap))

    pending = [authorize] if authorize is not None else []

    async def gate():
        tokens = [value for name, value in parser.items if name == "token" and isinstance(value, str)]
        if tokens:
            await pending.pop()(tokens[0])
        elif seen >= FORM_OVERHEAD:
            raise HTTPException(401, f"missing token: the form's first field must be the token, within its first "
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
    parser = TokenFirstParser(request.headers, limited(), max_files=1 if cap else 0, max_fields=8,
                              max_part_size=FORM_OVERHEAD)
    parser.token_first = authorize is not None
    try:
        form = await parser.parse()
    except _TooLarge:
        raise HTTPException(413, too_large(cap)) from None
    except MultiPartException as exc:
        raise HTTPException(422, f"malformed form: {one_line(exc.message, 200)}") from None
    if pending:  # the whole form came in one piece
        token = form.get("token")
        await form.close()
        await pending.pop()(token if isinstance(token, str) else "")
    return form


async def read_body(request, cap):
    """A small request body, refused with 413 past ``cap`` bytes."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise HTTPException(413, f"body too large: expected at most {cap} bytes")
    return bytes(body)


def reveal_choice(content_type, body):
    """The ``revealed`` boolean of a ``POST /api/reveal`` body; HTTPException 415 or 422 otherwise.

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
    fastapi.exceptions.HTTPException: 415: expected Content-Type application/json, found application/x-www-form-urlencoded
    """
    return json_body(content_type, body, RevealRequest, '{"revealed": true} or {"revealed": false}').revealed


def json_body(content_type, body, model, expected):
    """A small JSON body checked by the Pydantic ``model`` (strict, no other keys); HTTPException 415 or 422 otherwise.

    Only ``application/json`` (charset utf-8 at most) is taken; duplicate keys, NaN and
    Infinity are refused before the model looks. ``expected`` shows the object wanted,
    for the message.

    Examples
    --------
    >>> json_body("application/json", b'{"revealed": true}', RevealRequest, '{"revealed": true}')
    RevealRequest(revealed=True)
    >>> json_body("application/json", b'{"revealed": 1}', RevealRequest, '{"revealed": true}')
    Traceback (most recent call last):
    ...
    fastapi.exceptions.HTTPException: 422: expected the JSON object {"revealed": true}, found {"revealed": 1}
    """
    header = Message()
    header["content-type"] = str(content_type or "")
    params = {name.lower(): value for name, value in header.get_params(failobj=[("", "")])[1:]}
    kind = str(content_type or "").split(";")[0].strip().lower()
    charset = str(params.pop("charset", "utf-8")).strip().lower()
    if kind != "application/json" or params or charset not in ("utf-8", "utf8"):
        raise HTTPException(415, f"expected Content-Type application/json, found {one_line(content_type, 80) or 'none'}")
    expected = f"expected the JSON object {expected}"
    try:
        value = json.loads(body.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise HTTPException(422, f"{expected}, found a body that is not JSON with unique keys") from None
    try:
        return model.model_validate(value)
    except ValidationError:
        raise HTTPException(422, f"{expected}, found {one_line(body.decode('utf-8', 'replace'), 60)}") from None


def _unique_keys(pairs):
    keys = [name for name, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def too_large(cap):
    if not cap:
        return f"form too large: at most {FORM_OVERHEAD // 1024} KiB is accepted"
    return f"file too large: at most {cap / (1 << 20):g} MB is accepted (a submission is one short line per test pair)"
