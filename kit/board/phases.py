"""Whether a competition is open: its phases (open, closed, revealed), decided in one place.

:func:`decide_phase` is the one rule the server, the inbox and ``kit score`` follow;
:func:`closed_reason` is the one line a refused submission is told. Times are stored as
fixed-width UTC text (:func:`utc_iso`).
"""
from dataclasses import dataclass
from datetime import datetime, timezone

#: What a submission refused once the Private ranking is revealed is told (server, inbox, ``kit score``).
REVEALED_CLOSED = "the final ranking is revealed; submissions are closed"
#: What a submission refused while the teacher has closed the competition is told.
TEACHER_CLOSED = "the teacher has closed the competition; submissions are closed"

#: The states of a competition (:func:`decide_phase`): open, closed (by the deadline or the
#: teacher) and revealed (closed, and ranked on Private).
OPEN, CLOSED, REVEALED = "open", "closed", "revealed"


@dataclass(frozen=True)
class Phase:
    """Where a competition stands: ``state`` is :data:`OPEN`, :data:`CLOSED` or :data:`REVEALED`.

    ``reason`` says why it is not open: ``"deadline"``, ``"closed"`` (by the teacher) or
    ``"revealed"``; None while open. ``deadline`` is the deadline in force (or None).
    """

    state: str
    reason: str = None
    deadline: datetime = None

    @property
    def open(self):
        return self.state == OPEN


def decide_phase(settings, deadline, now):
    """The :class:`Phase` of a competition: the one place that decides whether it is open.

    Parameters
    ----------
    settings : dict
        The store's settings (:meth:`Database.settings`): ``revealed`` and
        ``closed`` (``"1"`` or ``"0"``), and ``deadline`` (UTC ISO text, or ``""`` for none)
        once the teacher has set one, which then replaces ``deadline``.
    deadline : datetime or None
        The deadline the server started with (``--deadline`` or competition.json).
    now : datetime
        The server's clock (aware).

    Examples
    --------
    >>> start = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    >>> decide_phase({}, start, start).reason, decide_phase({"closed": "1"}, None, start).state
    ('deadline', 'closed')
    >>> decide_phase({"deadline": ""}, start, start).state, decide_phase({"revealed": "1"}, None, start).state
    ('open', 'revealed')
    """
    if "deadline" in settings:
        deadline = parse_utc(settings["deadline"]) if settings["deadline"] else None
    if settings.get("revealed") == "1":
        return Phase(REVEALED, "revealed", deadline)
    if deadline is not None and now >= deadline:
        return Phase(CLOSED, "deadline", deadline)
    if settings.get("closed") == "1":
        return Phase(CLOSED, "closed", deadline)
    return Phase(OPEN, None, deadline)



class SubmissionsClosed(Exception):
    """Submissions are closed: ``reason`` is ``"deadline"``, ``"closed"`` (by the teacher) or ``"revealed"``."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason



def utc_iso(moment):
    """A UTC time as fixed-width ISO 8601 text (microseconds, ``Z``): sorts as it reads.

    Examples
    --------
    >>> utc_iso(datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc))
    '2026-03-01T12:00:00.000000Z'
    """
    if moment.tzinfo is None:
        raise ValueError(f"expected a time with a time zone, found {moment!r}")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text):
    """The aware UTC datetime of text written by :func:`utc_iso`."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def closed_reason(reason, deadline=None):
    """The one line for a submission refused by the deadline or the reveal.

    Examples
    --------
    >>> closed_reason("revealed")
    'the final ranking is revealed; submissions are closed'
    >>> closed_reason("deadline", datetime(2027, 2, 1, 23, 59, tzinfo=timezone.utc))
    'after the deadline (2027-02-01 23:59 UTC)'
    """
    if reason == "revealed":
        return REVEALED_CLOSED
    if reason == "closed":
        return TEACHER_CLOSED
    return "after the deadline" + ("" if deadline is None else f" ({deadline.strftime('%Y-%m-%d %H:%M')} UTC)")
