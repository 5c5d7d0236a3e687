"""Talking to Kaggle through the ``kaggle`` package's ``KaggleApi`` (kaggle 1.7 and 2.x).

``import kaggle`` authenticates on import and prints a long help text when no credentials
exist, so the package is imported only here, only when a Kaggle command runs, after a
cheap check that some credentials are there. Every function takes ``api=`` so that tests
(and notebooks) can pass their own object.
"""
import contextlib
import io
import os
import zipfile
from pathlib import Path

from kit.errors import UserError

CREDENTIALS_HELP = (
    "no Kaggle credentials found: set KAGGLE_API_TOKEN to the token from "
    "https://www.kaggle.com/settings/api (or save it in ~/.kaggle/access_token), "
    "or put your username and key in ~/.kaggle/kaggle.json"
)


def credential_source(environ=None, home=None):
    """Where Kaggle credentials would come from, or None when there are none.

    Mirrors the places the ``kaggle`` package looks: ``KAGGLE_API_TOKEN``,
    ``KAGGLE_USERNAME`` + ``KAGGLE_KEY``, ``~/.kaggle/access_token``, ``kaggle.json`` in
    ``KAGGLE_CONFIG_DIR``, ``~/.kaggle`` or ``~/.config/kaggle``, and OAuth credentials.

    Examples
    --------
    >>> credential_source({"KAGGLE_API_TOKEN": "abc"})
    'KAGGLE_API_TOKEN'
    >>> credential_source({}, home="/nonexistent") is None
    True
    """
    environ = os.environ if environ is None else environ
    if environ.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    if environ.get("KAGGLE_USERNAME") and environ.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME/KAGGLE_KEY"
    home = Path(home) if home is not None else Path.home()
    folders = [Path(environ["KAGGLE_CONFIG_DIR"])] if environ.get("KAGGLE_CONFIG_DIR") else []
    xdg = Path(environ["XDG_CONFIG_HOME"]) if environ.get("XDG_CONFIG_HOME") else home / ".config"
    folders += [home / ".kaggle", xdg / "kaggle"]
    for folder in folders:
        for name in ("access_token", "access_token.txt", "kaggle.json", "credentials.json"):
            if (folder / name).is_file():
                return str(folder / name)
    return None


def connect():
    """An authenticated ``KaggleApi``; a one-line :class:`UserError` without credentials."""
    if credential_source() is None:
        raise UserError(CREDENTIALS_HELP)
    noise = io.StringIO()
    try:
        # The package prints its own help (and calls exit) when authentication fails.
        with contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
            from kaggle.api.kaggle_api_extended import KaggleApi

            api = KaggleApi()
            api.authenticate()
    except ImportError:
        raise UserError("the kaggle package is not installed: expected `pip install kaggle`") from None
    except SystemExit:
        raise UserError(f"Kaggle did not accept the credentials in {credential_source()}; {CREDENTIALS_HELP}") from None
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"cannot sign in to Kaggle: {_one_line(exc)}") from None
    return api


def download(competition, path=None, *, api=None, unzip=True):
    """Download a Kaggle competition's files into ``path`` (default ``data/<competition>``).

    Calls ``api.competition_download_files(competition, path=...)`` and, with ``unzip``,
    extracts the archive safely (no member may land outside ``path``) and removes it.

    Returns
    -------
    Path
        The folder holding the files.
    """
    from kit.fileio import ensure_writable_dir

    api = api or connect()  # first: without credentials, nothing is created
    folder = ensure_writable_dir(Path(path) if path else Path.cwd() / "data" / competition)
    with _kaggle_errors(f"download {competition}", competition):
        api.competition_download_files(competition, path=str(folder))
    archive = folder / f"{competition}.zip"
    if unzip and archive.is_file():
        _safe_extract(archive, folder)
        archive.unlink()
    return folder


