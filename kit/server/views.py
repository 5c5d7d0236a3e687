"""What the pages show: the live leaderboard's table, headings and plots, and the templates they fill in.

Every page is a Jinja2 template with autoescaping (and a Content-Security-Policy that
allows no inline script, :mod:`kit.server.security`).
"""
import base64
from pathlib import Path

import jinja2
from starlette.templating import Jinja2Templates

from kit.board import pages
from kit.board.store import CLOSED
from kit.server.state import PLOT_LOCK, board_version, info, standings_now

_HERE = Path(__file__).resolve().parent

#: Rows the classroom screen (``/?view=projector``) shows.
PROJECTOR_ROWS = 20


def plot_images(state):
    """``{"history": png bytes, "bins": png bytes}`` for the live page, drawn once per leaderboard version."""
    version = board_version(state)
    if state.plots.get("version") != version:
        with PLOT_LOCK:  # many pages asking at once: one draws, the others find it drawn
            if state.plots.get("version") != version:
                current, _ = standings_now(state)
                images = {}
                if len(current.ranking):
                    drawn = pages.plot_images(current)
                    images = {key: base64.b64decode(png) for key, (_, _, png) in zip(("history", "bins"), drawn)}
                state.plots = {"version": version, "images": images}
    return state.plots["images"]


def table(current):
    """``(titles, rows)`` of the live page's table; once revealed, with what each row was ranked on."""
    titles, rows = pages.table(current)
    if current.private:
        titles = [*titles, "ranked on"]
        rows = [[*row, basis] for row, basis in zip(rows, current.ranking["basis"])]
    return titles, rows


def headings(current, phase):
    """``(title, subtitle)`` of the live page in the competition's :class:`Phase`."""
    title, subtitle, _ = pages.headings(current)
    if current.private:
        subtitle = (f"{current.metric.describe()}; final standings on the Private rows: each participant's best "
                    f"chosen final submission, else their best Public one; ties go to the earlier submission")
    elif phase.state == CLOSED:
        subtitle += "; submissions are closed"
    return title, subtitle


def version_tag(current, phase):
    """What the live page compares with each poll's answer (live.js builds the same from it)."""
    return f"{len(current.log)}-{int(current.private)}-{phase.state}"


def _templates():
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    return Jinja2Templates(env=env)


TEMPLATES = _templates()


def render(request, name, status=200, **context):
    """The page ``name`` (a template under ``templates/``) for ``request``, with the competition's rules."""
    state = request.app.state.kit
    context.update(competition=state.competition.name, info=info(state))
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status)
