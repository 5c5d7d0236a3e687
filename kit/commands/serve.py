"""``kit serve``: the classroom submission site for one competition."""
import argparse
import signal
import socket
from numbers import Integral

from kit.constraints import Interval, argparse_type
from kit.errors import UserError
from kit.server.limits import (
    DEFAULT_ANONYMOUS_PER_ADDRESS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_UPLOADS_PER_TOKEN,
)
from kit.server.settings import DEFAULT_UPLOAD_TIMEOUT

_positive_int = argparse_type(Interval(Integral, 1, None))
_port = argparse_type(Interval(Integral, 0, 65535))


def add_parser(subparsers):
    p = subparsers.add_parser(
        "serve",
        help="run the classroom submission site (accounts, server time, live leaderboard)",
        description="Serve one competition over HTTP: students submit from the /submit page or with "
        "`kit submit`; / is the live leaderboard; the API is described at /docs. The database "
        "<competition>/private/classroom.sqlite records everything; the leaderboard log and pages are "
        "exported after each accepted submission. Listens on 127.0.0.1 unless --host says otherwise "
        "(--host 0.0.0.0 for the classroom network; put a reverse proxy in front for HTTPS). "
        "Add participants with `kit participants add`. Ctrl-C stops it.",
    )
    p.add_argument("--competition", metavar="NAME|DIR", help="competition name under --data, or its folder (default: practice)")
    p.add_argument("--data", metavar="DIR", help="folder holding competitions (default: ./data)")
    p.add_argument("--leaderboard", metavar="DIR", help="where the log and pages are exported (default: ./leaderboard)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this computer only)")
    p.add_argument("--port", type=_port, default=8000, help="port to listen on (default: 8000; 0 picks a free one)")
    p.add_argument("--timezone", default="UTC", metavar="TZ",
                   help="time zone whose days the daily limit counts, e.g. Europe/Paris (default: UTC)")
    p.add_argument("--deadline", metavar="ISO", help="close submissions at this time, e.g. 2026-06-30T23:59:00Z "
                   "(default: competition.json's deadline; a time without zone is UTC, a date alone its 23:59 UTC)")
    p.add_argument("--refresh", default=10.0, metavar="S",
                   help="seconds between the live leaderboard page's checks for news (default: 10)")
    p.add_argument("--max-upload-mb", metavar="N", help="largest accepted file in MB (default: 50)")
    p.add_argument("--max-connections", type=_positive_int, default=DEFAULT_MAX_CONNECTIONS, metavar="N",
                   help="connections open at once; past it the oldest one still sending its request headers is "
                   f"dropped (default: {DEFAULT_MAX_CONNECTIONS})")
    p.add_argument("--upload-timeout", default=DEFAULT_UPLOAD_TIMEOUT, metavar="S",
                   help=f"seconds an upload may take to arrive, else 408 (default: {DEFAULT_UPLOAD_TIMEOUT:g})")
    p.add_argument("--request-timeout", default=DEFAULT_REQUEST_TIMEOUT, metavar="S",
                   help=f"seconds any request may take in total (default: {DEFAULT_REQUEST_TIMEOUT:g})")
    p.add_argument("--uploads-per-token", type=_positive_int, default=DEFAULT_UPLOADS_PER_TOKEN, metavar="N",
                   help="uploads one participant may have open at once, else 429 "
                   f"(default: {DEFAULT_UPLOADS_PER_TOKEN})")
    p.add_argument("--anonymous-uploads", type=_positive_int, default=DEFAULT_ANONYMOUS_PER_ADDRESS, metavar="N",
                   help="forms one network address may have open at once before their token has arrived, else "
                   f"429 (default: {DEFAULT_ANONYMOUS_PER_ADDRESS}; a class behind one NAT or reverse proxy shares "
                   "one address: raise it for a class larger than that)")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from kit.board.tokens import TEACHER_TOKEN_FILE, ensure_teacher_token
    from kit.competition.folder import load_competition
    from kit.server.app import create_app
    from kit.server.limits import files_needed, quiet_accept_errors, raise_open_files_limit, uvicorn_config
    from kit.server.settings import Settings

    competition = load_competition(args.competition, data=args.data)
    token, created = ensure_teacher_token(competition.path / "private")
    settings = Settings(leaderboard=args.leaderboard, timezone_name=args.timezone,
                        deadline=args.deadline, max_upload_mb=args.max_upload_mb, refresh_seconds=args.refresh,
                        upload_timeout=args.upload_timeout, request_timeout=args.request_timeout,
                        uploads_per_token=args.uploads_per_token, anonymous_per_address=args.anonymous_uploads)
    app = create_app(competition, settings)
    max_connections = args.max_connections
    open_files = raise_open_files_limit()
    if open_files is not None and open_files < files_needed(max_connections):
        max_connections = max(1, max_connections - (files_needed(max_connections) - open_files))
        print(f"Only {open_files} open files are allowed: serving at most {max_connections} connections at once")
    quiet_accept_errors()
    sock = listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    if created:
        print(f"Teacher token (shown once; kept in {competition.path / 'private' / TEACHER_TOKEN_FILE}): {token}")
    state = app.state.kit
    print(f"Serving {competition.name} at {url(host, port)}  (API: {url(host, port)}docs; Ctrl-C stops)", flush=True)
    if host in ("0.0.0.0", "::"):
        print(f"Listening on every network interface: students open http://<this computer's address>:{port}/")
    if state.deadline is not None:
        print(f"Deadline: {state.deadline.isoformat()}")
    config = uvicorn_config(app, max_connections=max_connections, log_level="info", timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    # uvicorn shuts down gracefully on SIGINT and SIGTERM, then raises the signal again:
    # end quietly with 0 for SIGTERM (a service manager stopping us) and 130 for Ctrl-C.
    previous = signal.signal(signal.SIGTERM, _exit_quietly)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        print("Stopped.")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    print("Stopped.")
    return 0


def _exit_quietly(signum, frame):
    print("Stopped.")
    raise SystemExit(0)


def listen(host, port):
    """A listening TCP socket on ``host:port``; a one-line UserError when that is impossible."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    except (socket.gaierror, UnicodeError) as exc:
        raise UserError(f"cannot listen on {host!r}: unknown address ({exc}); expected an address such as 127.0.0.1") from None
    try:
        sock = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        hint = " (another program, maybe another `kit serve`, uses it: choose --port)" if port else ""
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    sock.set_inheritable(True)
    return sock


def url(host, port):
    """The address to open in a browser."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"
