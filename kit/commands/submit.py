"""``kit submit``: send a submission to a classroom server (``kit serve``)."""
import argparse
import json
import os
import sys
from numbers import Integral, Real
from pathlib import Path
from urllib.parse import urlsplit

from kit.constraints import Interval, argparse_type
from kit.errors import UserError
from kit.safetext import printable

#: Environment variable holding the participant token when --token is not given.
TOKEN_ENV = "KIT_TOKEN"
#: Last parts of the address of a page of a ``kit serve`` site: given as --server, the site is the part before.
SITE_PAGES = ("submit", "me", "docs", "leaderboard", "login", "teacher", "index.html", "style.css")


def add_parser(subparsers):
    p = subparsers.add_parser(
        "submit",
        help="submit a file to a classroom server (kit serve)",
        description="Upload FILE to a `kit serve` site and print its Public score, or the server's reason "
        f"for refusing it (exit code 2). The token comes from --token or ${TOKEN_ENV}; prefer the variable, "
        "so it stays out of your shell history and notebooks.",
    )
    p.add_argument("file", metavar="FILE", nargs="?", help="the submission CSV (not with --final)")
    p.add_argument("--server", required=True, metavar="URL", help="the site's address, e.g. http://192.168.1.10:8000")
    p.add_argument("--token", metavar="T", help=f"your participant token (default: ${TOKEN_ENV})")
    p.add_argument("--description", "-m", metavar="TEXT", default="", help="a note shown with the submission (the model, say)")
    p.add_argument("--timeout", type=argparse_type(Interval(Real, 0, None, closed="neither")), default=300.0,
                   metavar="S", help="seconds to wait for the score (default: 300)")
    p.add_argument("--json", action="store_true", help="print the server's JSON answer instead of a sentence")
    p.add_argument("--final", nargs="*", type=argparse_type(Interval(Integral, 1, None)), metavar="ID",
                   help="instead of uploading, choose up to 2 of your scored submissions (their numbers) as final: "
                   "at the reveal you rank on the best Private score among them; --final alone takes the choice back")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    from kit.scoring.metrics import SHOWN_DECIMALS, shown_scores

    token = (args.token or os.environ.get(TOKEN_ENV) or "").strip()
    if not token:
        raise UserError(f"no token: expected --token T or the environment variable {TOKEN_ENV}")
    if args.final is not None:
        if args.file is not None:
            raise UserError(f"FILE {printable(args.file, 80)!r} and --final: expected one of them (upload a file, "
                            "or choose final submissions)")
        answer = post_json(args.server, "/api/final", token, {"submissions": args.final}, timeout=args.timeout)
        if args.json:
            print(json.dumps(answer))
            return 0
        chosen = [n for n in answer.get("submissions") or [] if isinstance(n, int)]
        print(f"Final submission(s) of {printable(answer.get('participant'), 60)}: "
              + (", ".join(f"#{n}" for n in chosen) if chosen else "none (your best Public submission counts)"))
        return 0
    if args.file is None:
        raise UserError("no file: expected the submission CSV to upload (or --final ID ...)")
    path = Path(args.file)
    if not path.is_file():
        raise UserError(f"{path} is not a file: expected the submission CSV to upload")
    # Shown as every score a participant sees, whatever digits a server sends.
    answer = shown_scores(post_submission(args.server, path, token, description=args.description, timeout=args.timeout))
    if args.json:
        print(json.dumps(answer))
        return 0
    for warning in answer.get("warnings") or []:
        print(f"kit submit: warning: {printable(warning, 300)}", file=sys.stderr)
    public = answer.get("public")
    shown = f"{public:.{SHOWN_DECIMALS}f}" if isinstance(public, (int, float)) else printable(public, 40)
    print(f"Scored {printable(path.name, 120)}: Public score {shown} "
          f"({today_count(answer)}by {printable(answer.get('participant'), 60)} at "
          f"{printable(answer.get('submitted_at'), 40)}; id #{answer.get('id')})")
    return 0


def today_count(answer):
    """``"your submission 2 of 5 today, 3 left; "`` from an upload's answer; ``""`` without a daily limit.

    The count is the participant's own (their team's): the server-wide id is shown only as an id.

    Examples
    --------
    >>> today_count({"remaining_today": 3, "daily_limit": 5})
    'your submission 2 of 5 today, 3 left; '
    >>> today_count({"remaining_today": 3}), today_count({"remaining_today": None, "daily_limit": None})
    ('3 left today; ', '')
    """
    left, limit = answer.get("remaining_today"), answer.get("daily_limit")
    if not isinstance(left, int) or isinstance(left, bool):
        return ""
    if isinstance(limit, int) and not isinstance(limit, bool) and 0 <= left <= limit:
        return f"your submission {limit - left} of {limit} today, {left} left; "
    return f"{left} left today; "


