"""Builders for the model tests: a small simulated library split by molecule, pair tables."""
from functools import cache

import numpy as np
import pandas as pd


def pairs_frame(spectra, idx_a, idx_b):
    """A pairs table (``spectrum_id_a``, ``spectrum_id_b``) from positions in ``spectra``."""
    ids = np.array([s.get("spectrum_id") for s in spectra], dtype=object)
    return pd.DataFrame({"spectrum_id_a": ids[np.asarray(idx_a)], "spectrum_id_b": ids[np.asarray(idx_b)]})


def all_pairs(spectra, limit=None):
    """Pairs ``i < j`` of ``spectra`` as a pairs table (the first ``limit`` of them)."""
    i, j = np.triu_indices(len(spectra), k=1)
    if limit is not None:
        i, j = i[:limit], j[:limit]
    return pairs_frame(spectra, i, j)


@cache
def simulated_split(n_molecules=60, seed=0, test_fraction=0.3):
    """Cleaned simulated spectra split by molecule: ``(train, test)`` tuples.

    Simulated spectra share fragments where molecules share substructures, so a model
    that reads spectra can beat one that does not. Cached: build once per test session.
    """
    from kit.data.chemistry import inchikey14
    from kit.data.pairs import split_molecules
    from kit.data.simulate import simulate_library
    from kit.data.spectra import clean_spectra

    spectra = clean_spectra(simulate_library(n_molecules=n_molecules, seed=seed, progress=False))
    keys = [inchikey14(s.get("inchikey")) for s in spectra]
    molecules = sorted(set(keys))
    held_out = split_molecules(molecules, test_fraction, np.random.default_rng(seed))
    test_keys = {k for k, out in zip(molecules, held_out) if out}
    train = tuple(s for s, k in zip(spectra, keys) if k not in test_keys)
    test = tuple(s for s, k in zip(spectra, keys) if k in test_keys)
    return train, test
