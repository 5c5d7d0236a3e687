"""Handing a prepared competition to a hosting platform (Codabench, Kaggle).

Both platforms get the same things: the public files (everything in the competition
folder but ``private/``), the answers with their Public/Private split, and pages written
from ``competition.json`` (:mod:`kit.hosting.pages`).
"""
import datetime as dt
from pathlib import Path

from kit.errors import UserError

PRIVATE_FOLDER = "private"
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")


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
    """A naive UTC datetime from ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM[:SS]`` (a final Z allowed).

    Examples
    --------
    >>> parse_when("2026-01-05", "--start")
    datetime.datetime(2026, 1, 5, 0, 0)
    """
    text = str(text).strip().removesuffix("Z")
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise UserError(f"{option} {text!r}: expected a UTC date YYYY-MM-DD or YYYY-MM-DDTHH:MM")


def parse_end(text, option):
    """Like :func:`parse_when`, but a day alone means its last minute (23:59).

    Examples
    --------
    >>> parse_end("2026-06-30", "--end")
    datetime.datetime(2026, 6, 30, 23, 59)
    """
    moment = parse_when(text, option)
    if len(str(text).strip()) == len("YYYY-MM-DD"):
        moment += dt.timedelta(days=1, minutes=-1)
    return moment
