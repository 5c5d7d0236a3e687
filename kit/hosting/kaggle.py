"""Talking to Kaggle through the ``kaggle`` package's ``KaggleApi`` (kaggle 1.7 and 2.x).

Downloading, submitting and reading leaderboards work with kaggle 1.7 and 2.x; hosting a
competition (:func:`host`, then :func:`launch`) needs kaggle 2.2 or later, whose
``KaggleApi`` creates, fills and launches competitions. Hosting never launches: Kaggle
has no API field for the metric and the daily limit, so the teacher sets them on the host
page and launches as a separate step, which first checks what the API can check.

``import kaggle`` authenticates on import and prints a long help text when no credentials
exist, so the package is imported only here, only when a Kaggle command runs, after a
cheap check that some credentials are there. Every function takes ``api=`` so that tests
(and notebooks) can pass their own object.
"""
import contextlib
import datetime as dt
import io
import json
import os
import re
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from kit._version import __version__
from kit.competition.folder import PRIVATE, PUBLIC, SAMPLE_FILE, as_competition
from kit.errors import UserError
from kit.fileio import ensure_writable_dir
from kit.hosting.files import competition_deadline, public_files
from kit.hosting.pages import (
    brief_description,
    build_pages,
    check_title,
    daily_limit,
    default_title,
    hosted_licences,
    licence_warning,
)
from kit.safetext import printable
from kit.scoring.metrics import shown_scores
from kit.scoring.reader import read_submission
from kit.scoring.scorer import load_solution_masks, score_submission

#: Rows per leaderboard request (KaggleApi's own default), and the most requests one read makes.
LEADERBOARD_PAGE_SIZE = 20
MAX_LEADERBOARD_PAGES = 1000
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
    expected = None
    if local_competition is not None:
        expected = as_competition(local_competition, data).test_pairs["id"].to_numpy()
    submission = read_submission(file, expected_ids=expected)
    if not str(message or "").strip():
        raise UserError("empty submission message: expected -m 'what changed'")
    api = api or connect()
    with _kaggle_errors(f"submit to {competition}", competition):
        response = api.competition_submit(str(file), message, competition, quiet=True)
    failed = getattr(api, "COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE", None)
    if failed and getattr(response, "message", None) == failed:
        # KaggleApi answers a failed upload with this message instead of raising.
        raise UserError(f"cannot submit to {competition}: the upload of {file} failed "
                        "(check your connection and try again)")
    return submission, response


def leaderboard(competition, *, api=None, page_size=LEADERBOARD_PAGE_SIZE):
    """Kaggle's whole public leaderboard as a list of dicts (team, score, date), best first.

    Kaggle serves it in pages: each ``GetLeaderboard`` request (``ApiGetLeaderboardRequest``
    with ``page_size`` and ``page_token``) answers one page and the ``next_page_token`` of the
    next. ``KaggleApi.competition_leaderboard_view`` returns only the first page and prints
    the token, so the pages are read through the client it builds
    (``api.build_kaggle_client()``). Scores are shown as Kaggle gives them (Kaggle rounds
    them itself); team names as printable text.

    Examples
    --------
    >>> rows = leaderboard("specsim-practice")   # doctest: +SKIP
    >>> rows[0]                                  # doctest: +SKIP
    {'team': 'ada', 'score': '0.12345', 'date': '2026-03-01 10:00'}
    """
    api = api or connect()
    try:
        from kagglesdk.competitions.types.competition_api_service import ApiGetLeaderboardRequest
    except ImportError:
        raise UserError("the kagglesdk package is missing: expected kaggle 1.7 or later "
                        "(pip install 'kaggle>=2.2,<3')") from None
    found, token, seen = [], "", set()
    with _kaggle_errors(f"read the leaderboard of {competition}", competition):
        with api.build_kaggle_client() as kaggle:
            for _ in range(MAX_LEADERBOARD_PAGES):
                request = ApiGetLeaderboardRequest()
                request.competition_name = competition
                request.page_size = page_size
                request.page_token = token
                response = kaggle.competitions.competition_api_client.get_leaderboard(request)
                found += [row for row in response.submissions or [] if row is not None]
                token = response.next_page_token or ""
                if not token or token in seen:  # a token seen before would loop for ever
                    break
                seen.add(token)
    return [
        {
            "team": printable(getattr(row, "team_name", None) or "-", 60),
            "score": printable(getattr(row, "score", None) or "-", 20),
            "date": printable(str(getattr(row, "submission_date", None) or "-")[:16]),
        }
        for row in found
    ]


