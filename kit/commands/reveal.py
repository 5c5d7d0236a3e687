"""``kit reveal``: reveal the final ranking of a classroom competition (or hide it again)."""
import argparse


def add_parser(subparsers):
    p = subparsers.add_parser(
        "reveal",
        help="reveal the final (Private) ranking of a classroom competition",
        description="Rank the classroom leaderboard on the Private scores and close submissions: each "
        "participant ranks on the best Private score among their chosen final submissions, else on their "
        "best Public one. --undo hides the Private scores again (the competition stays closed; re-open it "
        "on the /teacher page). With --server the running `kit serve` site is asked, with the teacher "
        "token of private/teacher_token; without, the competition's store is changed directly.",
    )
    p.add_argument("--competition", metavar="NAME|DIR", help="competition name under --data, or its folder (default: practice)")
    p.add_argument("--data", metavar="DIR", help="folder holding competitions (default: ./data)")
    p.add_argument("--undo", action="store_true", help="hide the Private ranking again")
    p.add_argument("--server", metavar="URL", help="the `kit serve` site's address, e.g. http://127.0.0.1:8000")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    from kit.board.store import DB_NAME, Database
    from kit.board.tokens import TEACHER_TOKEN_FILE, read_teacher_token
    from kit.competition.folder import load_competition

    competition = load_competition(args.competition, data=args.data)
    private = competition.path / "private"
    revealed = not args.undo
    if args.server:
        from kit.commands.submit import post_json

        token = read_teacher_token(private / TEACHER_TOKEN_FILE)
        answer = post_json(args.server, "/api/reveal", token, {"revealed": revealed})
        revealed = answer.get("revealed") is True
    else:
        db = Database(private / DB_NAME)
        try:
            db.reveal(revealed)
        finally:
            db.close()
    if revealed:
        print(f"Revealed the final ranking of {competition.name}; submissions are closed.")
    else:
        print(f"Hid the Private ranking of {competition.name} again; submissions stay closed until re-opened.")
    return 0
