"""``kit demo``: the whole pipeline in one command, from a library to a leaderboard.

prepare -> train each rung -> predict -> score -> leaderboard, printing as it goes.
"""
import argparse
import sys
import time

from kit.errors import UserError

LADDER = ("mean", "cosine", "gbm", "siamese", "blend")
# The siamese's defaults are sized for MassBank; the demo keeps its training to about half a
# minute on a laptop. On the practice competition (2 quiet cores, held-out molecules):
# 8 epochs of 20,000 pairs took 21 s for validation RMSE 0.163 (0.185 without the head;
# bench/bench_siamese_variants.py; the gbm: 0.171).
# The blend's booster and siamese get the same budgets as the gbm and siamese rungs.
DEMO_PARAMS = {
    "gbm": {"n_pairs": 10000},
    "siamese": {"epochs": 8, "pairs_per_epoch": 20000},
    "blend": {"n_pairs": 10000, "siamese__epochs": 8, "siamese__pairs_per_epoch": 20000},
}


def run_demo(library=None, name=None, seed=0, rungs=LADDER, fresh=False, data=None, echo=print):
    """Run the whole pipeline; return the leaderboard standings.

    Parameters
    ----------
    library : str or list, optional
        Spectra files or ``"massbank"``; default: the simulated practice library.
    name : str, optional
        Competition name (default ``practice`` or the library's file stem).
    seed : int
    rungs : sequence of str
        Rungs to train, in order.
    fresh : bool
        Prepare the competition again even when its folder exists.

    Examples
    --------
    >>> standings = run_demo(rungs=("mean", "gbm"))   # doctest: +SKIP
    """
    import kit.models
    from kit.board.leaderboard import build_leaderboard
    from kit.board.recording import record_result
    from kit.competition.folder import load_competition
    from kit.competition.prepare import competition_name, prepare_competition
    from kit.data.chemistry import molecule_cache
    from kit.models.training import HeldOut, train_model
    from kit.paths import data_dir
    from kit.scoring.scorer import score_submission
    from kit.scoring.writer import write_submission

    for model in rungs:
        kit.models.get(model)  # unknown names fail before any work
    libraries = [] if library is None else [library] if isinstance(library, str) else list(library)
    name = competition_name(name, libraries)
    started = time.perf_counter()
    echo(f"== 1/4 prepare: competition {name!r}")
    if (data_dir(data) / name).exists() and not fresh:
        comp = load_competition(name, data=data)
        echo(f"using the existing {comp.path} (pass --fresh to prepare it again)")
    else:
        comp = prepare_competition(library=libraries or None, name=name, out=data, seed=seed, force=fresh, echo=echo)
    rows = []
    # Per-molecule work (InChIKeys, fingerprints) is done once for every rung, then kept
    # until the demo ends; the cache closes with it.
    with molecule_cache():
        # Every rung is scored on the same held-out molecules and pairs: split and draw them once.
        held_out = HeldOut.of(comp.train_spectra, seed=seed)
        for step, model in enumerate(rungs, 1):
            echo(f"== 2/4 train {model} ({step}/{len(rungs)})")
            fitted, folder = train_model(model, comp, seed=seed, params=DEMO_PARAMS.get(model), echo=echo,
                                         held_out=held_out)
            echo(f"== 3/4 predict and score {model}")
            # The model was trained in this process, so it is trusted: it predicts here, with no
            # child process to start (kit predict runs a folder from elsewhere in one).
            echo(f"predicting {len(comp.test_pairs):,} pairs of {comp.name} with {folder}")
            path = write_submission(comp, fitted.predict(comp.test_spectra, comp.test_pairs), model=fitted)
            echo(f"wrote {path}")
            result = score_submission(path, comp)
            record_result(result, participant=f"demo-{model}")
            echo(f"{model}: Public RMSE {result.metric.format(result.public)}")
            score = fitted.validation_score_
            rows.append({"rung": model, "validation": score["rmse"], "se": score.get("rmse_se"),
                         "public": result.public, "private": result.private})
    echo("== 4/4 leaderboard")
    standings = build_leaderboard(comp)
    echo(standings.text)
    echo(f"pages: {standings.markdown_path} and {standings.html_path}")
    for line in validation_report(rows):
        echo(line)
    echo(f"demo finished in {time.perf_counter() - started:.0f} s")
    return standings


