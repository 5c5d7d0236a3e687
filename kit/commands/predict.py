"""``kit predict MODEL_DIR``: write a submission from a saved model."""
from kit.constraints import argparse_type
from kit.models.sandbox import PASSES, parse_duration, parse_size


def add_parser(subparsers):
    p = subparsers.add_parser(
        "predict",
        help="predict the test pairs with a saved model and write a submission",
        description="Load a model saved by `kit train`, predict the competition's test pairs and write "
        "submissions/<competition>/<stamp>_<model>.csv with its .json manifest. The model runs in a child "
        "process with no GPU, a memory limit and a time limit: a model folder may come from anyone.",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a folder written by `kit train`")
    p.add_argument("--competition", metavar="NAME|DIR", help="competition (default: the one the model was trained on)")
    p.add_argument("--data", metavar="DIR", help="folder holding competitions (default ./data)")
    p.add_argument("--submissions", metavar="DIR", help="folder for submissions (default ./submissions)")
    p.add_argument("--memory-limit", metavar="SIZE", default="4GiB",
                   help="memory the model's process may use, e.g. 6GiB or 6000MB (default 4GiB; "
                   "a default-size siamese needs about 2.3GiB)")
    p.add_argument("--time-limit", metavar="SECONDS", default="10m",
                   help="time the model's process may take to load, and again to predict, e.g. 600, 90s or 20m "
                   "(default 10m)")
    p.add_argument("--with-std", action="store_true",
                   help="also write the spread of each prediction (the siamese's Monte Carlo dropout) into "
                   "<submission>.std.csv with columns id,std; the submission stays the same")
    p.add_argument("--passes", metavar="N", type=argparse_type(PASSES, "--passes"), default=10,
                   help="forward passes with dropout on that measure the spread (with --with-std; default 10)")
    p.set_defaults(run=run)


def run(args):
    from kit.models.prediction import predict_competition

    memory_limit, time_limit = parse_size(args.memory_limit), parse_duration(args.time_limit)
    predict_competition(args.model_dir, competition=args.competition, data=args.data, submissions=args.submissions,
                        memory_limit=memory_limit, time_limit=time_limit, with_std=args.with_std,
                        n_passes=args.passes)
    return 0
