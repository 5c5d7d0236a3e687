"""``kit train MODEL``: fit a rung of the ladder and save it under models/."""


def add_parser(subparsers):
    p = subparsers.add_parser(
        "train",
        help="train a model (mean, cosine, gbm, siamese)",
        description="Fit MODEL on the competition's training spectra, score it on a validation split "
        "by molecule, and save it to models/<competition>/<model>-<stamp>/. Any model parameter can be "
        "given as an option, e.g. `kit train siamese --epochs 5 --learning-rate 0.0005`.",
    )
    p.add_argument("model", metavar="MODEL", help="mean, cosine, gbm or siamese")
    p.add_argument("--competition", metavar="NAME|DIR", help="competition (default: practice)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--data", metavar="DIR", help="folder holding competitions (default ./data)")
    p.add_argument("--models", metavar="DIR", help="folder for trained models (default ./models)")
    p.set_defaults(run=run, accepts_model_options=True)


def model_options(extra):
    """``["--epochs", "5", "--hidden-units=500,500"]`` -> ``{"epochs": "5", "hidden_units": "500,500"}``."""
    from kit.errors import UserError

    options, key = {}, None
    for token in extra:
        if token.startswith("--"):
            if key is not None:
                options[key] = "true"
            name, sep, value = token[2:].partition("=")
            key = name.replace("-", "_")
            if sep:
                options[key], key = value, None
        elif key is not None:
            options[key], key = token, None
        else:
            raise UserError(f"unexpected argument {token!r}: expected model options like --epochs 5")
    if key is not None:
        options[key] = "true"
    return options


def run(args):
    from kit.training import train_model

    train_model(
        args.model,
        competition=args.competition,
        seed=args.seed,
        params=model_options(args.extra),
        models=args.models,
        data=args.data,
    )
    return 0
