"""Benchmark the Public/Private test pairs of ``kit prepare`` on MassBank's molecules.

Usage::

    .venv/bin/python bench/bench_split.py [--library ../shared/data/massbank/massbank_positive.mgf.gz] [--seeds 3]

The test molecules are drawn as ``kit prepare`` draws them (10% of the molecules, by
InChIKey block, each with its spectra). For each seed, in one process: the test pairs
drawn over all test molecules with a random Public share of rows (the scheme before
groups), and the pairs drawn within a Public and a Private group of molecules
(``split_test_pairs``): time, Public share, rows, and the Private labels that Public ones
give away (``private_rows_known_from_public``). Times are CPU seconds of this process
(all threads), steadier than wall time on a shared machine. Prints a Markdown table.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_prepare import DEFAULT_LIBRARY, library_molecules  # noqa: E402

from kit.data.chemistry import fingerprints, group_indices  # noqa: E402
from kit.data.pairs import (  # noqa: E402
    balanced_test_pairs,
    identity_groups,
    private_rows_known_from_public,
    split_molecules,
    split_test_pairs,
)


def one_seed(fps, spectra_of, identity, seed, pairs_per_bin=1000, fraction=0.3):
    rows = []
    rng = np.random.default_rng(seed)
    start = time.process_time()
    pairs, labels, _ = balanced_test_pairs(fps, spectra_of, pairs_per_bin, rng)
    public = np.zeros(len(pairs), dtype=bool)
    public[rng.permutation(len(pairs))[: round(fraction * len(pairs))]] = True
    elapsed = time.process_time() - start
    rows.append(("Usage per row, all test molecules", elapsed, pairs, labels, public))
    start = time.process_time()
    drawn = split_test_pairs(fps, spectra_of, pairs_per_bin, fraction, np.random.default_rng(seed),
                             np.random.default_rng(seed + 1))
    elapsed = time.process_time() - start
    rows.append(("Public and Private groups (`split_test_pairs`)", elapsed, drawn.pairs, drawn.similarity,
                 drawn.is_public))
    out = []
    for name, seconds, pairs, labels, public in rows:
        known = private_rows_known_from_public(pairs, labels.tolist(), public, identity)
        top = int(np.count_nonzero(labels >= 0.9))
        out.append((name, seconds, len(pairs), top, public.mean(), len(known) / max(1, (~public).sum())))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", default=DEFAULT_LIBRARY, type=Path)
    parser.add_argument("--seeds", default=3, type=int)
    args = parser.parse_args()
    if not args.library.is_file():
        sys.exit(f"library not found: {args.library}")
    molecules = library_molecules(args.library)
    test = split_molecules(molecules.keys, 0.1, np.random.default_rng(0))
    test_mols = np.flatnonzero(test)
    local = np.full(len(molecules.keys), -1)
    local[test_mols] = np.arange(len(test_mols))
    spectrum_local = local[molecules.spectrum_molecule]
    kept = np.flatnonzero(spectrum_local >= 0)
    spectra_of = group_indices(spectrum_local[kept], len(test_mols))
    fps = fingerprints([molecules.smiles[m] for m in test_mols])
    identity = identity_groups(fps)[spectrum_local[kept]]
    print(f"{args.library.name}: {len(test_mols):,} test molecules ({len(np.unique(identity)):,} distinct "
          f"fingerprints), {len(kept):,} test spectra; 1,000 pairs per bin, 30% Public")
    print()
    print("| seed | test pairs | CPU s | rows | rows >= 0.9 | Public share | Private labels known from Public |")
    print("|---|---|---|---|---|---|---|")
    for seed in range(args.seeds):
        for name, seconds, n, top, share, known in one_seed(fps, spectra_of, identity, seed):
            print(f"| {seed} | {name} | {seconds:.2f} | {n:,} | {top:,} | {share:.3f} | {known:.1%} |")


if __name__ == "__main__":
    main()
