"""Talking to Kaggle through the ``kaggle`` package's ``KaggleApi`` (kaggle 1.7 and 2.x).

Downloading, submitting and reading leaderboards work with kaggle 1.7 and 2.x; hosting a
competition (:func:`host`) needs kaggle 2.2 or later, whose ``KaggleApi`` creates, fills and
launches competitions.

``import kaggle`` authenticates on import and prints a long help text when no credentials
exist, so the package is imported only here, only when a Kaggle command runs, after a
cheap check that some credentials are there. Every function takes ``api=`` so that tests
(and notebooks) can pass their own object.
"""
import contextlib
import io
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
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
    from kit.submission_format import read_submission

    expected = None
    if local_competition is not None:
        from kit.competition import as_competition

        expected = as_competition(local_competition, data).test_pairs["id"].to_numpy()
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


# --- hosting a competition ----------------------------------------------------------

#: Where each page goes on Kaggle (page names as ``kaggle competitions pages`` lists them).
KAGGLE_PAGES = {"overview": "description", "evaluation": "evaluation", "data": "data-description", "terms": "rules"}
PRIVACY = ("public", "limited", "private")
#: Kaggle's file for competition_create_new (KaggleApi.COMPETITION_METADATA_FILE).
METADATA_FILE = "competition-metadata.json"
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,48}[a-z0-9])\Z")
STAGING = "<staging>"


@dataclass
class ApiCall:
    """One KaggleApi call of :func:`host`: the method's name and its keyword arguments."""

    method: str
    kwargs: dict

    def describe(self):
        """The call as Python would write it.

        Examples
        --------
        >>> ApiCall("competition_launch", {"competition_name": "c"}).describe()
        "api.competition_launch(competition_name='c')"
        """
        return f"api.{self.method}({', '.join(f'{k}={v!r}' for k, v in self.kwargs.items())})"


@dataclass
class HostPlan:
    """What :func:`host` does: files to stage, calls to make, settings left to the web page."""

    slug: str
    metadata: dict
    pages: dict
    public: list
    solution: Path
    calls: list = field(default_factory=list)
    by_hand: list = field(default_factory=list)

    @property
    def url(self):
        return f"https://www.kaggle.com/competitions/{self.slug}"


def host_plan(competition, slug, *, title=None, launch=False, privacy="public", data=None, staging=STAGING):
    """The KaggleApi calls that host ``competition`` on Kaggle as ``slug``, without making them.

    Parameters
    ----------
    competition : Competition, str or Path
        A prepared competition with its ``private/solution.csv``.
    slug : str
        The competition's address on Kaggle (``kaggle.com/competitions/<slug>``).
    title : str, optional
        Title on Kaggle (default ``Spectral similarity: <name>``).
    launch : bool
        End with ``competition_launch`` (otherwise the competition stays a draft).
    privacy : {"public", "limited", "private"}
        Who can see it (``limited``: only people with the link).
    staging : str
        The folder the files will be staged in (paths in the calls point into it).

    Returns
    -------
    HostPlan

    Examples
    --------
    >>> plan = host_plan("data/practice", "specsim-practice")  # doctest: +SKIP
    >>> [call.method for call in plan.calls][:2]                # doctest: +SKIP
    ['competition_initialize', 'competition_create_new']
    """
    from kit import __version__
    from kit.hosting import public_files
    from kit.hosting.pages import brief_description, build_pages, check_title, daily_limit, default_title
    from kit.competition import as_competition
    from kit.scoring import PRIVATE, load_solution_masks

    slug = str(slug)
    if not _SLUG.match(slug):
        raise UserError(f"--slug {slug!r}: expected 3 to 50 lowercase letters, digits and hyphens, "
                        "as in kaggle.com/competitions/<slug>")
    if privacy not in PRIVACY:
        raise UserError(f"--privacy {privacy!r}: expected one of {', '.join(PRIVACY)}")
    competition = as_competition(competition, data)
    title = check_title(title or default_title(competition))
    if PRIVATE not in load_solution_masks(competition)[2]:
        raise UserError(f"{competition.solution_path}: no Private rows: expected a Public/Private split")
    files = public_files(competition)
    pages = build_pages(competition, files, title=title)
    limit = daily_limit(competition)
    meta = competition.metadata
    metadata = {"title": title, "slug": slug, "briefDescription": brief_description(), "privacy": privacy.upper()}
    plan = HostPlan(slug=slug, metadata=metadata, pages=pages, public=files, solution=competition.solution_path)
    folder = f"{staging}/metadata"
    plan.calls += [
        ApiCall("competition_initialize", {"folder": folder}),
        ApiCall("competition_create_new", {"folder": folder}),
        ApiCall("competition_data_update", {
            "competition_name": slug, "path": f"{staging}/data",
            "version_notes": f"specsim-kit {__version__}: public files of {competition.name}", "quiet": True}),
        ApiCall("competition_create_solution", {"competition_name": slug, "path": str(competition.solution_path),
                                                "quiet": True}),
    ]
    for key, (page_title, _) in pages.items():
        plan.calls.append(ApiCall("competition_create_page", {
            "competition_name": slug, "page_name": KAGGLE_PAGES[key], "content_path": f"{staging}/pages/{key}.md",
            "mime_type": "text/markdown", "post_title": page_title, "publish": True}))
    public_share = float(meta.get("public_fraction", 0.3))
    settings = {
        "brief_description": brief_description(),
        "public_leaderboard_disclaimer_message": (
            f"The public leaderboard scores {public_share:.0%} of the test pairs; the final ranking uses "
            f"the other {1 - public_share:.0%}."),
    }
    if meta.get("deadline"):
        settings["deadline"] = _iso_deadline(meta["deadline"])
    plan.calls.append(ApiCall("competition_update_settings", {"competition_name": slug, "updates": settings}))
    if launch:
        plan.calls.append(ApiCall("competition_launch", {"competition_name": slug}))
    # CompetitionSettings (kaggle 2.2) has no field for these; the host page sets them.
    plan.by_hand = [
        f"evaluation metric: Root Mean Squared Error, on the solution's `similarity` column ({plan.url}/host)",
        f"maximum daily submissions: {limit} (competition.json's max_daily_submissions)",
    ]
    return plan


