"""``kit score``: validate a submission, score it like the leaderboard, log the result."""
import argparse


def add_parser(subparsers):
    p = subparsers.add_parser(
        "score",
        help="score a submission file locally (exactly the leaderboard's metric)",
        description="Check SUBMISSION (header id,similarity; one row per test pair; finite numbers), "
        "print its Public score with diagnostics (per-bin RMSE, binned RMSE, MAE, Pearson r) and "
        "append a row to leaderboard/<competition>.csv. An invalid file gets one line naming the "
        "rule it breaks, exit code 2, and is not logged.",
    )
    p.add_argument("submission", metavar="SUBMISSION", help="the CSV file to score")
    p.add_argument("--competition", metavar="NAME|DIR", help="competition name under --data, or its folder (default: practice)")
    p.add_argument("--data", metavar="DIR", help="folder holding competitions (default: ./data)")
    p.add_argument("--participant", metavar="WHO", help="name on the leaderboard (default: the submission's manifest, else $USER)")
    p.add_argument("--private", action="store_true", help="also print the Private score (hidden on a real leaderboard)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    p.add_argument("--leaderboard", metavar="DIR", help="leaderboard folder (default: ./leaderboard)")
    p.add_argument("--no-log", dest="log", action="store_false", help="do not append the result to the leaderboard log")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from kit.scoring import score_submission

    result = score_submission(args.submission, args.competition, data=args.data)
    for warning in result.warnings:
        print(f"kit score: warning: {warning}", file=sys.stderr)
    logged = None
    if args.log:
        from kit.leaderboard import record_result

        logged = record_result(result, participant=args.participant, leaderboard=args.leaderboard)
    if args.json:
        print(json.dumps(result.to_dict(private=args.private)))
    else:
        print(result.format(private=args.private))
        if logged is not None:
            print(f"Logged to {logged}; see `kit leaderboard`.")
    return 0
