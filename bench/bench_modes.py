"""Benchmark the ladder across ion modes: RMSE per pair type of the gbm and the siamese.

Usage::

    nice .venv/bin/python bench/bench_modes.py [--out bench/out/modes] [--seed 0] [--epochs 30]
        [--rungs gbm,siamese,siamese-positive,siamese-plain] [--threads 2]

Prepares (or, with ``--reuse``, takes) ``kit prepare --library massbank_positive massbank_negative
--ionmode both --pair-types same,cross --seed 0``, then in one process fits with default options
and the seed: the gbm and a siamese on all training spectra (both ion modes; each turns on its
cross-mode inputs by itself) and a siamese on the positive training spectra only (and, with
``siamese-plain`` in ``--rungs``, a siamese on both modes without the adduct inputs). Prints the
Private RMSE of each per pair type (the positive-only siamese on positive-positive pairs only)
and each fit's seconds, as a Markdown table, and whether the targets of the ladder across modes
are met.
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_prepare import DEFAULT_LIBRARY

import kit.models
from kit.competition.folder import load_competition
from kit.competition.prepare import prepare_competition
from kit.data.pair_tags import CROSS, PAIR_TYPES, POSITIVE
from kit.scoring.metrics import root_mean_squared_error as rmse

NEGATIVE_LIBRARY = DEFAULT_LIBRARY.parent / "massbank_negative.mgf.gz"
NAME = "modes-bench"


def private_rows(comp):
    """Solution rows of the Private group with their pair type, in the order of the test pairs."""
    solution = comp.load_solution().merge(comp.load_pair_details(), on="id")
    rows = comp.test_pairs.merge(solution, on="id")
    return rows[rows.Usage == "Private"].reset_index(drop=True)


def fit_predict(name, train, test, pairs, seed, epochs, **options):
    """``(fit seconds, predictions)`` of one rung with its default options (but ``options``) and the seed."""
    options = {"seed": seed, **options} if name == "gbm" else {"seed": seed, "epochs": epochs, **options}
    model = kit.models.get(name)(**options)
    start = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - start
    extra = f", metadata {model.metadata_features_}" if name == "siamese" else f", features {model.feature_names_}"
    print(f"{name}: fitted in {seconds:.0f} s on {len(train):,} spectra{extra}", flush=True)
    return seconds, model.predict(test, pairs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/out/modes"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30, help="siamese epochs (its default: 30)")
    parser.add_argument("--rungs", default="gbm,siamese,siamese-positive")
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow threads (the bench's machine: 2 cores)")
    parser.add_argument("--reuse", action="store_true", help="use the competition an earlier run left in --out")
    args = parser.parse_args()
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(args.threads))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(args.threads))
    if args.reuse and (args.out / NAME / "competition.json").is_file():
        comp = load_competition(args.out / NAME)
    else:
        comp = prepare_competition([DEFAULT_LIBRARY, NEGATIVE_LIBRARY], name=NAME, out=args.out, seed=args.seed,
                                   ionmode="both", pair_types="same,cross", force=True, progress=False)
    rows = private_rows(comp)
    train, test = comp.train_spectra, comp.test_spectra
    positive = [s for s in train if str(s.get("ionmode") or "").lower() == "positive"]
    results = {}
    for rung in args.rungs.split(","):
        if rung == "siamese-positive":
            kept = rows[rows.pair_type == POSITIVE].reset_index(drop=True)
            seconds, predicted = fit_predict("siamese", positive, test, kept, args.seed, args.epochs)
            results[rung] = (seconds, {POSITIVE: rmse(kept.similarity.to_numpy(), predicted)})
            continue
        # As `kit train` sets them on a competition of cross-mode pairs (cross_mode_switches);
        # siamese-plain: both modes without the adduct inputs (precursor m/z and ion mode only).
        options = {"gbm": {"cross_mode": True}, "siamese": {"use_adducts": True}}.get(rung, {"use_adducts": False})
        seconds, predicted = fit_predict(rung.removesuffix("-plain"), train, test, rows, args.seed, args.epochs,
                                         **options)
        truth = rows.similarity.to_numpy()
        results[rung] = (seconds, {t: rmse(truth[mask], predicted[mask])
                                   for t in PAIR_TYPES if (mask := (rows.pair_type == t).to_numpy()).any()})
    print(f"\n{len(train):,} training spectra ({len(positive):,} positive), {len(rows):,} Private rows: "
          + ", ".join(f"{t} {int((rows.pair_type == t).sum()):,}" for t in PAIR_TYPES) + "\n")
    print("| rung | " + " | ".join(PAIR_TYPES) + " | fit s |")
    print("|---|" + "---|" * (len(PAIR_TYPES) + 1))
    for rung, (seconds, scores) in results.items():
        cells = " | ".join(f"{scores[t]:.4f}" if t in scores else "-" for t in PAIR_TYPES)
        print(f"| {rung} | {cells} | {seconds:.0f} |")
    if {"gbm", "siamese"} <= results.keys():
        gbm, siamese = results["gbm"][1][CROSS], results["siamese"][1][CROSS]
        print(f"\ncross: siamese {siamese:.4f} vs gbm {gbm:.4f}, {1 - siamese / gbm:+.1%} below (target: 10%)")
    if {"siamese", "siamese-positive"} <= results.keys():
        both, alone = results["siamese"][1][POSITIVE], results["siamese-positive"][1][POSITIVE]
        print(f"positive-positive: both modes {both:.4f} vs positive only {alone:.4f}, {both - alone:+.4f} "
              "(target: at most +0.005)")
    print("training under 15 minutes: " + ", ".join(f"{r} {s / 60:.1f} min" for r, (s, _) in results.items()))


if __name__ == "__main__":
    main()
