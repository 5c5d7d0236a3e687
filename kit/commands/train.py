"""``kit train MODEL``: fit a rung of the ladder and save it under models/."""
import argparse

USAGE = "%(prog)s MODEL [--competition NAME|DIR] [--seed S] [--data DIR] [--models DIR] [--OPTION VALUE ...]"


def add_parser(subparsers):
    from kit.models import available

    rungs = available()
    p = subparsers.add_parser(
        "train",
        help=f"train a model: {', '.join(rungs)}",
        usage=USAGE,
        add_help=False,
        description="Fit MODEL on the competition's training spectra, score it on held-out molecules that no "
        "step of the fit uses (20% of the training molecules; early stopping and calibration hold out "
        "molecules of their own), with the score's bootstrap standard error, and save the model that was "
        "scored (not refit) to models/<competition>/<model>-<stamp>/. Any model parameter can be "
        "given as an option, e.g. `kit train siamese --epochs 5 --learning-rate 0.0005`; "
        "`kit train MODEL --help` lists them with their defaults.",
    )
    p.add_argument("model", metavar="MODEL", nargs="?", help=f"{', '.join(rungs[:-1])} or {rungs[-1]}")
    p.add_argument("-h", "--help", action="store_true", help="show this help (with MODEL: also its options) and exit")
    p.add_argument("--competition", metavar="NAME|DIR", help="competition (default: practice)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--data", metavar="DIR", help="folder holding competitions (default ./data)")
    p.add_argument("--models", metavar="DIR", help="folder for trained models (default ./models)")
    p.set_defaults(run=run, accepts_model_options=True, parser=p)


def command_options(parser):
    """Names of the command's own options (``competition``, ``seed`` ...), for suggestions."""
    return [a.dest for a in parser._actions if a.option_strings and a.dest != "help"]


def help_text(parser, model=None):
    """The command's help; with ``model``, followed by that rung's options and their defaults.

    The rung's module is not imported (:func:`kit.models.described`): help for the
    siamese rung answers without loading TensorFlow.

    Examples
    --------
    >>> import argparse
    >>> sub = argparse.ArgumentParser(prog="kit").add_subparsers()
    >>> add_parser(sub)
    >>> parser = sub.choices["train"]
    >>> "--n-pairs N" in help_text(parser, "mean")
    True
    """
    import kit.models
    from kit.models.training import rung_options

    text = parser.format_help()
    if model is None:
        return text
    cls = kit.models.described(model)
    own = command_options(parser)
    # A parser of its own only formats the rung's options; the command's parser stays as it was.
    rung = argparse.ArgumentParser(usage=argparse.SUPPRESS, add_help=False)
    group = rung.add_argument_group(f"{model} options ({cls.__module__}.{cls.__name__}"
                                    + ("; --seed above sets its seed)" if "seed" in own else ")"))
    for flag, metavar, meaning in rung_options(cls, skip=own):
        group.add_argument(flag, metavar=metavar, help=meaning.replace("%", "%%"))
    return f"{text}\n{rung.format_help()}"


def model_options(extra):
    """``["--epochs", "5", "--hidden-units=500,500"]`` -> ``{"epochs": "5", "hidden_units": "500,500"}``.

    Examples
    --------
    >>> model_options(["--epochs", "5", "--use-metadata"])
    {'epochs': '5', 'use_metadata': 'true'}
    """
    from kit.errors import UserError

    options, key = {}, None
    for token in extra:
        if token.startswith("--"):
            if key is not None:
                options[key] = "true"
            name, sep, value = token[2:].partition("=")
            key = name.replace("-", "_")
            if not key:
                raise UserError(f"unexpected argument {token!r}: expected model options like --epochs 5")
            if key in options:
                raise UserError(f"option --{name} is given twice: expected each model option once")
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
    import kit.models
    from kit.errors import UserError
    from kit.models.training import model_params, train_model

    if args.help:
        print(help_text(args.parser, args.model), end="")
        return 0
    if args.model is None:
        raise UserError(f"expected MODEL, one of {', '.join(kit.models.available())} (e.g. `kit train gbm`)")
    # Every option is checked before any spectrum is read.
    params = model_params(kit.models.get(args.model), model_options(args.extra), others=command_options(args.parser))
    train_model(
        args.model,
        competition=args.competition,
        seed=args.seed,
        params=params,
        models=args.models,
        data=args.data,
    )
    return 0
