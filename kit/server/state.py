"""What the server knows and decides: its state, the competition's phase, and the answers made from the store.

Every score a participant sees is rounded to :data:`kit.scoring.metrics.SHOWN_DECIMALS` and
ranked as shown; the database keeps every digit. These functions block (SQLite, pandas):
routes call them from plain ``def`` handlers or through a worker thread.
"""
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from datetime import time as day_time

from fastapi import HTTPException, Request

from kit.board.phases import REVEALED, REVEALED_CLOSED, TEACHER_CLOSED
from kit.board.standings import latest_times, rank_standings, standings
from kit.board.store import MAX_FINALS, SCORED, Database, decide_phase, utc_iso
from kit.errors import UserError
from kit.safetext import one_line
from kit.scoring.metrics import SHOWN_DECIMALS, shown_scores
from kit.server.limits import (
    ANONYMOUS_TIMEOUT,
    DEFAULT_ANONYMOUS_PER_ADDRESS,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_UPLOADS_PER_TOKEN,
    OpenUploads,
)
from kit.server.settings import DEFAULT_UPLOAD_TIMEOUT, parse_deadline

# Only one thread draws the plots at a time (matplotlib's rc settings are global while it draws).
PLOT_LOCK = threading.Lock()


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


def get_state(request: Request) -> "ServerState":
    """Dependency: the :class:`ServerState` of the app serving ``request``."""
    return request.app.state.kit


def current_phase(state, now=None):
    """The :class:`Phase` of the served competition now (or at ``now``), from the store and the clock."""
    return decide_phase(state.db.settings(), state.deadline, state.clock() if now is None else now)


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
        raise HTTPException(409, "the final ranking is revealed: hide it first ({\"revealed\": false}), then re-open")
    if wanted and phase.reason == "deadline":
        raise HTTPException(409, f"the deadline {utc_iso(phase.deadline)[:19]}Z (UTC) has passed: set a later deadline "
                                 "first (POST /api/deadline), or remove it")
    state.db.set_settings({"closed": "0" if wanted else "1"})
    return current_phase(state)


def checked_deadline(value, tz):
    """A deadline a teacher sent (ISO 8601 text, or None/empty for none) as an aware datetime; HTTPException 422 otherwise.

    Years outside 1970-9998 are refused: the store keeps fixed-width UTC text.

    Examples
    --------
    >>> checked_deadline("2026-06-30T23:59:00+02:00", timezone.utc).isoformat()
    '2026-06-30T21:59:00+00:00'
    >>> checked_deadline("1969-12-31T23:00:00Z", timezone.utc)
    Traceback (most recent call last):
    ...
    fastapi.exceptions.HTTPException: 422: deadline '1969-12-31T23:00:00Z': expected a date between the years 1970 and 9998
    """
    if value is not None and not (str(value).isascii() and str(value).isprintable()):
        raise HTTPException(422, f"deadline {one_line(value, 60)!r}: expected ISO 8601 such as 2026-06-30T23:59:00Z")
    try:
        deadline = parse_deadline(value, tz)
        if deadline is not None:
            deadline = deadline.astimezone(timezone.utc)
    except UserError as exc:
        raise HTTPException(422, str(exc)) from None
    except (OverflowError, ValueError):
        deadline = datetime.min.replace(tzinfo=timezone.utc)
    if deadline is not None and not 1970 <= deadline.year <= 9998:
        raise HTTPException(422, f"deadline {one_line(value, 60)!r}: expected a date between the years 1970 and 9998")
    return deadline


def set_deadline(state, deadline):
    """Set (an aware datetime) or remove (None) the deadline in the store; the new :class:`Phase`."""
    state.db.set_settings({"deadline": "" if deadline is None else utc_iso(deadline)})
    return current_phase(state)


def closed_message(phase):
    """Why submissions (and choices of final submissions) are refused, in one line."""
    if phase.reason == "revealed":
        return REVEALED_CLOSED
    if phase.reason == "closed":
        return TEACHER_CLOSED
    return f"submissions closed at the deadline, {utc_iso(phase.deadline)[:19]}Z (UTC)"


def limit_message(state, window):
    start = window[0].astimezone(state.tz)
    zone = "UTC" if state.tz is timezone.utc else str(state.tz)
    return (f"daily limit reached: {state.limit} scored submission(s) per day; the next day starts at "
            f"{(window[1].astimezone(state.tz)).strftime('%Y-%m-%d %H:%M')} {zone} (today began "
            f"{start.strftime('%Y-%m-%d %H:%M')})")


def used_today(state, participant, window):
    """``(scored, failed)`` submissions in ``window`` of the participant's team (or their own): one allowance."""
    members = state.db.team_members(participant.id)
    return (sum(state.db.count_scored(member, *window) for member in members),
            sum(state.db.count_failed(member, *window) for member in members))


def still_open(state, now):
    """The check :meth:`Database.add_submission` runs in its transaction: None while open at ``now``, else the phase."""
    def check(settings):
        phase = decide_phase(settings, state.deadline, now)
        return None if phase.open else phase

    return check


def history(state, participant):
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
        remaining = max(0, state.limit - sum(used_today(state, participant, state.day_window(now))))
    return {"participant": participant.name, "team": state.db.teams().get(participant.name),
            "revealed": revealed, "state": phase.state,
            "remaining_today": remaining, "finals": sorted(finals), "submissions": shown_scores(rows)}


def standings_now(state):
    """``(standings, latest submission time per participant)`` from the database, kept per version."""
    version = board_version(state)
    cached = state.standings
    if cached is None or cached[0] != version:
        current = shown_standings(standings(state.db, state.competition, state.scorer.metric))
        cached = state.standings = (version, current, latest_times(current.log))
    return cached[1], cached[2]


def board_version(state):
    """What the standings depend on: the store's version and, once revealed, the chosen final submissions."""
    version = state.db.version()
    return (version, tuple(sorted(state.db.finals().items()))) if state.db.revealed else (version, ())


def shown_standings(current):
    """Standings as a participant sees them: every score rounded to ``SHOWN_DECIMALS``, ranked on those.

    What the API, the pages and the plots are made from, so that no digit past the
    shown ones reaches a participant, and two scores that look the same rank by time.
    """
    shown = current.log.copy()
    for column in ("public", "private", "validation"):
        shown[column] = shown[column].round(SHOWN_DECIMALS)
    for column in ("per_bin_public", "per_bin_private"):
        shown[column] = shown[column].map(shown_scores)
    return replace(current, log=shown, ranking=rank_standings(shown, current.metric, private=current.private))


def info(state, phase=None):
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
