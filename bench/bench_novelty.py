"""Benchmark the ladder on a novelty split against the random split of the same library and seed.

Usage::

    .venv/bin/python bench/bench_novelty.py [--library ../shared/data/massbank/massbank_positive.mgf.gz]
        [--seed 0] [--rungs mean,cosine,gbm] [--negative ../shared/data/massbank/massbank_negative.mgf.gz]

For each split (``kit prepare``'s default random split by molecule, and ``--split novelty``
with its default settings), in one process: the competition is prepared, each rung is
fitted on its training spectra with default options and seed, predicts the test pairs and
is scored as ``kit score`` scores (Public and Private RMSE; Private RMSE per novelty band
for the novelty split). With ``--negative``, one more run prepares a competition of both
ion modes and ``--pair-types same,cross`` and prints its rows per pair type and bin and the
cross-mode share. Prints Markdown tables; the competitions go to ``--out`` (``--reuse`` takes
those an earlier run left there, e.g. to add ``--rungs siamese``).
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_prepare import DEFAULT_LIBRARY

import kit.models
from kit.competition.folder import load_competition
from kit.competition.prepare import prepare_competition
from kit.data.tanimoto_bins import BIN_LABELS
from kit.scoring.scorer import score_submission
from kit.scoring.writer import write_submission

SPLITS = {"random": {}, "novelty": {"split": "novelty"}}


def ladder(comp, rungs, seed):
    """``(rung, fit seconds, ScoreResult)`` of each rung on one competition."""
    out = []
    train, test, pairs = comp.train_spectra, comp.test_spectra, comp.test_pairs
    for name in rungs:
        model = kit.models.get(name)(seed=seed)
        start = time.perf_counter()
        model.fit(train)
        seconds = time.perf_counter() - start
        path = write_submission(comp, model.predict(test, pairs), model, out_dir=comp.path.parent / "submissions")
        out.append((name, seconds, score_submission(path, comp)))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", default=DEFAULT_LIBRARY, type=Path)
    parser.add_argument("--negative", type=Path, help="a negative-mode library: also prepare --pair-types same,cross")
    parser.add_argument("--seed", default=0, type=int)
    parser.add_argument("--rungs", default="mean,cosine,gbm")
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="bench-novelty-")))
    parser.add_argument("--reuse", action="store_true", help="use the competitions an earlier run left in --out")
    args = parser.parse_args()
    if not args.library.is_file():
        sys.exit(f"library not found: {args.library}")
    rungs = args.rungs.split(",")
    results, bands = {}, {}
    for split, options in SPLITS.items():
        start = time.perf_counter()
        name = f"novelty-bench-{split}"
        if args.reuse and (args.out / name / "competition.json").is_file():
            comp = load_competition(args.out / name)  # same library, options and seed: the same files
        else:
            comp = prepare_competition(args.library, name=name, out=args.out, seed=args.seed, force=True,
                                       progress=False, echo=lambda *_: None, **options)
        print(f"{split}: prepared in {time.perf_counter() - start:.0f} s; split {comp.metadata['split']}")
        if "novelty" in comp.metadata:
            bands = comp.metadata["novelty"]
        results[split] = ladder(comp, rungs, args.seed)
    print()
    print("| rung | random: Private RMSE | novelty: Private RMSE | novelty / random | fit s (random / novelty) |")
    print("|---|---|---|---|---|")
    for (name, fit_r, res_r), (_, fit_n, res_n) in zip(results["random"], results["novelty"]):
        print(f"| {name} | {res_r.private:.5f} | {res_n.private:.5f} | {res_n.private / res_r.private:.2f}x | "
              f"{fit_r:.0f} / {fit_n:.0f} |")
    print()
    labels = bands.get("bands", [])
    print("Novelty split, Private RMSE per novelty band (rows: " + ", ".join(
        f"{label} {bands['rows'][label]:,}" for label in labels) + "; test molecules: " + ", ".join(
        f"{label} {bands['test_molecules_per_band'][label]:,}" for label in labels) + ")")
    print()
    print("| rung | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for name, _, result in results["novelty"]:
        per_band = result.details["Private"]["per_novelty_band_rmse"]
        print(f"| {name} | " + " | ".join("-" if per_band[b] is None else f"{per_band[b]:.5f}" for b in labels) + " |")
    if args.negative:
        pair_types(args)


def pair_types(args):
    """Rows per pair type and bin of ``kit prepare --ionmode both --pair-types same,cross``."""
    start = time.perf_counter()
    comp = prepare_competition([args.library, args.negative], name="pair-types-bench", out=args.out, seed=args.seed,
                               ionmode="both", pair_types="same,cross", force=True, progress=False,
                               echo=lambda *_: None)
    seconds = time.perf_counter() - start
    record = comp.metadata["pair_types"]
    details = comp.load_pair_details().merge(comp.load_solution(), on="id")
    print()
    print(f"--ionmode both --pair-types same,cross: prepared in {seconds:.0f} s, {len(details):,} rows")
    print()
    print("| pair type | " + " | ".join(BIN_LABELS) + " | rows | share | Public share |")
    print("|---|" + "---|" * (len(BIN_LABELS) + 3))
    for pair_type in record["types"]:
        rows = details[details.pair_type == pair_type]
        print(f"| {pair_type} | " + " | ".join(f"{n:,}" for n in record["per_bin"][pair_type])
              + f" | {len(rows):,} | {len(rows) / len(details):.1%} | {(rows.Usage == 'Public').mean():.1%} |")
    for usage in ("Public", "Private"):
        share = (details.pair_type[details.Usage == usage] == "cross").mean()
        print(f"\ncross-mode share of {usage} rows: {share:.1%}")


if __name__ == "__main__":
    main()
