"""Where things live: data/, models/, submissions/, leaderboard/ resolve against the working folder."""
import os
import re
from pathlib import Path

from kit.errors import UserError

#: What the public API accepts as a file or folder name.
StrPath = str | os.PathLike

DEFAULT_COMPETITION = "practice"
#: What a competition may be called: a folder name that is safe everywhere it appears.
COMPETITION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
COMPETITION_FILE = "competition.json"


def data_dir(override=None):
    """Folder holding competitions (``data/`` unless overridden)."""
    return Path(override) if override else Path.cwd() / "data"


def models_dir(override=None):
    """Folder holding trained models (``models/`` unless overridden)."""
    return Path(override) if override else Path.cwd() / "models"


def submissions_dir(override=None):
    """Folder holding written submissions (``submissions/`` unless overridden)."""
    return Path(override) if override else Path.cwd() / "submissions"


def leaderboard_dir(override=None):
    """Folder holding leaderboard logs and pages (``leaderboard/`` unless overridden)."""
    return Path(override) if override else Path.cwd() / "leaderboard"


def competition_dir(name_or_dir=None, data=None):
    """Folder of a competition given its name (under ``data/``) or its folder.

    Raises
    ------
    UserError
        When no ``competition.json`` is found there.

    Examples
    --------
    >>> competition_dir("no-such-competition")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    kit.errors.UserError: competition 'no-such-competition' not found ...
    """
    name_or_dir = name_or_dir or DEFAULT_COMPETITION
    candidate = Path(name_or_dir)
    if (candidate / COMPETITION_FILE).is_file():
        return candidate
    named = data_dir(data) / str(name_or_dir)
    if (named / COMPETITION_FILE).is_file():
        return named
    raise UserError(
        f"competition {str(name_or_dir)!r} not found: expected {named / COMPETITION_FILE} "
        f"or a folder with {COMPETITION_FILE} (run `kit prepare` first)"
    )
