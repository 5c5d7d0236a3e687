"""``kit participants``: the classroom server's accounts (names and tokens)."""
import argparse
import csv
import sys
from datetime import datetime, timezone
from pathlib import Path

from kit.errors import UserError


def add_parser(subparsers):
    p = subparsers.add_parser(
        "participants",
        help="add, list or revoke participants of the classroom server",
        description="Manage who may submit to `kit serve`. `add` prints one `name,token` CSV line per new "
        "participant, once: only a hash of each token is stored, so hand the tokens out now. Names are "
        "compared ignoring case and look-alike letters (Bob, BOB and ｂｏｂ are one person). The first "
        "call also creates the teacher token (private/teacher_token).",
    )
    sub = p.add_subparsers(dest="participants_command", metavar="ACTION", parser_class=type(p))
    sub.required = True

    def common(parser):
        parser.add_argument("--competition", metavar="NAME|DIR",
                            help="competition name under --data, or its folder (default: practice)")
        parser.add_argument("--data", metavar="DIR", help="folder holding competitions (default: ./data)")

    a = sub.add_parser("add", help="register participants and print their tokens",
                       description="Register NAMEs (or the names in --file, one a line; blank lines and "
                       "lines starting with # are skipped) and print `name,token` lines. All or nothing: "
                       "one refused name adds nobody.")
    a.add_argument("names", nargs="*", metavar="NAME", help="participant names")
    a.add_argument("--file", metavar="FILE", help="a text file with one name a line")
    a.add_argument("--team", metavar="TEAM", help="put them in team TEAM (created when new): a team shares one daily "
                   "allowance, one set of final submissions and one leaderboard row; joining is possible only "
                   "before the team's first scored submission")
    common(a)
    ls = sub.add_parser("list", help="list participants", description="List participants: name, team, status, "
                        "registration time (UTC) and scored submissions.")
    common(ls)
    r = sub.add_parser("revoke", help="revoke a participant's token",
                       description="Revoke NAME's token: it stops working at once; their submissions stay. "
                       "`add NAME` again gives them a new token.")
    r.add_argument("name", metavar="NAME")
    common(r)
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    from kit.board.store import DB_NAME, Database
    from kit.board.tokens import TEACHER_TOKEN_FILE, ensure_teacher_token
    from kit.competition.folder import load_competition

    competition = load_competition(args.competition, data=args.data)
    private = competition.path / "private"
    token, created = ensure_teacher_token(private)
    if created:
        # On stderr: stdout carries the name,token lines a teacher may redirect to a file.
        print(f"Teacher token (shown once; kept in {private / TEACHER_TOKEN_FILE}): {token}", file=sys.stderr)
    db = Database(private / DB_NAME)
    now = datetime.now(timezone.utc)
    try:
        if args.participants_command == "add":
            return _add(db, args, now)
        if args.participants_command == "list":
            return _list(db)
        name = db.revoke_participant(args.name, now)
        print(f"Revoked {name}'s token; their submissions stay on the leaderboard.")
        return 0
    finally:
        db.close()


def _add(db, args, now):
    names = list(args.names)
    if args.file:
        names += read_names(args.file)
    if not names:
        raise UserError("no names given: expected NAME arguments or --file names.txt")
    if args.team is not None:
        db.check_team(args.team)  # before anyone is added: a refused team adds nobody
    added = db.add_participants(names, now)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["name", "token"])
    writer.writerows(added)
    sys.stdout.flush()  # the tokens are out even if joining the team fails below
    print(f"Added {len(added)} participant(s). The tokens are not stored: hand them out now.", file=sys.stderr)
    if args.team is not None:
        team = db.join_team([name for name, _ in added], args.team)
        print(f"In team {team}: one daily allowance, one set of final submissions, one leaderboard row.",
              file=sys.stderr)
    return 0


def read_names(path):
    """Names from a text file: one a line; blank lines and ``#`` comments skipped."""
    path = Path(path)
    try:
        data = path.read_bytes()
        if len(data) > 1 << 20:
            raise UserError(f"{path} is {len(data):,} bytes: expected a short list of names, one a line")
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text: expected one name a line") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    names = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            names.append(line.strip())
    return names


def _list(db):
    rows = db.participants()
    if not rows:
        print("No participants yet: `kit participants add --competition C NAME ...`")
        return 0
    table = [("name", "team", "status", "registered (UTC)", "entries")]
    table += [(r["name"], r["team"] or "-", "revoked" if r["revoked_at"] else "active",
               r["created_at"][:16].replace("T", " "), str(r["entries"])) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0
