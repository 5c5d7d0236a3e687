"""``kit prepare``: build a competition folder from a spectral library."""
import argparse

from kit.constraints import Integral, Interval, argparse_type


def add_parser(subparsers):
    p = subparsers.add_parser(
        "prepare",
        help="build a competition from a spectral library",
        description="Build data/NAME/ (train.mgf, test.mgf, test_pairs.csv, sample_submission.csv, "
        "competition.json; private/solution.csv, private/test_ids.csv, private/manifest.json) from a "
        "spectral library. Test spectra get neutral ids (test_000001 ...) in a shuffled order; the seed "
        "and the map to the library's ids stay in private/. Without --library, a simulated practice "
        "library is generated offline.",
    )
    p.add_argument("--library", nargs="+", metavar="PATH|massbank",
                   help="spectra files (.mgf .msp .mzML .json, .gz allowed) or 'massbank' to download MassBank")
    p.add_argument("--name", help="competition name (default: practice, or the library's file name)")
    p.add_argument("--data", metavar="DIR", help="folder holding competitions, where data/NAME/ is written (default: ./data)")
    # The earlier name of --data, kept so that existing scripts still run.
    p.add_argument("--out", dest="data", metavar="DIR", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0,
                   help="random seed (default 0); for a graded challenge pick a large secret one: "
                   "it is kept in private/manifest.json only")
    p.add_argument("--test-fraction", type=float, default=0.1, metavar="F", help="share of molecules in the test set (default 0.1)")
    p.add_argument("--pairs-per-bin", type=int, default=1000, metavar="K", help="test pairs per Tanimoto bin (default 1000)")
    p.add_argument("--public-fraction", type=float, default=0.3, metavar="P", help="share of Public rows, within 0.03 (default 0.3); Public and Private pairs come from separate "
                   "groups of test molecules")
    p.add_argument("--ionmode", choices=["positive", "negative", "both"], default="both", help="ion mode to keep (default both)")
    p.add_argument("--pair-types", metavar="TYPES",
                   help="test pairs by ion mode: 'same' (positive-positive and negative-negative), 'cross' "
                   "(a positive and a negative spectrum) or 'same,cross'; each type balanced over the bins, cross "
                   "at least a quarter of the rows (default: any two test spectra); use with --ionmode both")
    p.add_argument("--split", default="random", metavar="random|novelty",
                   help="'random' test molecules (default) or 'novelty': whole clusters of similar molecules, a "
                   "share of them unlike every training molecule")
    p.add_argument("--cluster-similarity", metavar="T",
                   help="--split novelty: Tanimoto within which molecules cluster together (Butina; default 0.7)")
    p.add_argument("--novelty-threshold", metavar="T",
                   help="--split novelty: a test molecule is novel below this maximum Tanimoto to training (default 0.6)")
    p.add_argument("--novel-share", metavar="S",
                   help="--split novelty: least share of novel test molecules (default 0.5)")
    p.add_argument("--exclude-licence", "--exclude-license", dest="exclude_licence", action="append", default=[],
                   metavar="LICENCE",
                   help="leave out the records under this licence, in any spelling or version (e.g. CC-BY-NC-ND "
                   "matches 'CC BY-NC-ND 4.0'); repeatable; recorded in competition.json")
    p.add_argument("--jobs", type=argparse_type(Interval(Integral, 1, None), "--jobs"), metavar="N",
                   help="processes that clean the library (default and most: one per CPU); the files are the same for any N")
    p.add_argument("--force", action="store_true", help="replace an existing competition folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args):
    from kit.competition.prepare import NOVELTY_CONSTRAINTS, prepare_competition
    from kit.constraints import parse_param

    prepare_competition(
        library=args.library,
        name=args.name,
        out=args.data,
        seed=args.seed,
        test_fraction=args.test_fraction,
        pairs_per_bin=args.pairs_per_bin,
        public_fraction=args.public_fraction,
        ionmode=args.ionmode,
        force=args.force,
        progress=not args.quiet,
        jobs=args.jobs,
        exclude_licences=args.exclude_licence,
        pair_types=args.pair_types,
        split=args.split,
        **{name: None if getattr(args, name) is None else parse_param(getattr(args, name), option, constraint)
           for option, constraint in NOVELTY_CONSTRAINTS.items()
           for name in [option[2:].replace("-", "_")]},
    )
    return 0