def site_address(server):
    """The base address of a ``kit serve`` site, checked; a page's address is refused with the base to use.

    Raises
    ------
    kit.errors.UserError
        For anything but an http(s) address, and for the address of a page of the site
        (``.../submit``, ``.../api/...``, one with ``?query`` or ``#fragment``): the
        message names the base address.

    Examples
    --------
    >>> site_address(" http://10.0.0.5:8000/ ")
    'http://10.0.0.5:8000'
    >>> site_address("http://10.0.0.5:8000/submit")
    Traceback (most recent call last):
    ...
    kit.errors.UserError: server 'http://10.0.0.5:8000/submit' is the address of a page of the site, not of the
    site: use --server http://10.0.0.5:8000
    """
    server = str(server).strip()
    parts = urlsplit(server)
    shown = printable(server, 80)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        bare = "://" not in server and not any(ch.isspace() for ch in server) and urlsplit(f"http://{server}").hostname
        hint = f" (use --server http://{printable(server, 80).rstrip('/')})" if bare else ""
        raise UserError(f"server {shown!r}: expected an address such as http://127.0.0.1:8000{hint}")
    segments = parts.path.rstrip("/").split("/")
    if "api" in segments:
        segments = segments[:segments.index("api")]
    elif segments[-1].lower() in SITE_PAGES:
        segments = segments[:-1]
    base = f"{parts.scheme}://{parts.netloc}{'/'.join(segments)}"
    if segments != parts.path.rstrip("/").split("/") or parts.query or parts.fragment:
        raise UserError(f"server {shown!r} is the address of a page of the site, not of the site: "
                        f"use --server {printable(base, 80)}")
    return base


def post_submission(server, path, token, description="", timeout=300.0):
    """POST ``path`` to ``server``'s ``/api/submissions``; the 201 JSON answer.

    Raises
    ------
    kit.errors.UserError
        The server refused the file (with its message), could not be reached, or did
        not answer like a ``kit serve`` site.

    Examples
    --------
    >>> post_submission("http://127.0.0.1:8000", "submissions/practice/a.csv", token)  # doctest: +SKIP
    {'id': 3, 'participant': 'Ada', 'public': 0.21345, ...}
    """
    import httpx

    endpoint = api_address(server, "/api/submissions")
    try:
        with open(path, "rb") as handle:
            response = httpx.post(
                endpoint,
                headers={"Authorization": f"Bearer {token}"},
                files={"file": (path.name, handle, "text/csv")},
                data={"description": description or ""},
                timeout=httpx.Timeout(timeout, connect=15.0),
            )
    except httpx.WriteError:
        raise UserError(f"{endpoint} closed the connection during the upload: the file may be over the "
                        "server's size cap") from None
    except (httpx.HTTPError, UnicodeEncodeError) as exc:
        _unreachable(endpoint, exc)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    return server_answer(response, endpoint, 201, "the submission")


def post_json(server, path, token, body, timeout=60.0):
    """POST the JSON ``body`` to ``server``'s ``path`` with a Bearer token; the 200 JSON answer.

    Raises
    ------
    kit.errors.UserError
        As :func:`post_submission`.

    Examples
    --------
    >>> post_json("http://127.0.0.1:8000", "/api/final", token, {"submissions": [3]})  # doctest: +SKIP
    {'participant': 'Ada', 'submissions': [3]}
    """
    import httpx

    endpoint = api_address(server, path)
    try:
        response = httpx.post(endpoint, headers={"Authorization": f"Bearer {token}"}, json=body,
                              timeout=httpx.Timeout(timeout, connect=15.0))
    except (httpx.HTTPError, UnicodeEncodeError) as exc:
        _unreachable(endpoint, exc)
    return server_answer(response, endpoint, 200, "the request")


def api_address(server, path):
    """The base address of ``server`` (:func:`site_address`) joined with an API ``path``.

    Examples
    --------
    >>> api_address("http://127.0.0.1:8000/", "/api/final")
    'http://127.0.0.1:8000/api/final'
    """
    return site_address(server) + path


def _unreachable(endpoint, exc):
    if isinstance(exc, UnicodeEncodeError):
        raise UserError("the token has characters a token never has: copy it again from your teacher") from None
    raise UserError(f"cannot reach {endpoint}: {printable(exc, 200) or type(exc).__name__} "
                    "(is `kit serve` running, and is the address right?)") from None


def server_answer(response, endpoint, expected, what):
    """The JSON object of a `kit serve` answer with status ``expected``; a one-line UserError otherwise."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code in (404, 405):
        # A site under another address (a proxy, a page of it): nothing here takes submissions.
        raise UserError(f"{endpoint} answered {response.status_code} (nothing takes submissions there): "
                        "expected --server to be the address of the site's leaderboard page, as the teacher gave it")
    if not isinstance(answer, dict):
        raise UserError(f"{endpoint} answered {response.status_code} without JSON: is this a `kit serve` site?")
    if response.status_code != expected:
        message = printable(answer.get("error") or "no reason given", 1000)
        raise UserError(f"the server refused {what} ({response.status_code}): {message}")
    return answer
