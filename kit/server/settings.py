"""The classroom server's settings: one frozen, validated object that ``kit serve`` builds once."""
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from numbers import Integral, Real
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kit.competition import deadline as kit_deadline
from kit.constraints import Interval, parse_param
from kit.errors import UserError
from kit.server.limits import ANONYMOUS_TIMEOUT, DEFAULT_ANONYMOUS_PER_ADDRESS, DEFAULT_REQUEST_TIMEOUT, DEFAULT_UPLOADS_PER_TOKEN

#: Default cap on an uploaded file.
DEFAULT_MAX_UPLOAD_MB = 50
#: Seconds an upload's body may take to arrive (``kit serve --upload-timeout``).
DEFAULT_UPLOAD_TIMEOUT = 120.0

_SECONDS = Interval(Real, 0, None, closed="neither")
_COUNT = Interval(Integral, 1, None)
_MEGABYTES = Interval(Real, 0, None, closed="neither")

#: What each checked setting may be, and the name its one-line error gives it.
CONSTRAINTS = {
    "max_upload_mb": ("upload cap (MB)", _MEGABYTES),
    "refresh_seconds": ("refresh every (seconds)", _SECONDS),
    "upload_timeout": ("upload timeout (seconds)", _SECONDS),
    "request_timeout": ("request timeout (seconds)", _SECONDS),
    "anonymous_timeout": ("anonymous form timeout (seconds)", _SECONDS),
    "export_interval": ("export interval (seconds)", Interval(Real, 0, None)),
    "uploads_per_token": ("uploads per token", _COUNT),
    "anonymous_per_address": ("anonymous uploads per address", _COUNT),
}


def _utc_now():
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Settings:
    """How ``kit serve`` runs one competition, checked once when made.

    Numbers may be given as text (the command line's options): each is parsed and checked
    by :func:`kit.constraints.parse_param`, so a bad one is one line naming the setting.

    Parameters
    ----------
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

    Examples
    --------
    >>> Settings(upload_timeout="30").upload_timeout
    30.0
    >>> Settings(uploads_per_token=0)
    Traceback (most recent call last):
    ...
    kit.errors.UserError: uploads per token must be an integer >= 1, found 0
    """

    data: object = None
    leaderboard: object = None
    timezone_name: str = "UTC"
    deadline: object = None
    max_upload_mb: float | None = None
    clock: Callable = field(default=_utc_now, compare=False)
    export_interval: float = 2.0
    refresh_seconds: float = 10.0
    upload_timeout: float = DEFAULT_UPLOAD_TIMEOUT
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    uploads_per_token: int = DEFAULT_UPLOADS_PER_TOKEN
    anonymous_per_address: int = DEFAULT_ANONYMOUS_PER_ADDRESS
    anonymous_timeout: float = ANONYMOUS_TIMEOUT

    def __post_init__(self):
        for name in CONSTRAINTS:
            value = getattr(self, name)
            if value is None and name == "max_upload_mb":
                continue  # competition.json's, checked when the app is made
            object.__setattr__(self, name, check_setting(name, value))
        object.__setattr__(self, "clock", self.clock or _utc_now)
        load_timezone(self.timezone_name)  # refused now, not at the first upload

    @property
    def tz(self):
        """The :class:`zoneinfo.ZoneInfo` (or UTC) of :attr:`timezone_name`."""
        return load_timezone(self.timezone_name)


def check_setting(name, value):
    """``value`` (a number, or text as typed) of the setting ``name``, parsed and checked; one UserError line otherwise.

    Examples
    --------
    >>> check_setting("upload_timeout", "2.5")
    2.5
    >>> check_setting("uploads_per_token", True)
    Traceback (most recent call last):
    ...
    kit.errors.UserError: uploads per token must be an integer >= 1, found bool True
    """
    shown, constraint = CONSTRAINTS[name]
    try:
        return parse_param(value, shown, constraint)
    except TypeError as exc:  # a value of the wrong kind (True, 2.5 uploads, None): the same one line
        raise UserError(str(exc)) from None


def load_timezone(name):
    """A :class:`zoneinfo.ZoneInfo` for a name such as ``Europe/Paris``; a UserError otherwise.

    Examples
    --------
    >>> load_timezone("Europe/Paris").key, load_timezone("UTC")
    ('Europe/Paris', datetime.timezone.utc)
    """
    if name in (None, "", "UTC", "utc"):
        return timezone.utc
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UserError(f"unknown time zone {str(name)[:60]!r}: expected a name such as UTC or Europe/Paris") from None


def parse_deadline(value, tz=None):
    """A deadline as an aware UTC datetime, or None: :func:`kit.competition.deadline.parse_deadline`.

    One meaning in every mode: a time without zone is UTC (whatever ``--timezone``, which
    ``tz`` names and which only sets the days of the daily limit), a date alone is 23:59 UTC.

    Examples
    --------
    >>> parse_deadline("2026-06-30T23:59:00Z", timezone.utc).isoformat()
    '2026-06-30T23:59:00+00:00'
    >>> parse_deadline("2026-06-30", timezone.utc).isoformat()
    '2026-06-30T23:59:00+00:00'
    """
    return kit_deadline.parse_deadline(value, "deadline")
