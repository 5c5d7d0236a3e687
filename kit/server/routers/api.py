"""The participants' JSON API: submit, see your submissions, choose final ones, read the leaderboard and rules."""
from fastapi import APIRouter, Depends, Request

from kit.board.standings import leaderboard_json
from kit.board.store import MAX_FINALS
from kit.server.forms import MAX_REVEAL_BODY, json_body, read_body, read_form, upload_slots
from kit.server.schemas import ErrorAnswer, FinalAnswer, FinalRequest, History, Info, Leaderboard, SubmissionResult, json_schema
from kit.server.security import participant
from kit.server.state import ServerState, current_phase, get_state, history, info, standings_now
from kit.server.upload import MAX_DESCRIPTION, accept, check_allowance, choose_finals
from kit.server.views import headings

router = APIRouter(prefix="/api", responses={401: {"model": ErrorAnswer, "description": "no, unknown or revoked token"}})

_UPLOAD_FORM = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "the submission CSV (id,similarity)"},
        "description": {"type": "string", "description": f"optional note, at most {MAX_DESCRIPTION} characters"},
    }}}}}}


@router.post(
    "/submissions",
    status_code=201,
    response_model=SubmissionResult,
    summary="Submit a prediction file",
    openapi_extra=_UPLOAD_FORM,
    responses={403: {"model": ErrorAnswer, "description": "after the deadline, or once the Private ranking is revealed"},
               408: {"model": ErrorAnswer, "description": "the file took too long to arrive"},
               413: {"model": ErrorAnswer, "description": "file over the size cap"},
               415: {"model": ErrorAnswer, "description": "not multipart/form-data"},
               422: {"model": ErrorAnswer, "description": "invalid file (the scorer's message); nothing recorded"},
               429: {"model": ErrorAnswer,
                     "description": "daily limit reached (server-time day), or too many uploads at once"},
               500: {"model": ErrorAnswer, "description": "the server failed to score the file: nothing stored, "
                                                          "the attempt counts against the daily limit"}},
)
async def post_submission(request: Request, who=Depends(participant), state: ServerState = Depends(get_state)):
    # async: the body is streamed under the upload limits; the blocking work goes to worker threads.
    await check_allowance(state, who, state.clock())
    with upload_slots(state) as held:
        form, _ = await read_form(request, state, held, participant=who)
        try:
            return await accept(state, who, form.get("file"), form.get("description"))
        finally:
            await form.close()


@router.get("/leaderboard", response_model=Leaderboard, response_model_exclude_unset=True,
            summary="The leaderboard (Private scores once revealed)")
def get_leaderboard(state: ServerState = Depends(get_state)):
    current, latest = standings_now(state)
    phase = current_phase(state)
    title, subtitle = headings(current, phase)
    return {**leaderboard_json(current, latest), "state": phase.state, "title": title, "subtitle": subtitle}


@router.get("/me", response_model=History, response_model_exclude_unset=True,
            summary="Your submissions with their scores")
def get_me(who=Depends(participant), state: ServerState = Depends(get_state)):
    return history(state, who)


@router.post("/final", response_model=FinalAnswer,
             summary=f"Choose up to {MAX_FINALS} of your scored submissions as final: JSON "
             "{\"submissions\": [ID, ...]} (an empty list takes the choice back)",
             openapi_extra=json_schema(FinalRequest),
             responses={403: {"model": ErrorAnswer, "description": "after the deadline, once closed or revealed"},
                        413: {"model": ErrorAnswer, "description": "body over 1 KiB"},
                        415: {"model": ErrorAnswer, "description": "not application/json"},
                        422: {"model": ErrorAnswer,
                              "description": f"more than {MAX_FINALS} ids, or an id that is not one of yours"}})
async def post_final(request: Request, who=Depends(participant), state: ServerState = Depends(get_state)):
    body = json_body(request.headers.get("content-type"), await read_body(request, MAX_REVEAL_BODY), FinalRequest,
                     '{"submissions": [ID, ...]}')
    return await choose_finals(state, who, body.submissions)


@router.get("/info", response_model=Info, summary="The competition's rules: metric, limits, deadline")
def get_info(state: ServerState = Depends(get_state)):
    return info(state)
