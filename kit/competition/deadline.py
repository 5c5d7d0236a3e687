"""Dates and deadlines: one reading of a competition's ``deadline`` for every mode.

``kit serve``, the classroom inbox, ``kit export codabench`` and ``kit kaggle host`` all
read competition.json's ``deadline`` (and ``kit serve --deadline``) here, with one meaning:

- a time with ``Z`` or a UTC offset (``+02:00``, ``-0500``) is that instant;
- a time without either is **UTC** (never the server's ``--timezone``);
- a date alone (``2027-02-01``) is **the last minute of that day, 23:59 UTC**: the
  hosting platforms count in minutes, so the class server closes at the same minute.

Submissions close *at* the deadline: one arriving at or after it is refused.
"""
import datetime as dt
import re

from kit.errors import UserError
from kit.safetext import printable

_OFFSET = re.compile(r"(?:[Zz]|(?P<sign>[+-])(?P<hours>\d{2}):?(?P<minutes>\d{2}))\Z")
_HAS_TIME = re.compile(r"\d[Tt ]\d")
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
                 "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")
#: Where a date alone ends: its last minute.
END_OF_DAY = dt.timedelta(days=1, minutes=-1)


def parse_instant(text, option):
    """An aware UTC datetime from ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM[:SS[.ffffff]]``.

    A time may end with ``Z`` or a UTC offset: it is converted to UTC; without either it
    is UTC. A date alone is its first minute (use :func:`parse_deadline` for an end).

    Parameters
    ----------
    text : str
    option : str
        Where the text came from, named in the error (``--start``, ``competition.json deadline``).

    Raises
    ------
    UserError
        One line naming ``option`` for anything else (another type, a bad date or offset).

    Examples
    --------
    >>> parse_instant("2027-01-31T23:59+02:00", "--start").isoformat()
    '2027-01-31T21:59:00+00:00'
    >>> parse_instant("2026-01-05", "--start").isoformat()
    '2026-01-05T00:00:00+00:00'
    """
    raw = text
    if not isinstance(text, str):
        raise UserError(f"{option} {printable(repr(raw), 60)}: expected a UTC date YYYY-MM-DD or YYYY-MM-DDTHH:MM "
                        "as text")
    text = text.strip()
    offset = _OFFSET.search(text)
    if offset and offset.group("sign") and not _HAS_TIME.search(text):
        offset = None  # "2026-01-05" ends in digits, not in an offset
    shift = dt.timedelta()
    if offset:
        text = text[: offset.start()]
        if offset.group("sign"):
            hours, minutes = int(offset.group("hours")), int(offset.group("minutes"))
            if hours > 23 or minutes > 59:
                raise UserError(f"{option} {printable(raw, 60)!r}: expected a UTC offset within -23:59 and +23:59")
            shift = (1 if offset.group("sign") == "+" else -1) * dt.timedelta(hours=hours, minutes=minutes)
    for fmt in _DATE_FORMATS:
        try:
            moment = dt.datetime.strptime(text.replace("t", "T"), fmt)
        except ValueError:
            continue
        try:
            return (moment - shift).replace(tzinfo=dt.timezone.utc)
        except OverflowError:
            break
    raise UserError(f"{option} {printable(raw, 60)!r}: expected a UTC date YYYY-MM-DD or YYYY-MM-DDTHH:MM "
                    "(a time with Z or an offset such as +02:00 is converted to UTC)")


def parse_deadline(value, option="deadline"):
    """A deadline as an aware UTC datetime, or None for none (None or ``""``).

    As :func:`parse_instant`, but a date alone means its last minute (23:59 UTC). An
    aware datetime is converted to UTC, a naive one is UTC.

    Examples
    --------
    >>> parse_deadline("2027-02-01", "competition.json deadline").isoformat()
    '2027-02-01T23:59:00+00:00'
    >>> parse_deadline("2027-02-01T12:00").isoformat()
    '2027-02-01T12:00:00+00:00'
    >>> parse_deadline(None) is None
    True
    """
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
    moment = parse_instant(value, option)
    if not _HAS_TIME.search(value):
        moment += END_OF_DAY
    return moment


def competition_deadline(metadata):
    """competition.json's ``deadline`` (from its metadata dict) as an aware UTC datetime, or None.

    Examples
    --------
    >>> competition_deadline({"deadline": "2027-02-01T01:59+02:00"}).isoformat()
    '2027-01-31T23:59:00+00:00'
    >>> competition_deadline({}) is None
    True
    """
    return parse_deadline(metadata.get("deadline"), "competition.json deadline")
