"""Handing a prepared competition to a hosting platform (Codabench, Kaggle).

Both platforms get the same things: the public files (everything in the competition
folder but ``private/``), the answers with their Public/Private split, and pages written
from ``competition.json`` (:mod:`kit.hosting.pages`).
"""
from pathlib import Path

from kit.deadline import competition_deadline as deadline_of
from kit.deadline import parse_deadline, parse_instant
from kit.errors import UserError

PRIVATE_FOLDER = "private"


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
    """A naive UTC datetime from ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM[:SS]`` (:func:`kit.deadline.parse_instant`).

    A time may end with ``Z`` or a UTC offset (``+02:00``, ``-0500``): it is converted to
    UTC. Without either it is taken as UTC.

    Examples
    --------
    >>> parse_when("2026-01-05", "--start")
    datetime.datetime(2026, 1, 5, 0, 0)
    >>> parse_when("2027-01-31T23:59+02:00", "competition.json deadline")
    datetime.datetime(2027, 1, 31, 21, 59)
    """
    return parse_instant(text, option).replace(tzinfo=None)


def parse_end(text, option):
    """Like :func:`parse_when`, but a day alone means its last minute (23:59): :func:`kit.deadline.parse_deadline`.

    Examples
    --------
    >>> parse_end("2026-06-30", "--end")
    datetime.datetime(2026, 6, 30, 23, 59)
    """
    if text is None or text == "":
        parse_instant(text, option)  # the one-line refusal of a missing end
    return parse_deadline(text, option).replace(tzinfo=None)


def competition_deadline(competition):
    """competition.json's ``deadline`` as a naive UTC datetime, or None when it has none.

    Both exports (Codabench's phase end, Kaggle's ``deadline`` setting) take it from
    :mod:`kit.deadline`, as ``kit serve`` and the classroom inbox do: an offset is
    converted to UTC, a time without one is UTC and a day alone means its last minute.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> competition_deadline(SimpleNamespace(metadata={"deadline": "2027-02-01T01:59+02:00"}))
    datetime.datetime(2027, 1, 31, 23, 59)
    """
    deadline = deadline_of(competition.metadata)
    return None if deadline is None else deadline.replace(tzinfo=None)
