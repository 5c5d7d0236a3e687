"""Are the binned matrices and pair features of one checkout identical to another's?

The kit bins m/z in one place (``kit.data.binning``); the gradient-boosting features and the
siamese input both go through it. This script saves, for a competition's test spectra and
pairs, the siamese's binned matrix, the features' binned peak and neutral-loss matrices and
the full pair-feature table, so that two checkouts can be compared byte for byte:

    PYTHONPATH=/path/to/old .venv/bin/python bench/bench_binner_identity.py save data/practice old.npz
    PYTHONPATH=. .venv/bin/python bench/bench_binner_identity.py save data/practice new.npz
    .venv/bin/python bench/bench_binner_identity.py compare old.npz new.npz

``compare`` prints one line per array and exits with 1 when any differs.
"""
import argparse
import sys

import numpy as np

import kit
from kit.data import binning
from kit.models import features


def _sparse_arrays(prefix, matrix):
    matrix = matrix.tocsr()
    return {f"{prefix}_data": matrix.data, f"{prefix}_indices": matrix.indices, f"{prefix}_indptr": matrix.indptr,
            f"{prefix}_shape": np.asarray(matrix.shape)}


def save(competition, out, max_pairs):
    comp = kit.load_competition(competition)
    spectra = comp.test_spectra
    position = {s.get("spectrum_id"): row for row, s in enumerate(spectra)}
    pairs = comp.test_pairs.head(max_pairs)
    idx_a = pairs["spectrum_id_a"].map(position).to_numpy()
    idx_b = pairs["spectrum_id_b"].map(position).to_numpy()
    arrays = {}
    arrays.update(_sparse_arrays("siamese", binning.bin_spectra(spectra)))
    arrays.update(_sparse_arrays("peaks", features.peak_matrix(spectra)))
    arrays.update(_sparse_arrays("losses", features.neutral_loss_matrix(spectra, features.precursor_mz(spectra))))
    arrays["pair_features"] = features.pair_features(spectra, idx_a, idx_b).to_numpy()
    np.savez(out, **arrays)
    print(f"saved {len(arrays)} arrays for {len(spectra):,} spectra and {len(pairs):,} pairs to {out}")


def compare(old, new):
    a, b = np.load(old), np.load(new)
    differ = sorted(set(a.files) ^ set(b.files))
    for name in sorted(set(a.files) & set(b.files)):
        same = a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f")
        print(f"{name:22s} {a[name].dtype} {a[name].shape}: {'identical' if same else 'DIFFERENT'}")
        if not same:
            differ.append(name)
    print("all identical" if not differ else f"different: {', '.join(differ)}")
    return 1 if differ else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    saving = commands.add_parser("save")
    saving.add_argument("competition")
    saving.add_argument("out")
    saving.add_argument("--max-pairs", type=int, default=2000)
    comparing = commands.add_parser("compare")
    comparing.add_argument("old")
    comparing.add_argument("new")
    args = parser.parse_args(argv)
    if args.command == "save":
        save(args.competition, args.out, args.max_pairs)
        return 0
    return compare(args.old, args.new)


if __name__ == "__main__":
    sys.exit(main())
