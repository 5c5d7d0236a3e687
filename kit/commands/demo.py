"""``kit demo``: prepare, train every rung, predict, score and show the leaderboard."""


def add_parser(subparsers):
    p = subparsers.add_parser(
        "demo",
        help="run the whole pipeline: prepare, train the ladder, predict, score, leaderboard",
        description="Prepare a competition (default: the simulated practice library), train mean, cosine, "
        "gbm and siamese, write and score a submission for each, and print the leaderboard.",
    )
    p.add_argument("--library", nargs="+", metavar="PATH|massbank", help="spectra files or 'massbank' (default: simulated practice library)")
    p.add_argument("--name", help="competition name")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--models", default="mean,cosine,gbm,siamese", help="comma-separated rungs to train (default: all four)")
    p.add_argument("--fresh", action="store_true", help="prepare the competition again even if it exists")
    p.add_argument("--data", metavar="DIR", help="folder holding competitions (default ./data)")
    p.set_defaults(run=run)


def run(args):
    from kit.demo import check_models, run_demo

    run_demo(library=args.library, name=args.name, seed=args.seed, models=check_models(args.models), fresh=args.fresh, data=args.data)
    return 0