def host(competition, slug, *, title=None, launch=False, privacy="public", dry_run=False, api=None, data=None,
         echo=print):
    """Create, fill and (with ``launch``) launch a Kaggle competition with KaggleApi 2.x.

    Uploads the public files (everything but ``private/``), the solution with its Usage
    column (Kaggle's Public/Private split), the four pages, and the settings the API
    accepts. With ``dry_run`` it prints every call with its arguments and touches nothing:
    no credentials, no files, no network.

    Returns
    -------
    HostPlan

    Raises
    ------
    UserError
        Bad options, missing credentials, or Kaggle refusing a step (the message names
        the step and the steps already done).
    """
    if dry_run:
        plan = host_plan(competition, slug, title=title, launch=launch, privacy=privacy, data=data)
        echo(f"Dry run: nothing is sent to Kaggle. {STAGING} is a temporary folder holding:")
        echo(f"  {STAGING}/metadata/{METADATA_FILE}: {json.dumps(plan.metadata)}")
        echo(f"  {STAGING}/data/: links to {', '.join(name for name, _ in plan.public)}")
        echo(f"  {STAGING}/pages/: {', '.join(f'{key}.md' for key in plan.pages)}")
        for call in plan.calls:
            echo(call.describe())
        for item in plan.by_hand:
            echo(f"then on Kaggle's host page: {item}")
        return plan
    with tempfile.TemporaryDirectory(prefix="kit-kaggle-") as staging:
        # Options and files are checked before connecting: a mistake costs no sign-in.
        plan = host_plan(competition, slug, title=title, launch=launch, privacy=privacy, data=data, staging=staging)
        api = api or connect()
        _stage(plan, Path(staging))
        done = []
        for call in plan.calls:
            step = call.method.removeprefix("competition_")
            where = f" (done: {', '.join(done)}; finish at {plan.url}/host)" if done else ""
            with _kaggle_errors(f"{step.replace('_', ' ')} for {plan.slug}{where}", plan.slug):
                _make_call(api, call, plan)
            done.append(step)
            echo(f"done: {call.method}")
    for item in plan.by_hand:
        echo(f"still to set on {plan.url}/host: {item}")
    return plan


def _stage(plan, staging):
    """Write the metadata folder, the pages and links to the public files under ``staging``."""
    (staging / "metadata").mkdir()
    (staging / "pages").mkdir()
    for key, (_, text) in plan.pages.items():
        (staging / "pages" / f"{key}.md").write_text(text, encoding="utf-8")
    for name, path in plan.public:
        target = staging / "data" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path.resolve())  # no copy of train.mgf; the upload reads through the link


def _make_call(api, call, plan):
    method = getattr(api, call.method, None)
    if method is None:
        raise UserError(f"the installed kaggle package has no KaggleApi.{call.method}: expected kaggle 2.x "
                        "(pip install 'kaggle>=2.2,<3')")
    if call.method == "competition_initialize":
        with contextlib.redirect_stdout(io.StringIO()):  # it prints where it wrote the template
            written = Path(method(**call.kwargs))
        template = json.loads(written.read_text(encoding="utf-8"))
        template.update(plan.metadata)
        written.write_text(json.dumps(template, indent=2), encoding="utf-8")
        return None
    if call.method == "competition_create_page":
        try:
            return method(**call.kwargs)
        except (OSError, ValueError, RuntimeError) as exc:
            if getattr(getattr(exc, "response", None), "status_code", None) != 409:
                raise
            # Kaggle made the page with the competition: replace its content instead.
            kwargs = dict(call.kwargs)
            kwargs["is_published"] = kwargs.pop("publish")
            return api.competition_update_page(**kwargs)
    return method(**call.kwargs)


def _iso_deadline(value):
    """competition.json's deadline as the ISO-8601 UTC text Kaggle's settings take."""
    from kit.hosting import parse_end

    return parse_end(value, "competition.json deadline").strftime("%Y-%m-%dT%H:%M:%SZ")


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
            409: f"{competition!r} exists already on Kaggle: choose another slug",
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
