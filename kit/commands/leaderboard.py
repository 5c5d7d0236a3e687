"""``kit leaderboard``: the ranking table, its Markdown and HTML pages, and classroom mode."""
import argparse


def add_parser(subparsers):
    p = subparsers.add_parser(
        "leaderboard",
        help="show the local leaderboard; score a classroom inbox",
        description="Rank leaderboard/<competition>.csv (best Public score per participant, ties to the "
        "earliest), print it and write leaderboard/<competition>.md and .html. With --inbox DIR, first "
        "score each new <participant>__<anything>.csv file in DIR once, enforcing the competition's "
        "max_daily_submissions per participant (UTC days).",
    )
    p.add_argument("--competition", metavar="NAME|DIR", help="competition name under --data, or its folder (default: practice)")
    p.add_argument("--data", metavar="DIR", help="folder holding competitions (default: ./data)")
    p.add_argument("--leaderboard", metavar="DIR", help="leaderboard folder (default: ./leaderboard)")
    p.add_argument("--private", action="store_true", help="reveal Private scores: the final ranking")
    p.add_argument("--inbox", metavar="DIR", help="classroom mode: score the new files in DIR first")
    p.add_argument("--no-pages", dest="pages", action="store_false", help="print the table only; do not write .md/.html")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    from kit.leaderboard import build_leaderboard

    competition, rejected, notes = args.competition, [], []
    if args.inbox:
        from kit.classroom import process_inbox
        from kit.competition import load_competition

        competition = load_competition(args.competition, data=args.data)
        report = process_inbox(competition, args.inbox, data=args.data, leaderboard=args.leaderboard)
        print(report.summary())
        rejected, notes = report.rejected, report.notes
    standings = build_leaderboard(competition, data=args.data, leaderboard=args.leaderboard, private=args.private,
                                  write_pages=args.pages, rejected=rejected, notes=notes)
    print(standings.text)
    if args.pages:
        print(f"\nWrote {standings.markdown_path} and {standings.html_path}")
    return 0