def format_leaderboard(competition, rows):
    """Kaggle's leaderboard as an aligned text table, the scores as Kaggle wrote them."""
    if not rows:
        return f"{competition}: the Kaggle leaderboard is empty"
    team_width = max(4, *(len(r["team"]) for r in rows))
    lines = [f"{competition} (Kaggle public leaderboard, {len(rows):,} teams)",
             f"{'#':>4}  {'team':<{team_width}}  {'score':>10}  date"]
    lines += [f"{i:>4}  {r['team']:<{team_width}}  {r['score']:>10}  {r['date']}" for i, r in enumerate(rows, 1)]
    return "\n".join(lines)


# --- hosting a competition ----------------------------------------------------------

#: Where each page goes on Kaggle. ``description``, ``evaluation`` and ``rules`` are the
#: names KaggleApi documents; ``data-description`` (the Data tab) is not documented, so a
#: refusal of it is not fatal: the page is kept for the teacher to paste (:func:`host`).
KAGGLE_PAGES = {"overview": "description", "evaluation": "evaluation", "data": "data-description", "terms": "rules"}
DOCUMENTED_PAGES = ("description", "evaluation", "rules")
PRIVACY = ("public", "limited", "private")
DEFAULT_PRIVACY = "limited"
#: Kaggle's file for competition_create_new (KaggleApi.COMPETITION_METADATA_FILE).
METADATA_FILE = "competition-metadata.json"
#: How long :func:`host` waits for Kaggle to process the solution, and how often it asks.
SOLUTION_WAIT_S = 300
POLL_S = 10
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
        >>> ApiCall("competition_get_solution_status", {"competition_name": "c"}).describe()
        "api.competition_get_solution_status(competition_name='c')"
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
    rows: dict = field(default_factory=dict)
    licence_warning: str = None
    calls: list = field(default_factory=list)
    by_hand: list = field(default_factory=list)

    @property
    def url(self):
        return f"https://www.kaggle.com/competitions/{self.slug}"


def host_plan(competition, slug, *, title=None, privacy=DEFAULT_PRIVACY, data=None, staging=STAGING):
    """The KaggleApi calls that host ``competition`` on Kaggle as ``slug``, without making them.

    The plan never launches: Kaggle scores nothing until its metric is chosen on the host
    page, so launching is the separate step :func:`launch`, run once that is done.

    Parameters
    ----------
    competition : Competition, str or Path
        A prepared competition with its ``private/solution.csv``.
    slug : str
        The competition's address on Kaggle (``kaggle.com/competitions/<slug>``).
    title : str, optional
        Title on Kaggle (default ``Spectral similarity: <name>``).
    privacy : {"public", "limited", "private"}
        Who can see it (``limited``, the default: only people with the link).
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
    slug = check_slug(slug)
    if privacy not in PRIVACY:
        raise UserError(f"--privacy {printable(privacy, 40)!r}: expected one of {', '.join(PRIVACY)}")
    competition = as_competition(competition, data)
    title = check_title(title or default_title(competition))
    rows = solution_rows(competition)
    files = public_files(competition)
    pages = build_pages(competition, files, title=title)
    limit = daily_limit(competition)
    meta = competition.metadata
    metadata = {"title": title, "slug": slug, "briefDescription": brief_description(), "privacy": privacy.upper()}
    plan = HostPlan(slug=slug, metadata=metadata, pages=pages, public=files, solution=competition.solution_path,
                    rows=rows,
                    licence_warning=licence_warning(hosted_licences(competition, files)))
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
    deadline = competition_deadline(competition)
    if deadline is not None:
        # Naive UTC: kagglesdk writes a datetime as isoformat() + "Z", so an aware one
        # would go out as "...+00:00Z", which is not RFC 3339.
        settings["deadline"] = deadline
    plan.calls.append(ApiCall("competition_update_settings", {"competition_name": slug, "updates": settings}))
    plan.calls.append(ApiCall("competition_get_solution_status", {"competition_name": slug}))
    # CompetitionSettings (kaggle 2.2) has no field for the metric and the daily limit, and
    # KaggleApi no method for the sample (sandbox) submission: kagglesdk has the request,
    # but it takes a blob whose upload type it does not document. The host page does them.
    plan.by_hand = host_steps(slug, limit, sample_score(competition))
    return plan


def solution_rows(competition):
    """``{"public": n, "private": m}``: the solution's rows of each Usage; a UserError without Private rows."""
    masks = load_solution_masks(competition)[2]
    if PRIVATE not in masks:
        raise UserError(f"{competition.solution_path}: no Private rows: expected a Public/Private split")
    return {"public": int(masks[PUBLIC].sum()), "private": int(masks[PRIVATE].sum())}