def best_on_validation(rows):
    """The row with the lowest validation score (ties to the first), or None without rows.

    Examples
    --------
    >>> best_on_validation([{"rung": "gbm", "validation": 0.18}, {"rung": "blend", "validation": 0.17}])["rung"]
    'blend'
    """
    scored = [row for row in rows if row.get("validation") is not None]
    return min(scored, key=lambda row: row["validation"]) if scored else None


def validation_report(rows):
    """Lines comparing each rung's validation score (with its error) against Private, and the pick.

    A learner who prepared the competition holds its solution, so the demo may show Private:
    the point is to see how far the validation score, the only number a competitor
    has before the end, was from it.

    Parameters
    ----------
    rows : list of dict
        ``rung``, ``validation``, ``se`` (its bootstrap standard error, or None),
        ``private`` (None when the competition's Private scores are not at hand).

    Examples
    --------
    >>> rows = [{"rung": "gbm", "validation": 0.187, "se": 0.004, "private": 0.168},
    ...         {"rung": "blend", "validation": 0.171, "se": 0.004, "private": 0.150}]
    >>> print("\\n".join(validation_report(rows)))
    validation (held-out molecules) against Private:
        gbm  0.18700 +- 0.00400  Private 0.16800  (-0.01900)
      blend  0.17100 +- 0.00400  Private 0.15000  (-0.02100)
    best on validation: blend (0.17100 +- 0.00400); on Private it scored 0.15000, 0.02100 below its validation score
    """
    best = best_on_validation(rows)
    if best is None:
        return []
    lines = ["validation (held-out molecules) against Private:"]
    for row in rows:
        if row.get("validation") is None:
            continue
        text = f"  {row['rung']:>5}  {_with_error(row)}"
        if row.get("private") is not None:
            text += f"  Private {row['private']:.5f}  ({row['private'] - row['validation']:+.5f})"
        lines.append(text)
    pick = f"best on validation: {best['rung']} ({_with_error(best)})"
    if best.get("private") is None:
        return [*lines, pick + "; Private is not at hand to compare"]
    gap = best["private"] - best["validation"]
    side = "below" if gap < 0 else "above"
    return [*lines, f"{pick}; on Private it scored {best['private']:.5f}, {abs(gap):.5f} {side} its validation score"]


def _with_error(row):
    se = row.get("se")
    return f"{row['validation']:.5f}" + (f" +- {se:.5f}" if se is not None else "")


def check_rungs(names):
    """Split a comma-separated list of rungs and check each name.

    Examples
    --------
    >>> check_rungs("mean, gbm")
    ('mean', 'gbm')
    """
    import kit.models

    out = tuple(n.strip() for n in names.split(",") if n.strip())
    if not out:
        raise UserError(f"--rungs: expected a comma-separated list of {', '.join(kit.models.available())}, found {names!r}")
    for name in out:
        kit.models.get(name)
    return out


def add_parser(subparsers):
    p = subparsers.add_parser(
        "demo",
        help="run the whole pipeline: prepare, train the ladder, predict, score, leaderboard",
        description="Prepare a competition (default: the simulated practice library), train mean, cosine, "
        "gbm, siamese and blend, write and score a submission for each, and print the leaderboard.",
    )
    p.add_argument("--library", nargs="+", metavar="PATH|massbank",
                   help="spectra files or 'massbank' (default: simulated practice library)")
    p.add_argument("--name", help="competition name")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--rungs", metavar="R1,R2", help="comma-separated rungs to train (default: mean,cosine,gbm,siamese,blend)")
    # The earlier name of --rungs (`kit train --models` is a folder); still accepted, with a warning.
    p.add_argument("--models", dest="old_rungs", help=argparse.SUPPRESS)
    p.add_argument("--fresh", action="store_true", help="prepare the competition again even if it exists")
    p.add_argument("--data", metavar="DIR", help="folder holding competitions (default ./data)")
    p.set_defaults(run=run)


def run(args):
    rungs = args.rungs
    if args.old_rungs is not None:
        if rungs is not None:
            raise UserError("--models is the old name of --rungs: expected one of them, found both")
        print("kit demo: warning: --models is now --rungs", file=sys.stderr)
        rungs = args.old_rungs
    rungs = LADDER if rungs is None else check_rungs(rungs)
    run_demo(library=args.library, name=args.name, seed=args.seed, rungs=rungs, fresh=args.fresh, data=args.data)
    return 0
