"""Handing a prepared competition to a hosting platform (Codabench, Kaggle).

Both platforms get the same things: the public files (``competition.json`` and the files
it lists with their hashes, exactly what ``kit prepare`` wrote for participants), the
answers with their Public/Private split, and pages written from ``competition.json``
(:mod:`kit.hosting.pages`).
"""
import os
import stat
from pathlib import Path, PurePosixPath

from kit.competition.deadline import competition_deadline as deadline_of
from kit.competition.deadline import parse_deadline, parse_instant
from kit.errors import UserError
from kit.fileio import sha256_file
from kit.paths import COMPETITION_FILE
from kit.safetext import printable

PRIVATE_FOLDER = "private"


def public_files(competition):
    """The files a participant may have: ``competition.json`` and the files it lists, checked.

    ``kit prepare`` records the sha256 of each public file in ``competition.json``'s
    ``files``; exactly those are published, whatever else the folder holds (a leaderboard
    log with Private scores, a lock, notes). Each must be there, a regular file reached
    without a link, outside ``private/``, with the recorded hash.

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
        One line: no list of files, a listed name outside the folder or in ``private/``,
        a listed file missing, a link or not a regular file, or with another hash.

    Examples
    --------
    >>> from kit.competition.folder import load_competition
    >>> [name for name, _ in public_files(load_competition("data/practice"))]  # doctest: +SKIP
    ['competition.json', 'sample_submission.csv', 'test.mgf', 'test_pairs.csv', 'train.mgf']
    """
    root = Path(competition.path)
    listing = root / COMPETITION_FILE
    listed = competition.file_hashes
    if not listed:
        raise UserError(f"{listing} lists no public files: expected the 'files' hashes kit prepare writes "
                        "(rebuild the competition with kit prepare)")
    found = [(COMPETITION_FILE, _checked_file(root, COMPETITION_FILE))]
    for name, digest in listed.items():
        path = _checked_file(root, name)
        if not isinstance(digest, str) or sha256_file(path) != digest.lower():
            raise UserError(f"{path} differs from what kit prepare wrote: expected the sha256 {listing.name} "
                            f"records, found another (rebuild the competition with kit prepare, or restore the file)")
        found.append((str(name), path))
    return sorted(found)


def _checked_file(root, name):
    """``root / name`` for a listed public file; a UserError unless it is a plain file of the folder."""
    shown = printable(repr(name), 80)
    parts = PurePosixPath(name).parts if isinstance(name, str) else ()
    if (not parts or PurePosixPath(name).is_absolute() or "\\" in name
            or any(p in ("", ".", "..") or p.startswith(".") for p in parts) or parts[0] == PRIVATE_FOLDER):
        raise UserError(f"{root / COMPETITION_FILE} lists {shown}: expected names of public files inside the "
                        f"competition folder (not in {PRIVATE_FOLDER}/)")
    path = root.joinpath(*parts)
    folder = root
    for part in parts:
        folder = folder / part
        try:
            info = os.lstat(folder)
        except FileNotFoundError:
            raise UserError(f"{path} is missing: {COMPETITION_FILE} lists it as a public file "
                            "(rebuild the competition with kit prepare, or restore the file)") from None
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
        if stat.S_ISLNK(info.st_mode):
            raise UserError(f"{folder} is a symbolic link: expected plain files in a competition folder "
                            "(a link could hand out what private/ holds)")
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{path} is not a regular file: expected plain files in a competition folder")
    return path


def parse_when(text, option):
    """A naive UTC datetime from ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM[:SS]`` (:func:`kit.competition.deadline.parse_instant`).

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
    """Like :func:`parse_when`, but a day alone means its last minute (23:59): :func:`kit.competition.deadline.parse_deadline`.

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
    :mod:`kit.competition.deadline`, as ``kit serve`` and the classroom inbox do: an offset is
    converted to UTC, a time without one is UTC and a day alone means its last minute.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> competition_deadline(SimpleNamespace(metadata={"deadline": "2027-02-01T01:59+02:00"}))
    datetime.datetime(2027, 1, 31, 23, 59)
    """
    deadline = deadline_of(competition.metadata)
    return None if deadline is None else deadline.replace(tzinfo=None)
