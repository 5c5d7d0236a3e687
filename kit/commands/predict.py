"""``kit predict MODEL_DIR``: write a submission from a saved model."""


def add_parser(subparsers):
    p = subparsers.add_parser(
        "predict",
        help="predict the test pairs with a saved model and write a submission",
        description="Load a model saved by `kit train`, predict the competition's test pairs and write "
        "submissions/<competition>/<stamp>_<model>.csv with its .json manifest.",
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a folder written by `kit train`")
    p.add_argument("--competition", metavar="NAME|DIR", help="competition (default: the one the model was trained on)")
    p.add_argument("--data", metavar="DIR", help="folder holding competitions (default ./data)")
    p.add_argument("--submissions", metavar="DIR", help="folder for submissions (default ./submissions)")
    p.set_defaults(run=run)


def run(args):
    from kit.prediction import predict_competition

    predict_competition(args.model_dir, competition=args.competition, data=args.data, submissions=args.submissions)
    return 0
