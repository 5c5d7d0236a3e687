"""Same seed, same predictions, before and after a change: every rung fitted on two checkouts.

Each rung (``mean``, ``cosine``, ``gbm``, a tiny ``siamese`` fitted twice, a tiny
``blend``) is fitted with seed 0 on the tests' small structure spectra and predicts 200
pairs, once with the kit of this working tree and once with the ``kit/`` of ``--base``
(a commit, taken with ``git archive``), each in a process of its own. The script prints,
rung by rung, whether the two agree exactly (else the largest difference), and the
siamese's run-to-run spread (two fits, same seed, same process). It only uses what both
versions have: ``kit.models.get``, ``fit`` and ``predict``; the blend's siamese
parameters are passed nested (``siamese__epochs``) or flat (``siamese_epochs``), as
each version takes them.

Usage::

    python bench/same_seed_across_commits.py --base aaa5d39
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RUNGS = ("mean", "cosine", "gbm", "siamese1", "siamese2", "blend")
SIAMESE = dict(hidden_units=(32,), embedding_dim=16, epochs=3, batch_size=32, pairs_per_epoch=256,
               validation_pairs=128, validation_fraction=0.3)


def fit_all(out):
    """Fit every rung with the kit on ``sys.path``; save the predictions to ``out`` (npz)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import kit.models
    from conftest import structure_spectra
    from model_builders import all_pairs

    spectra = structure_spectra()
    pairs = all_pairs(spectra, limit=200)
    results = {}
    for name, params in [("mean", dict(n_pairs=500)), ("cosine", dict(n_pairs=500, progress=False)),
                         ("gbm", dict(n_pairs=500, max_iter=30, progress=False))]:
        results[name] = kit.models.get(name)(**params, seed=0).fit(spectra).predict(spectra, pairs)
    for run in ("siamese1", "siamese2"):
        model = kit.models.get("siamese")(**SIAMESE, verbose=0, seed=0)
        results[run] = model.fit(spectra).predict(spectra, pairs)
    blend = kit.models.get("blend")
    own = dict(holdout_fraction=0.4, mc_samples=3, n_pairs=300, max_iter=20, progress=False, verbose=0, seed=0)
    if "siamese" in blend().get_params(deep=False):
        model = blend(**own).set_params(**{f"siamese__{k}": v for k, v in SIAMESE.items()})
    else:
        model = blend(**own, **{f"siamese_{k}": v for k, v in SIAMESE.items()})
    results["blend"] = model.fit(spectra).predict(spectra, pairs)
    np.savez(out, **results)


def run_with(kit_root, out):
    """Run :func:`fit_all` in a child process whose ``kit`` is the one under ``kit_root``."""
    env = dict(os.environ, PYTHONPATH=str(kit_root))
    subprocess.run([sys.executable, __file__, "--fit", str(out)], env=env, check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="commit to compare this working tree with")
    parser.add_argument("--fit", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fit:
        return fit_all(args.fit)
    if not args.base:
        parser.error("expected --base COMMIT")
    with tempfile.TemporaryDirectory(prefix="kit-same-seed-") as tmp:
        tmp = Path(tmp)
        archive = subprocess.run(["git", "archive", args.base, "kit"], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
        run_with(tmp, tmp / "base.npz")
        run_with(ROOT, tmp / "here.npz")
        base, here = np.load(tmp / "base.npz"), np.load(tmp / "here.npz")
        for rung in RUNGS:
            diff = float(np.abs(base[rung] - here[rung]).max())
            print(f"{rung:9s} {'identical' if np.array_equal(base[rung], here[rung]) else f'max difference {diff:.3g}'}"
                  f" ({len(here[rung])} pairs)")
        for name, data in (("base", base), ("here", here)):
            spread = float(np.abs(data["siamese1"] - data["siamese2"]).max())
            print(f"siamese run-to-run spread ({name}): {spread:.3g}")


if __name__ == "__main__":
    main()