def sample_score(competition):
    """The Public score of the competition's sample_submission.csv, as ``kit score`` shows it, or None.

    A sandbox submission of that file on Kaggle must get this score: any other means
    another metric or another column was chosen on the host page, which the API cannot see.
    """
    path = competition.path / SAMPLE_FILE
    return shown_scores(score_submission(path, competition).public) if path.is_file() else None


def host_steps(slug, limit, expected=None):
    """What the teacher sets on Kaggle's host page after :func:`host`, in order, ending with the launch.

    ``expected`` is the sample submission's Public score (:func:`sample_score`).

    Examples
    --------
    >>> host_steps("specsim-class", 5, 0.31234)[2]
    'a sandbox submission of sample_submission.csv: its Public score must be 0.31234, as `kit score` gives it (https://www.kaggle.com/competitions/specsim-class/host)'
    """
    url = f"https://www.kaggle.com/competitions/{slug}/host"
    check = f": its Public score must be {expected:.5f}, as `kit score` gives it" if expected is not None else ""
    return [
        f"evaluation metric: Root Mean Squared Error, solution column `similarity`, id column `id`, "
        f"the Usage column splits Public/Private ({url})",
        f"maximum daily submissions: {limit} (competition.json's max_daily_submissions), on the same page",
        f"a sandbox submission of sample_submission.csv{check} ({url})",
        f"launch: kit kaggle host --slug {slug} --launch-only (it checks the solution, pages and deadline first)",
    ]


def check_slug(slug):
    """``slug`` when it can be a Kaggle competition address; a one-line UserError otherwise.

    Examples
    --------
    >>> check_slug("specsim-class")
    'specsim-class'
    """
    slug = str(slug)
    if not _SLUG.match(slug):
        raise UserError(f"--slug {printable(slug, 60)!r}: expected 3 to 50 lowercase letters, digits and hyphens, "
                        "as in kaggle.com/competitions/<slug>")
    return slug


