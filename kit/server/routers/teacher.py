"""The teacher's routes: the JSON API (reveal, open or close, deadline) and the /teacher page with its session."""
import hmac

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from kit.board.store import hash_token, utc_iso
from kit.board.tokens import same_token
from kit.errors import UserError
from kit.server.forms import MAX_REVEAL_BODY, json_body, read_body, reveal_choice, small_form
from kit.server.schemas import (
    DeadlineAnswer,
    DeadlineRequest,
    ErrorAnswer,
    OpenAnswer,
    OpenRequest,
    RevealAnswer,
    RevealRequest,
    json_schema,
)
from kit.server.security import (
    MAX_TOKEN,
    TEACHER_COOKIE,
    TEACHER_SESSION_SECONDS,
    csrf,
    new_teacher_session,
    same_origin,
    teacher,
    teacher_session,
)
from kit.server.state import ServerState, checked_deadline, current_phase, get_state, set_deadline, set_open, set_revealed
from kit.server.views import render

_REFUSALS = {401: {"model": ErrorAnswer, "description": "no or unknown token"},
             403: {"model": ErrorAnswer, "description": "a participant's token"},
             413: {"model": ErrorAnswer, "description": "body over 1 KiB"},
             415: {"model": ErrorAnswer, "description": "not application/json"}}

api = APIRouter(prefix="/api", responses=_REFUSALS)
page = APIRouter(include_in_schema=False)


@api.post("/reveal", response_model=RevealAnswer,
          summary="Teacher: JSON {\"revealed\": true} ranks on the Private scores and closes submissions; "
          "{\"revealed\": false} hides them again and re-opens submissions until the deadline",
          openapi_extra=json_schema(RevealRequest),
          responses={422: {"model": ErrorAnswer, "description": "not the object {\"revealed\": true|false}"}},
          dependencies=[Depends(teacher("revealing the Private ranking"))])
async def post_reveal(request: Request, state: ServerState = Depends(get_state)):
    # async: the body is read under its cap as it arrives; the store's work goes to a worker thread.
    revealed = reveal_choice(request.headers.get("content-type"), await read_body(request, MAX_REVEAL_BODY))
    await run_in_threadpool(set_revealed, state, revealed)
    return {"revealed": revealed}


@api.post("/open", response_model=OpenAnswer,
          summary="Teacher: JSON {\"open\": false} closes submissions and choices of final submissions; "
          "{\"open\": true} re-opens them (before the deadline, and not while revealed)",
          openapi_extra=json_schema(OpenRequest),
          responses={409: {"model": ErrorAnswer, "description": "re-opening after the deadline or while revealed"},
                     422: {"model": ErrorAnswer, "description": "not the object {\"open\": true|false}"}},
          dependencies=[Depends(teacher("closing or re-opening the competition"))])
async def post_open(request: Request, state: ServerState = Depends(get_state)):
    body = json_body(request.headers.get("content-type"), await read_body(request, MAX_REVEAL_BODY), OpenRequest,
                     '{"open": true} or {"open": false}')
    phase = await run_in_threadpool(set_open, state, body.open)
    return {"open": phase.open, "state": phase.state}


@api.post("/deadline", response_model=DeadlineAnswer,
          summary="Teacher: JSON {\"deadline\": \"2026-06-30T23:59:00Z\"} sets the deadline "
          "(a time without zone is UTC, a date alone 23:59 UTC); {\"deadline\": null} removes it",
          openapi_extra=json_schema(DeadlineRequest),
          responses={422: {"model": ErrorAnswer,
                           "description": "not the object {\"deadline\": ISO 8601 text or null}"}},
          dependencies=[Depends(teacher("setting the deadline"))])
async def post_deadline(request: Request, state: ServerState = Depends(get_state)):
    body = json_body(request.headers.get("content-type"), await read_body(request, MAX_REVEAL_BODY), DeadlineRequest,
                     '{"deadline": "2026-06-30T23:59:00Z"} or {"deadline": null}')
    deadline = checked_deadline(body.deadline, state.tz)
    phase = await run_in_threadpool(set_deadline, state, deadline)
    return {"deadline": None if deadline is None else utc_iso(deadline), "state": phase.state}


def _teacher_page(request, state, session, status=200, **context):
    response = render(request, "teacher.html", status=status, signed_in=session is not None,
                      csrf=csrf(session) if session else "", participants=state.db.participants(),
                      phase=current_phase(state), **context)
    response.headers["Cache-Control"] = "no-store"
    return response


@page.get("/teacher")
def teacher_get(request: Request, state: ServerState = Depends(get_state)):
    return _teacher_page(request, state, teacher_session(state, request))


@page.post("/teacher")
async def teacher_post(request: Request, state: ServerState = Depends(get_state)):
    session = teacher_session(state, request)
    try:
        same_origin(request)
        form = await small_form(request)
        if session is None:
            token = form.get("token") or ""
            if not same_token(token.strip()[:MAX_TOKEN], state.teacher_hash):
                raise HTTPException(401, "unknown token: expected the teacher token (private/teacher_token)")
            response = RedirectResponse("/teacher", status_code=303)
            response.set_cookie(TEACHER_COOKIE, new_teacher_session(state), max_age=TEACHER_SESSION_SECONDS,
                                path="/teacher", httponly=True, samesite="strict")
            return response
        if not hmac.compare_digest(str(form.get("csrf") or ""), csrf(session)):
            raise HTTPException(403, "this form is stale or came from another site: reload the teacher page")
        message = await run_in_threadpool(teacher_action, state, form)
    except HTTPException as exc:
        return _teacher_page(request, state, session, status=exc.status_code, error=exc.detail)
    if message is None:  # signed out
        state.teacher_sessions.pop(hash_token(session), None)
        response = RedirectResponse("/teacher", status_code=303)
        response.delete_cookie(TEACHER_COOKIE, path="/teacher", httponly=True, samesite="strict")
        return response
    return _teacher_page(request, state, session, done=message)


def teacher_action(state, form):
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
            raise HTTPException(422, str(exc)) from None
        return f"Revoked {name}'s token; their submissions stay."
    raise HTTPException(422, "unknown action on the teacher page")
