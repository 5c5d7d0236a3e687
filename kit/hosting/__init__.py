"""Handing a prepared competition to a hosting platform (Codabench, Kaggle).

Both platforms get the same things: the public files (everything in the competition
folder but ``private/``), the answers with their Public/Private split, and pages written
from ``competition.json`` (:mod:`kit.hosting.pages`).
"""
import datetime as dt
import re
from pathlib import Path

from kit.errors import UserError
from kit.safetext import printable

PRIVATE_FOLDER = "private"
_OFFSET = re.compile(r"(?:[Zz]|(?P<sign>[+-])(?P<hours>\d{2}):?(?P<minutes>\d{2}))\Z")
_HAS_TIME = re.compile(r"\d[Tt ]\d")
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
                 "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


def public_files(competition):
    """The files a participant may have: every file of the folder outside ``private/``.

    Hidden files (names starting with a dot: editor and lock files) are left out.

    Parameters
    ----------
    competition : Competition
        A loaded competition.

    Returns
    -------
    list of (str, Path)
        Relative POSIX name and path of each file, sorted by name.

    Raises
    ------
    UserError
        For a symbolic link (it could point into ``private/``) or anything that is not
        a plain file or folder.

    Examples
    --------
    >>> from kit.competition import load_competition
    >>> [name for name, _ in public_files(load_competition("data/practice"))]  # doctest: +SKIP
    ['competition.json', 'sample_submission.csv', 'test.mgf', 'test_pairs.csv', 'train.mgf']
    """
    root = Path(competition.path)
    found = []
    stack = [root]
    while stack:
        folder = stack.pop()
        for entry in sorted(folder.iterdir()):
            relative = entry.relative_to(root).as_posix()
            if entry.name.startswith(".") or relative == PRIVATE_FOLDER:
                continue
            if entry.is_symlink():
                raise UserError(
                    f"{entry} is a symbolic link: expected plain files in a competition folder "
                    "(a link could hand out what private/ holds)"
                )
            if entry.is_dir():
                stack.append(entry)
            elif entry.is_file():
                found.append((relative, entry))
            else:
                raise UserError(f"{entry} is not a regular file: expected plain files in a competition folder")
    if not found:
        raise UserError(f"{root}: no public files found: expected train.mgf, test.mgf and test_pairs.csv")
    return sorted(found)


def parse_when(text, option):
    """A naive UTC datetime from ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM[:SS]``.

    A time may end with ``Z`` or a UTC offset (``+02:00``, ``-0500``): it is converted to
    UTC. Without either it is taken as UTC.

    Examples
    --------
    >>> parse_when("2026-01-05", "--start")
    datetime.datetime(2026, 1, 5, 0, 0)
    >>> parse_when("2027-01-31T23:59+02:00", "competition.json deadline")
    datetime.datetime(2027, 1, 31, 21, 59)
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
                raise UserError(f"{option} {printable(raw, 60)!r}: the UTC offset must be within -23:59 and +23:59")
            shift = (1 if offset.group("sign") == "+" else -1) * dt.timedelta(hours=hours, minutes=minutes)
    for fmt in _DATE_FORMATS:
        try:
            moment = dt.datetime.strptime(text.replace("t", "T"), fmt)
        except ValueError:
            continue
        try:
            return moment - shift
        except OverflowError:
            break
    raise UserError(f"{option} {printable(raw, 60)!r}: expected a UTC date YYYY-MM-DD or YYYY-MM-DDTHH:MM "
                    "(a time with Z or an offset such as +02:00 is converted to UTC)")


def parse_end(text, option):
    """Like :func:`parse_when`, but a day alone means its last minute (23:59).

    Examples
    --------
    >>> parse_end("2026-06-30", "--end")
    datetime.datetime(2026, 6, 30, 23, 59)
    """
    moment = parse_when(text, option)
    if not _HAS_TIME.search(text):
        moment += dt.timedelta(days=1, minutes=-1)
    return moment


def competition_deadline(competition):
    """competition.json's ``deadline`` as a naive UTC datetime, or None when it has none.

    Both exports (Codabench's phase end, Kaggle's ``deadline`` setting) take it from here:
    an offset is converted to UTC and a day alone means its last minute.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> competition_deadline(SimpleNamespace(metadata={"deadline": "2027-02-01T01:59+02:00"}))
    datetime.datetime(2027, 1, 31, 23, 59)
    """
    value = competition.metadata.get("deadline")
    if value in (None, ""):
        return None
    return parse_end(value, "competition.json deadline")
