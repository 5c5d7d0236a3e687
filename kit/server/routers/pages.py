"""The pages a browser shows: the live leaderboard (and its classroom screen), the submit form, your submissions.

The forms take the token as their first field (or from an ``Authorization`` header or
the ``kit_token`` cookie), checked before the file's bytes are taken
(:func:`kit.server.forms.read_form`).
"""
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from kit.board import pages
from kit.scoring.metrics import SHOWN_DECIMALS
from kit.server.forms import early_participant, read_form, upload_slots
from kit.server.security import participant_for, same_origin
from kit.server.state import ServerState, current_phase, get_state, history, standings_now
from kit.server.upload import accept, check_allowance, choose_finals
from kit.server.views import PROJECTOR_ROWS, headings, plot_images, render, table, version_tag

router = APIRouter(include_in_schema=False)


@router.get("/")
def leaderboard_page(request: Request, state: ServerState = Depends(get_state)):
    current, latest = standings_now(state)
    phase = current_phase(state)
    titles, rows = table(current)
    title, subtitle = headings(current, phase)
    # The classroom screen: large type, the top rows, no navigation; it refreshes itself.
    projector = request.query_params.get("view") == "projector"
    return render(request, "leaderboard.html", title=title, subtitle=subtitle, titles=titles,
                  rows=rows[:PROJECTOR_ROWS] if projector else rows, projector=projector,
                  revealed=current.private, entries=len(current.log),
                  decimals=min(state.scorer.metric.decimals, SHOWN_DECIMALS),
                  refresh_ms=state.refresh_ms, version=version_tag(current, phase))


@router.get("/style.css")
async def stylesheet():
    return Response(pages.STYLESHEET, media_type="text/css")


@router.get("/plots/{name}.png")
def plot(name: str, state: ServerState = Depends(get_state)):
    images = plot_images(state)
    if name not in images:
        raise HTTPException(404, "no such plot")
    return Response(images[name], media_type="image/png", headers={"Cache-Control": "no-cache"})


@router.get("/submit")
def submit_form(request: Request):
    return render(request, "submit.html")  # info.state says whether the form is shown


def _authorizer(state, allowance=False):
    """The ``authorize`` of :func:`read_form`: the token's participant (and, for an upload, their day's allowance)."""

    async def authorize(token):
        who = await run_in_threadpool(participant_for, state, token.strip())
        if allowance:
            await check_allowance(state, who, state.clock())
        return who

    return authorize


@router.post("/submit")
async def submit_page(request: Request, state: ServerState = Depends(get_state)):
    authorize = _authorizer(state, allowance=True)
    form = None
    try:
        with upload_slots(state) as held:
            # The token is checked as soon as it has arrived (a header, a cookie, or the
            # form's first field), before the file's bytes are taken: an anonymous post
            # cannot make the server store a large file, nor hold a connection for long.
            who = await early_participant(state, request, authorize)
            form, who = await read_form(request, state, held, participant=who, authorize=authorize)
            result = await accept(state, who, form.get("file"), form.get("description"))
    except HTTPException as exc:
        return render(request, "submit.html", status=exc.status_code, error=exc.detail)
    finally:
        if form is not None:
            await form.close()
    return render(request, "submit.html", status=201, result=result,
                  score=state.scorer.metric.format(result["public"]))


@router.get("/me")
def me_form(request: Request):
    return render(request, "me.html")


@router.post("/me")
async def me_page(request: Request, state: ServerState = Depends(get_state)):
    authorize = _authorizer(state)
    try:
        with upload_slots(state) as held:
            who = await early_participant(state, request, authorize)
            # The same limits as an upload's, with no room for a file.
            form, who = await read_form(request, state, held, participant=who, authorize=authorize, cap=0)
            await form.close()
    except HTTPException as exc:
        return render(request, "me.html", status=exc.status_code, error=exc.detail)
    return await _me_history(request, state, who, form.get("token"))


@router.post("/me/final")
async def me_final(request: Request, state: ServerState = Depends(get_state)):
    who, token = None, None
    try:
        same_origin(request)
        with upload_slots(state) as held:
            # The token must come in the form: a cookie alone would let another site choose for a browser.
            form, who = await read_form(request, state, held, authorize=_authorizer(state), cap=0)
            await form.close()
        token = form.get("token")
        values = form.getlist("final")
        if not all(isinstance(v, str) and v.isascii() and v.isdigit() and len(v) < 18 for v in values):
            raise HTTPException(422, "expected submission numbers in the field 'final'")
        await choose_finals(state, who, [int(v) for v in values])
    except HTTPException as exc:
        if who is None:
            return render(request, "me.html", status=exc.status_code, error=exc.detail)
        return await _me_history(request, state, who, token, status=exc.status_code, error=exc.detail)
    return await _me_history(request, state, who, token, saved=True)


async def _me_history(request, state, who, token, status=200, **context):
    rows = await run_in_threadpool(history, state, who)
    metric = state.scorer.metric
    for row in rows["submissions"]:
        row["public_text"] = metric.format(row["public"])
        row["private_text"] = metric.format(row.get("private"))
    # The token rides in the page's own choice form (typed by its owner a moment ago): never cached.
    token = token if isinstance(token, str) and token.strip() else None
    response = render(request, "me.html", status=status, history=rows, token=token, **context)
    response.headers["Cache-Control"] = "no-store"
    return response