def host(competition, slug, *, title=None, privacy=DEFAULT_PRIVACY, dry_run=False, api=None, data=None,
         echo=print, wait_s=SOLUTION_WAIT_S, sleep=time.sleep):
    """Create and fill a Kaggle competition with KaggleApi 2.x; it stays a draft.

    Uploads the public files (everything but ``private/``), the solution with its Usage
    column (Kaggle's Public/Private split), the four pages, and the settings the API
    accepts, then waits (up to ``wait_s`` seconds) until Kaggle has processed the solution.
    It never launches: :func:`launch` does, once the metric is set by hand. With
    ``dry_run`` it prints every call with its arguments and touches nothing: no
    credentials, no files, no network.

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
        plan = host_plan(competition, slug, title=title, privacy=privacy, data=data)
        if plan.licence_warning:
            echo(plan.licence_warning)
        echo(f"Dry run: nothing is sent to Kaggle. {STAGING} is a temporary folder holding:")
        echo(f"  {STAGING}/metadata/{METADATA_FILE}: {json.dumps(plan.metadata)}")
        echo(f"  {STAGING}/data/: links to {', '.join(name for name, _ in plan.public)}")
        echo(f"  {STAGING}/pages/: {', '.join(f'{key}.md' for key in plan.pages)}")
        for call in plan.calls:
            echo(call.describe() + ("  # repeated until ready" if call.method == "competition_get_solution_status"
                                    else ""))
        echo(f"then on {plan.url}/host, in this order:")
        for number, item in enumerate(plan.by_hand, 1):
            echo(f"  {number}. {item}")
        return plan
    with tempfile.TemporaryDirectory(prefix="kit-kaggle-") as staging:
        # Options and files are checked before connecting: a mistake costs no sign-in.
        plan = host_plan(competition, slug, title=title, privacy=privacy, data=data, staging=staging)
        if plan.licence_warning:
            echo(plan.licence_warning)
        api = api or connect()
        _stage(plan, Path(staging))
        done = []
        for call in plan.calls:
            step = call.method.removeprefix("competition_")
            where = f" (done: {', '.join(done)}; finish at {plan.url}/host)" if done else ""
            with _kaggle_errors(f"{step.replace('_', ' ')} for {plan.slug}{where}", plan.slug):
                _make_call(api, call, plan, echo, wait_s, sleep)
            done.append(step)
            echo(f"done: {call.method}")
    echo(f"Still to do on {plan.url}/host, in this order:")
    for number, item in enumerate(plan.by_hand, 1):
        echo(f"  {number}. {item}")
    return plan


def launch(slug, *, competition=None, data=None, api=None, echo=print, today=None):
    """Launch a hosted competition after checking what the API can check.

    The checks: Kaggle has processed the solution without error, every column its metric
    needs is mapped, the solution has Public and Private rows (as many as the local
    competition's, when ``competition`` is given), the description, evaluation and rules
    pages are published, and the deadline, if set, is in the future. The metric itself
    and the daily limit are not visible through the API: the teacher sets them first.

    Parameters
    ----------
    slug : str
        The competition's address on Kaggle.
    competition : Competition, str or Path, optional
        The local competition it was hosted from, to compare the row counts with.
    today : datetime.datetime, optional
        Stands in for the current UTC time (tests).

    Raises
    ------
    UserError
        One line listing every check that failed; nothing is launched then.
    """
    slug = check_slug(slug)
    rows = None if competition is None else solution_rows(as_competition(competition, data))
    api = api or connect()
    url = f"https://www.kaggle.com/competitions/{slug}"
    checks = launch_calls(slug)[:-1]
    with _kaggle_errors(f"check {slug} before launching", slug):
        status, pages, settings = (getattr(api, c.method)(**c.kwargs) for c in checks)
    pages = pages or []
    problems = _solution_problems(status, rows)
    published = {str(p.name) for p in pages if p is not None and p.is_published}
    missing = [name for name in DOCUMENTED_PAGES if name not in published]
    if missing:
        problems.append(f"pages not published: {', '.join(missing)}")
    deadline = getattr(settings, "deadline", None)
    now = today or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    if isinstance(deadline, dt.datetime):
        if deadline.tzinfo is not None:
            deadline = deadline.astimezone(dt.timezone.utc).replace(tzinfo=None)
        if deadline <= now:
            problems.append(f"the deadline {deadline:%Y-%m-%d %H:%M} UTC has passed")
    if problems:
        raise UserError(f"not launching {slug}: {'; '.join(problems)} (fix it at {url}/host, then run this again)")
    with _kaggle_errors(f"launch {slug}", slug):
        api.competition_launch(**launch_calls(slug)[-1].kwargs)
    echo(f"done: competition_launch ({url})")


def launch_calls(slug):
    """The KaggleApi calls of :func:`launch`: three checks, then the launch.

    Examples
    --------
    >>> [call.method for call in launch_calls("specsim-class")][-1]
    'competition_launch'
    """
    return [ApiCall("competition_get_solution_status", {"competition_name": slug}),
            ApiCall("competition_list_pages", {"competition": slug}),  # KaggleApi names it so here
            ApiCall("competition_get_settings", {"competition_name": slug}),
            ApiCall("competition_launch", {"competition_name": slug})]


def _solution_problems(status, rows=None):
    """What in Kaggle's solution status stops a launch (an empty list when nothing does)."""
    if status is None:
        return ["Kaggle reports no solution"]
    if status.setup_error:
        return [f"Kaggle could not process the solution: {printable(status.setup_error, 200)}"]
    if not status.ready:
        return ["Kaggle has not finished processing the solution"]
    problems = []
    mapping = status.column_mapping or {}
    unmapped = [printable(c.name, 40) for c in status.required_metric_columns or [] if c and c.name not in mapping]
    if unmapped:
        problems.append(f"metric columns not mapped: {', '.join(unmapped)}")
    info = status.solution_info
    if info is not None:
        have = {"public": info.public_rows or 0, "private": info.private_rows or 0}
        for usage in ("public", "private"):
            expected = (rows or {}).get(usage)
            if not have[usage] or (isinstance(expected, int) and have[usage] != expected):
                wanted = f"{expected:,}" if isinstance(expected, int) else "some"
                problems.append(f"the solution has {have[usage]:,} {usage.capitalize()} rows, expected {wanted}")
    return problems


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


def _make_call(api, call, plan, echo, wait_s, sleep):
    method = getattr(api, call.method, None)
    if method is None:
        raise UserError(f"the installed kaggle package has no KaggleApi.{call.method}: expected kaggle 2.2 or "
                        "later (pip install 'kaggle>=2.2,<3')")
    if call.method == "competition_initialize":
        with contextlib.redirect_stdout(io.StringIO()):  # it prints where it wrote the template
            written = Path(method(**call.kwargs))
        template = json.loads(written.read_text(encoding="utf-8"))
        template.update(plan.metadata)
        written.write_text(json.dumps(template, indent=2), encoding="utf-8")
        return None
    if call.method == "competition_create_page":
        return _create_page(api, method, call, plan, echo)
    if call.method == "competition_get_solution_status":
        return _wait_for_solution(method, call, plan, echo, wait_s, sleep)
    return method(**call.kwargs)


def _create_page(api, method, call, plan, echo):
    """Create a page; replace it when it exists (409); skip the undocumented Data page when refused."""
    try:
        return method(**call.kwargs)
    except (OSError, ValueError, RuntimeError) as exc:
        status = _status(exc)
        if status == 409:
            # Kaggle made the page with the competition: replace its content instead.
            kwargs = dict(call.kwargs)
            kwargs["is_published"] = kwargs.pop("publish")
            return api.competition_update_page(**kwargs)
        name = call.kwargs["page_name"]
        if name in DOCUMENTED_PAGES or status is None or not 400 <= status < 500:
            raise
        key = next(k for k, v in KAGGLE_PAGES.items() if v == name)
        echo(f"note: Kaggle did not take the page name {name!r} ({_one_line(exc)}): "
             f"paste the {plan.pages[key][0]} page by hand")
        plan.by_hand.insert(0, f"the {plan.pages[key][0]} tab: paste the Markdown that "
                               f"`kit kaggle host --slug {plan.slug} --print-page {key}` prints ({plan.url}/host)")
        return None


def _wait_for_solution(method, call, plan, echo, wait_s, sleep):
    """Ask until Kaggle has processed the solution, it reports an error, or ``wait_s`` has passed."""
    waited = 0
    while True:
        status = method(**call.kwargs)
        problems = _solution_problems(status, plan.rows)
        if status is not None and status.setup_error:
            raise UserError(f"{problems[0]} (upload a corrected solution at {plan.url}/host)")
        if status is not None and status.ready:
            for problem in problems:
                echo(f"note: {problem}")
            info = status.solution_info
            if info is not None and not problems:
                echo(f"Kaggle has processed the solution: {info.public_rows or 0:,} Public and "
                     f"{info.private_rows or 0:,} Private rows")
            return status
        if waited >= wait_s:
            echo(f"note: Kaggle is still processing the solution after {waited} s; "
                 f"kit kaggle host --slug {plan.slug} --launch-only checks it again before launching")
            return status
        sleep(POLL_S)
        waited += POLL_S


def _status(exc):
    return getattr(getattr(exc, "response", None), "status_code", None)


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
        status = _status(exc)
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
    return printable(" ".join(str(exc).split()), 300) or type(exc).__name__
