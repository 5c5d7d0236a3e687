"""``kit leaderboard``: the ranking table, its Markdown and HTML pages, and classroom mode."""
import argparse
import signal

from kit.errors import UserError
from kit.safetext import printable


def add_parser(subparsers):
    p = subparsers.add_parser(
        "leaderboard",
        help="show the local leaderboard; score a classroom inbox",
        description="Rank the competition's scored submissions (best Public score per participant, ties to the "
        "earliest; scores shown to 5 decimals), print them and export leaderboard/<competition>.csv, .md and "
        ".html from the store of record, private/classroom.sqlite (where the competition's private/ folder is "
        "not here, the CSV export is read instead). Private scores appear only once revealed: --private is the "
        "teacher's reveal (the flag `kit serve`'s POST /api/reveal sets; submissions then close on the server, "
        "the inbox and `kit score`), --hide-private takes it back; private/leaderboard.csv keeps every score at "
        "full precision. With --inbox DIR, first "
        "score each new <participant>__<anything>.csv file in DIR once, enforcing the competition's "
        "max_daily_submissions per participant (UTC days). A file's submission time is when the kit "
        "first saw it, not its modification time: use --watch to look at the inbox every few seconds.",
    )
    p.add_argument("--competition", metavar="NAME|DIR", help="competition name under --data, or its folder (default: practice)")
    p.add_argument("--data", metavar="DIR", help="folder holding competitions (default: ./data)")
    p.add_argument("--leaderboard", metavar="DIR", help="leaderboard folder (default: ./leaderboard)")
    p.add_argument("--private", action="store_true",
                   help="reveal the final ranking (Private scores) to everyone and close submissions")
    p.add_argument("--hide-private", action="store_true",
                   help="take a reveal back: Private scores hidden again, submissions re-open until the deadline")
    p.add_argument("--import-log", metavar="FILE",
                   help="import the rows of a leaderboard CSV written by an earlier version into the store (once)")
    p.add_argument("--inbox", metavar="DIR", help="classroom mode: score the new files in DIR first")
    p.add_argument("--watch", action="store_true",
                   help="with --inbox: keep looking at the inbox (scoring new files, rewriting the pages) "
                   "until Ctrl-C")
    p.add_argument("--interval", metavar="S", default=None,
                   help="with --watch: seconds between two looks at the inbox (default: 5)")
    # Tests and scripts: stop --watch after N looks at the inbox.
    p.add_argument("--polls", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--no-pages", dest="pages", action="store_false", help="print the table only; do not write .md/.html")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:

    if (args.watch or args.interval is not None or args.polls is not None) and not args.inbox:
        raise UserError("--watch, --interval and --polls need --inbox DIR (the folder to watch)")
    if args.interval is not None and not args.watch:
        raise UserError("--interval needs --watch")
    if args.private and args.hide_private:
        raise UserError("--private reveals and --hide-private hides the Private scores: give one of them")
    if args.hide_private or args.import_log:
        _teacher_step(args)
    if args.watch:
        return _watch(args)
    competition, rejected, notes = args.competition, None, []  # None: the last inbox run's refusals
    if args.inbox:
        from kit.board.inbox import process_inbox
        from kit.competition.folder import load_competition

        competition = load_competition(args.competition, data=args.data)
        report = process_inbox(competition, args.inbox, data=args.data, leaderboard=args.leaderboard)
        _print_report(report, set())
        print(report.summary())
        rejected, notes = report.public, report.notes  # the pages name the rule; the terminal had the reasons
    _show(args, competition, rejected, notes)
    return 0


def _teacher_step(args):
    """--hide-private and --import-log: change the store before anything is shown."""
    from kit.board.recording import has_store, import_log, open_store
    from kit.competition.folder import load_competition

    competition = load_competition(args.competition, data=args.data)
    if not has_store(competition):
        raise UserError(f"{competition.path}/private is not here: only the teacher's copy of the competition "
                        "has the store these options change")
    db = open_store(competition, args.leaderboard)
    try:
        if args.import_log:
            notes = []
            added = import_log(db, args.import_log, notes, explicit=True)
            for note in notes:
                print(note)
            print(f"{args.import_log} was imported before; nothing added" if added is None
                  else f"Imported {added} row(s) of {args.import_log} into {db.path} (marked as imported)")
        if args.hide_private:
            db.set_revealed(False)
            print(f"Private scores of {competition.name} are hidden again; submissions re-open until the deadline.")
    finally:
        db.close()


def _print_report(report, told):
    """One line per newly scored file (with its Public score) and per newly rejected file.

    ``told`` holds the rejections already printed (a watch prints each once); it is updated.
    Returns the rejections printed now.
    """

    fresh = [(name, reason) for name, reason in report.rejected if (name, reason) not in told]
    told.update(fresh)
    for name, participant, score in report.scored:
        print(f"scored {printable(name)} for {participant}: Public {score:.5f}")
    for name, participant, chosen in report.finals:
        print(f"final submissions of {participant} ({printable(name)}): "
              f"{', '.join(printable(c) for c in chosen) or 'none (the best Public one counts)'}")
    for name, reason in fresh:
        print(f"rejected {printable(name)}: {printable(reason)}")
    return fresh


def _show(args, competition, rejected, notes):
    from kit.board.leaderboard import build_leaderboard

    standings = build_leaderboard(competition, data=args.data, leaderboard=args.leaderboard, private=args.private,
                                  write_pages=args.pages, rejected=rejected, notes=notes)
    if standings.revealed_now:
        print(f"Revealed the final ranking of {standings.competition}: Private scores are now in every export and "
              "submissions are closed (undo: `kit leaderboard --hide-private`).")
    print(standings.text)
    if args.pages:
        print(f"\nWrote {standings.markdown_path} and {standings.html_path}")
    return standings


def _watch(args):
    """Poll the inbox until Ctrl-C (or SIGTERM); print and re-render only what changed."""

    from kit.board.inbox import DEFAULT_INTERVAL, INTERVAL, POLLS, watch_inbox
    from kit.competition.folder import load_competition
    from kit.constraints import check_param, parse_param

    interval = parse_param(DEFAULT_INTERVAL if args.interval is None else args.interval, "--interval", INTERVAL)
    polls = check_param(args.polls, "--polls", POLLS)
    competition = load_competition(args.competition, data=args.data)
    told, rendered = set(), []

    def on_poll(report):
        fresh = _print_report(report, told)
        if report.scored or fresh or not rendered:
            _show(args, competition, report.public, report.notes)
            print(f"{report.summary()}; looking again every {interval:g} s (Ctrl-C to stop)", flush=True)
            rendered.append(True)

    def stop(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (an embedding program): Ctrl-C only
        previous = None
    try:
        polls = watch_inbox(competition, args.inbox, data=args.data, leaderboard=args.leaderboard,
                            interval=interval, polls=polls, on_poll=on_poll)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(f"Stopped watching {args.inbox} after {polls} look(s).")
    return 0
