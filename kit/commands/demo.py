"""``kit demo``: prepare, train every rung, predict, score and show the leaderboard."""
import argparse


def add_parser(subparsers):
    p = subparsers.add_parser(
        "demo",
        help="run the whole pipeline: prepare, train the ladder, predict, score, leaderboard",
        description="Prepare a competition (default: the simulated practice library), train mean, cosine, "
        "gbm, siamese and blend, write and score a submission for each, and print the leaderboard.",
    )
    p.add_argument("--library", nargs="+", metavar="PATH|massbank", help="spectra files or 'massbank' (default: simulated practice library)")
    p.add_argument("--name", help="competition name")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--rungs", metavar="R1,R2", help="comma-separated rungs to train (default: mean,cosine,gbm,siamese,blend)")
    # The earlier name of --rungs (`kit train --models` is a folder); still accepted, with a warning.
    p.add_argument("--models", dest="old_rungs", help=argparse.SUPPRESS)
    p.add_argument("--fresh", action="store_true", help="prepare the competition again even if it exists")
    p.add_argument("--data", metavar="DIR", help="folder holding competitions (default ./data)")
    p.set_defaults(run=run)


def run(args):
    import sys

    from kit.demo import LADDER, check_rungs, run_demo
    from kit.errors import UserError

    rungs = args.rungs
    if args.old_rungs is not None:
        if rungs is not None:
            raise UserError("--models is the old name of --rungs: expected one of them, found both")
        print("kit demo: warning: --models is now --rungs", file=sys.stderr)
        rungs = args.old_rungs
    rungs = LADDER if rungs is None else check_rungs(rungs)
    run_demo(library=args.library, name=args.name, seed=args.seed, rungs=rungs, fresh=args.fresh, data=args.data)
    return 0