def submit(file, message, competition, *, api=None, local_competition=None, data=None):
    """Check a submission locally, then send it with ``api.competition_submit(file, message, competition)``.

    Parameters
    ----------
    file : str or Path
        The CSV to submit.
    message : str
        The submission description shown on Kaggle.
    competition : str
        Kaggle's competition slug.
    local_competition : Competition, str or Path, optional
        A local copy of the competition: the file is then checked against its ids.
        Without it the file's shape is checked (header, whole-number unique ids, finite values).

    Returns
    -------
    (Submission, object)
        The checked submission and Kaggle's response.

    Raises
    ------
    kit.SubmissionError
        The file is invalid; nothing is sent.
    """
    from kit.validation import read_submission

    expected = None
    if local_competition is not None:
        from kit.scoring import _as_competition

        expected = _as_competition(local_competition, data).test_pairs["id"].to_numpy()
    submission = read_submission(file, expected_ids=expected)
    if not str(message or "").strip():
        raise UserError("empty submission message: expected -m 'what changed'")
    api = api or connect()
    with _kaggle_errors(f"submit to {competition}", competition):
        response = api.competition_submit(str(file), message, competition)
    return submission, response


def leaderboard(competition, *, api=None):
    """Kaggle's public leaderboard as a list of dicts (team, score, date), best first.

    Calls ``api.competition_leaderboard_view(competition)``.
    """
    api = api or connect()
    with _kaggle_errors(f"read the leaderboard of {competition}", competition):
        rows = api.competition_leaderboard_view(competition) or []
    return [
        {
            "team": str(_field(row, "team_name", "teamName") or "-"),
            "score": str(_field(row, "score", "publicScore") or "-"),
            "date": str(_field(row, "submission_date", "submissionDate") or "-"),
        }
        for row in rows
        if row is not None
    ]


def format_leaderboard(competition, rows):
    """Kaggle's leaderboard as an aligned text table."""
    if not rows:
        return f"{competition}: the Kaggle leaderboard is empty"
    team_width = max(4, *(len(r["team"]) for r in rows))
    lines = [f"{competition} (Kaggle public leaderboard)", f"{'#':>4}  {'team':<{team_width}}  {'score':>10}  date"]
    lines += [f"{i:>4}  {r['team']:<{team_width}}  {r['score']:>10}  {r['date'][:16]}" for i, r in enumerate(rows, 1)]
    return "\n".join(lines)


def _field(row, *names):
    for name in names:
        if isinstance(row, dict) and name in row:
            return row[name]
        if hasattr(row, name):
            return getattr(row, name)
    return None


@contextlib.contextmanager
def _kaggle_errors(action, competition):
    """Turn network and HTTP failures into one line that says what to try."""
    try:
        yield
    except UserError:
        raise
    except SystemExit:
        raise UserError(f"cannot {action}: Kaggle refused the credentials; {CREDENTIALS_HELP}") from None
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        hint = {
            401: "check your credentials",
            403: f"accept the competition rules at https://www.kaggle.com/competitions/{competition}/rules",
            404: f"no competition {competition!r} on Kaggle (use the slug from its address)",
        }.get(status, "check the competition name and your connection")
        raise UserError(f"cannot {action}: {_one_line(exc)} ({hint})") from None


def _safe_extract(archive, folder):
    """Extract a zip, refusing members that would land outside ``folder``."""
    folder = Path(folder).resolve()
    try:
        with zipfile.ZipFile(archive) as zipped:
            for member in zipped.infolist():
                target = (folder / member.filename).resolve()
                if folder != target and folder not in target.parents:
                    raise UserError(f"{archive}: refusing to extract {member.filename!r} outside {folder}")
            zipped.extractall(folder)
    except zipfile.BadZipFile as exc:
        raise UserError(f"{archive} is not a valid zip archive: {exc}") from None


def _one_line(exc):
    return " ".join(str(exc).split())[:300] or type(exc).__name__
