"""Benchmark ``kit prepare`` on MassBank positive, and its Tanimoto step against RDKit.

Usage::

    .venv/bin/python bench/bench_prepare.py [--library ../shared/data/massbank/massbank_positive.mgf.gz]

Prints a Markdown table; the numbers in bench/README.md come from this script.
"""
import argparse
import gzip
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_LIBRARY = REPO.parent / "shared" / "data" / "massbank" / "massbank_positive.mgf.gz"


def time_prepare(library):
    """Wall seconds and peak RSS (GiB) of `kit prepare` in a child process."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "kit", "prepare", "--library", str(library), "--out", out, "--quiet"],
            capture_output=True, text=True, cwd=REPO,
        )
        wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"kit prepare failed: {proc.stderr.strip()}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return wall, peak, proc.stdout.strip().splitlines()[-2]


def representative_smiles(library):
    """One SMILES per InChIKey block, as the label uses (most frequent, first seen)."""
    return library_molecules(library).smiles


def library_molecules(library):
    """Molecules of the spectra that carry an InChIKey and a SMILES (a fast scan of the MGF)."""
    from kit.data.chemistry import group_molecules, inchikey14

    keys, smiles = [], []
    with gzip.open(library, "rt") as handle:
        key = smi = None
        for line in handle:
            if line.startswith("INCHIKEY="):
                key = inchikey14(line.split("=", 1)[1])
            elif line.startswith("SMILES="):
                smi = line.split("=", 1)[1].strip()
            elif line.startswith("END IONS"):
                if key and smi:
                    keys.append(key)
                    smiles.append(smi)
                key = smi = None
    return group_molecules(keys, smiles)


def time_tanimoto(smiles):
    """All molecule pairs grouped by Tanimoto bin, and their values: kit vs a plain RDKit loop.

    Both sides start from the same fingerprints and produce the same things: every pair
    ``i < j`` in its bin (what ``kit prepare`` needs), and the Tanimoto values.
    """
    from rdkit import Chem, DataStructs, RDLogger

    from kit.data.chemistry import fingerprint_generator, tanimoto_matrix
    from kit.data.pairs import molecule_pairs_by_bin

    RDLogger.DisableLog("rdApp.*")
    gen = fingerprint_generator()
    mols = [m for m in (Chem.MolFromSmiles(s) for s in smiles) if m is not None]
    n = len(mols)
    rd_fps = [gen.GetFingerprint(m) for m in mols]
    np_fps = np.array([gen.GetFingerprintAsNumPy(m) for m in mols], dtype=np.uint8)

    start = time.perf_counter()
    rdkit = np.zeros((n, n))
    for i in range(n):
        rdkit[i, i + 1 :] = DataStructs.BulkTanimotoSimilarity(rd_fps[i], rd_fps[i + 1 :])
    t_rdkit_values = time.perf_counter() - start
    rows, cols = np.triu_indices(n, 1)
    rd_bins = np.clip(np.floor(np.round(rdkit[rows, cols] * 10, 9)), 0, 9).astype(int)
    rd_groups = [np.column_stack([rows[rd_bins == b], cols[rd_bins == b]]) for b in range(10)]
    t_rdkit = time.perf_counter() - start

    start = time.perf_counter()
    molecule_pairs_by_bin(np_fps, limit=1000, rng=np.random.default_rng(0))
    t_sampled = time.perf_counter() - start

    start = time.perf_counter()
    groups = molecule_pairs_by_bin(np_fps)
    t_bins = time.perf_counter() - start
    # Self-pairs (a molecule's own spectra) sit in the top bin on our side only.
    groups[9] = groups[9][groups[9][:, 0] != groups[9][:, 1]]
    same_bins = all(np.array_equal(a, b) for a, b in zip(groups, rd_groups))

    start = time.perf_counter()
    ours = tanimoto_matrix(np_fps)
    t_values = time.perf_counter() - start
    identical = bool(np.array_equal(ours[rows, cols], rdkit[rows, cols]))
    return n, t_rdkit, t_rdkit_values, t_sampled, t_bins, t_values, identical, same_bins


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", default=DEFAULT_LIBRARY, type=Path)
    args = parser.parse_args()
    if not args.library.is_file():
        sys.exit(f"library not found: {args.library}")
    wall, peak, summary = time_prepare(args.library)
    n, t_rdkit, t_rdkit_values, t_sampled, t_bins, t_values, identical, same_bins = time_tanimoto(
        representative_smiles(args.library)
    )
    print(f"`kit prepare --library {args.library.name}`: {wall:.1f} s wall, peak RSS {peak:.2f} GiB")
    print(f"  ({summary})")
    print()
    print(f"Tanimoto step over all {n * (n - 1) // 2 / 1e6:.1f} M pairs of {n:,} molecules, same fingerprints:")
    print()
    print("| step | RDKit `BulkTanimotoSimilarity` loop | kit | speed-up | same result |")
    print("|---|---|---|---|---|")
    print(
        f"| 1,000 molecule pairs drawn per Tanimoto bin (what `kit prepare` does) | {t_rdkit:.2f} s (all values, then bins) "
        f"| {t_sampled:.2f} s (`molecule_pairs_by_bin(limit=1000)`) | {t_rdkit / t_sampled:.1f}x | drawn from the same bins |"
    )
    print(
        f"| every pair listed in its Tanimoto bin | {t_rdkit:.2f} s | {t_bins:.2f} s "
        f"(`molecule_pairs_by_bin`) | {t_rdkit / t_bins:.1f}x | {same_bins} |"
    )
    print(
        f"| Tanimoto values | {t_rdkit_values:.2f} s | {t_values:.2f} s (`tanimoto_matrix`, full square) "
        f"| {t_rdkit_values / t_values:.1f}x | {identical} (bit-identical) |"
    )


if __name__ == "__main__":
    main()
