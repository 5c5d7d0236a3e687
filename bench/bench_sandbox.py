"""Cost of running an untrusted model in its child process, as ``kit predict`` does.

For the gbm and the siamese, trained on a small simulated library and saved, one run
times predicting the same test pairs three ways: in this process with cold imports
(what ``kit predict`` cost before the sandbox), in the sandbox
(``kit.models.load(path, untrusted=True)``: spawn, imports, load and predict in the
child), and in this process again with warm imports, alternating, best of
``--repeats``. The ratio is sandbox / cold in-process. ``--memory`` then finds the smallest ``--memory-limit`` (in 256 MiB steps)
under which the siamese still loads and predicts in the sandbox.

Usage::

    python bench/bench_sandbox.py [--n-molecules 300] [--n-pairs 5000] [--repeats 3] [--memory]
    python bench/bench_sandbox.py --siamese-units 500,500   # the siamese's default width
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def data(n_molecules, n_pairs, seed=0):
    """Cleaned simulated spectra split by molecule, and test pairs."""
    import pandas as pd

    from kit.data.chemistry import inchikey14
    from kit.data.simulate import simulate_library
    from kit.data.spectra import clean_spectra

    spectra = clean_spectra(simulate_library(n_molecules=n_molecules, seed=seed, progress=False))
    keys = np.array([inchikey14(s.get("inchikey")) for s in spectra])
    test_keys = set(np.unique(keys)[::4])
    train = [s for s, k in zip(spectra, keys) if k not in test_keys]
    test = [s for s, k in zip(spectra, keys) if k in test_keys]
    rng = np.random.default_rng(seed)
    ids = np.array([s.get("spectrum_id") for s in test], dtype=object)
    a, b = rng.integers(0, len(test), n_pairs), rng.integers(0, len(test), n_pairs)
    return train, test, pd.DataFrame({"spectrum_id_a": ids[a], "spectrum_id_b": ids[b]})


def timed(func):
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def in_process(folder, test, pairs):
    import kit.models

    return kit.models.load(folder).predict(test, pairs)


def sandboxed(folder, test, pairs, memory_limit=None):
    import kit.models

    with kit.models.load(folder, untrusted=True, memory_limit=memory_limit) as model:
        return model.predict(test, pairs)


def smallest_memory_limit(folder, test, pairs, start_gib=1.5, stop_gib=8.0):
    """The smallest limit, in 256 MiB steps, under which the model loads and predicts in the sandbox."""
    from kit.errors import UserError

    limit = int(start_gib * (1 << 30))
    while limit <= stop_gib * (1 << 30):
        try:
            sandboxed(folder, test, pairs, memory_limit=limit)
            return limit
        except UserError as exc:
            print(f"  {limit / (1 << 30):.2f} GiB: {exc}")
        limit += 256 << 20
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-molecules", type=int, default=300)
    parser.add_argument("--n-pairs", type=int, default=5000)
    parser.add_argument("--siamese-units", default="500,500", help="hidden units of the siamese (comma-separated)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way; the best counts")
    parser.add_argument("--memory", action="store_true", help="also find the siamese's smallest memory limit")
    args = parser.parse_args()

    from kit.models.gbm import GBMModel

    train, test, pairs = data(args.n_molecules, args.n_pairs)
    print(f"{len(train):,} training spectra, {len(test):,} test spectra, {len(pairs):,} test pairs")
    root = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    units = tuple(int(u) for u in args.siamese_units.split(","))
    rungs = {
        "gbm": lambda: GBMModel(n_pairs=5000, max_iter=200, progress=False),
        "siamese": lambda: __import__("kit.models.siamese", fromlist=["SiameseModel"]).SiameseModel(
            hidden_units=units, epochs=1, pairs_per_epoch=2048, validation_pairs=256, verbose=0),
    }
    folders = {}
    for name, make in rungs.items():
        folders[name] = make().fit(train).save(root / name)
    print("| model | in-process, fresh process | sandbox | in-process, warm imports | sandbox / fresh | same predictions |")
    print("|---|---|---|---|---|---|")
    for name, folder in folders.items():
        # Cold: a fresh spawned process pays the imports as `kit predict` did before the sandbox.
        # The three ways alternate, best of --repeats each: load on a shared machine comes and goes.
        cold, boxed, warm = [], [], []
        for _ in range(args.repeats):
            cold.append(timed(lambda folder=folder: _fresh_process(in_process, folder, test, pairs))[0])
            seconds, got = timed(lambda folder=folder: sandboxed(folder, test, pairs))
            boxed.append(seconds)
            seconds, expected = timed(lambda folder=folder: in_process(folder, test, pairs))
            warm.append(seconds)
        print(f"| {name} | {min(cold):.2f} s | {min(boxed):.2f} s | {min(warm):.2f} s | {min(boxed) / min(cold):.2f}x | "
              f"{np.allclose(got, expected, atol=1e-6)} |")
    if args.memory:
        limit = smallest_memory_limit(folders["siamese"], test, pairs)
        print(f"siamese {units}: smallest memory limit that works: "
              f"{'none up to 8 GiB' if limit is None else f'{limit / (1 << 30):.2f} GiB'}")


def _fresh_process(func, *args):
    """Run ``func(*args)`` in a fresh spawned process (no limits) and wait for it."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(func, args)


if __name__ == "__main__":
    main()
