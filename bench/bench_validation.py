"""Can a learner trust `kit train`'s validation score? Validation +- error against Private, rung by rung.

For each competition (the practice competition prepared with seeds 0, 5 and 11, and
MassBank positive with seed 0), each of the gbm, siamese and blend rungs is trained as
``kit train RUNG --seed 0`` trains it (defaults; only progress output is silenced), which
scores it on molecules no step of its fit used. The very model is then run on the test
pairs and scored on Private, once, to report; nothing is chosen on these Private numbers.

Private's own standard error comes from a bootstrap over the test molecules, as the
validation score's does over the validation molecules. The test files do not name the
molecules; two test spectra belong to one molecule where a test pair of them is marked
``same_molecule`` in ``private/pair_details.csv`` (a molecule whose self-pairs were all
left out of the test pairs counts as several, which makes the error bar a little narrow).
Two rungs' Private RMSEs "differ" where their difference is more than two standard errors
of that difference (the same resamples for both rungs).

Also reported for the siamese: its Private RMSE with its calibration map taken off, and
the held-out gains behind the decision to keep it.

One result file per competition and rung (JSON, under ``--out``) is written as each ends,
so an interrupted run resumes where it stopped; ``--table`` prints the table from them.

Usage::

    .venv/bin/python bench/bench_validation.py [--competitions practice-s0,practice-s5,practice-s11,massbank-positive]
        [--rungs gbm,siamese,blend] [--out bench/out/validation] [--data bench/out/validation/data]
    .venv/bin/python bench/bench_validation.py --table [--out bench/out/validation]
"""
import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kit.fileio import atomic_path  # noqa: E402
from kit.models.training import bootstrap_molecules, train_model, weighted_rmse  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "out" / "validation"
# name -> options of prepare_competition (and `kit prepare`)
COMPETITIONS = {
    "practice-s0": {"seed": 0},
    "practice-s5": {"seed": 5},
    "practice-s11": {"seed": 11},
    "massbank-positive": {"seed": 0, "library": str(REPO.parent / "shared" / "data" / "massbank"
                                                    / "massbank_positive.mgf.gz"), "ionmode": "positive"},
}
RUNGS = ("gbm", "siamese", "blend")
# Display only: the fit is the same with them.
QUIET = {"gbm": {"progress": "false"}, "siamese": {"verbose": "0"}, "blend": {"progress": "false", "verbose": "0"}}
TRAIN_SEED = 0
BOOTSTRAP_ROUNDS = 200
BOOTSTRAP_SEED = 0


def competition(name, data):
    """The competition ``name`` under ``data``, prepared first when missing."""
    from kit.competition.folder import load_competition
    from kit.competition.prepare import prepare_competition

    if (Path(data) / name).is_dir():
        return load_competition(Path(data) / name)
    return prepare_competition(name=name, out=data, progress=False, **COMPETITIONS[name])


def test_molecules(comp):
    """A molecule label for each test spectrum id, joined through same-molecule test pairs."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pairs = comp.test_pairs
    details = comp.load_pair_details()
    ids = np.unique(np.concatenate([pairs["spectrum_id_a"], pairs["spectrum_id_b"]]).astype(str))
    where = {s: k for k, s in enumerate(ids)}
    same = pairs.merge(details, on="id")
    same = same[same["same_molecule"] == 1]
    a = same["spectrum_id_a"].astype(str).map(where).to_numpy()
    b = same["spectrum_id_b"].astype(str).map(where).to_numpy()
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(ids), len(ids)))
    _, labels = connected_components(graph, directed=False)
    return dict(zip(ids, labels))


class Private:
    """The Private rows of a competition: truth, the molecules of each pair, bootstrap weights."""

    def __init__(self, comp):
        solution = comp.load_solution()
        pairs = comp.test_pairs.merge(solution, on="id")
        pairs = pairs[pairs["Usage"] == "Private"]
        molecule = test_molecules(comp)
        self.ids = pairs["id"].to_numpy()
        self.truth = pairs["similarity"].to_numpy(dtype=float)
        mols = np.column_stack([pairs["spectrum_id_a"].astype(str).map(molecule),
                                pairs["spectrum_id_b"].astype(str).map(molecule)])
        used, mols = np.unique(mols, return_inverse=True)
        self.molecules = len(used)
        self.weights = bootstrap_molecules(mols.reshape(-1, 2), self.molecules, BOOTSTRAP_ROUNDS,
                                           np.random.default_rng(BOOTSTRAP_SEED))

    def score(self, predicted_by_id):
        """Private RMSE, its bootstrap standard error and the resampled RMSEs (same resamples for every rung)."""
        predicted = np.asarray([predicted_by_id[i] for i in self.ids], dtype=float)
        resampled = weighted_rmse(self.truth, predicted, None, self.weights)
        return weighted_rmse(self.truth, predicted), float(np.std(resampled, ddof=1)), resampled


def run_one(name, rung, data, out):
    """Train, validate, score Private; the result as a dict (also written to ``out``)."""
    path = Path(out) / name / f"{rung}.json"
    if path.is_file():
        return json.loads(path.read_text())
    comp = competition(name, data)
    lines = []
    started = time.perf_counter()
    model, folder = train_model(rung, comp, seed=TRAIN_SEED, params=QUIET[rung], models=Path(out) / "models",
                                echo=lines.append)
    seconds = time.perf_counter() - started
    private = Private(comp)
    ids = comp.test_pairs["id"].to_numpy()
    predicted = dict(zip(ids, model.predict(comp.test_spectra, comp.test_pairs)))
    rmse, se, resampled = private.score(predicted)
    score = model.validation_score_
    result = {
        "competition": name, "rung": rung, "validation": score["rmse"], "validation_se": score["rmse_se"],
        "validation_molecules": score["molecules"], "validation_pairs": score["rows"],
        "validation_pairs_rmse": score["pairs_rmse"], "private": rmse, "private_se": se,
        "private_molecules": private.molecules, "private_rows": int(len(private.ids)),
        "private_resampled": resampled.tolist(), "train_seconds": round(seconds, 1), "model": str(folder),
        "log": lines,
    }
    if rung == "siamese":
        raw = copy.copy(model)
        raw.calibration_ = None
        result["private_uncalibrated"] = private.score(dict(zip(ids, raw.predict(comp.test_spectra,
                                                                                 comp.test_pairs))))[0]
        result["calibrated"] = model.calibration_ != {"x": [0.0, 1.0], "y": [0.0, 1.0]}
        result["calibration_gain"] = model.calibration_gain_
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1) + "\n")
    return result


def load_results(out):
    results = []
    for name in COMPETITIONS:
        for rung in RUNGS:
            path = Path(out) / name / f"{rung}.json"
            if path.is_file():
                results.append(json.loads(path.read_text()))
    return results


def orderings(results):
    """Pairs of rungs of one competition whose Private RMSEs differ by more than two standard errors."""
    out = []
    by_comp = {}
    for r in results:
        by_comp.setdefault(r["competition"], []).append(r)
    for name, rows in by_comp.items():
        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                diff = np.asarray(a["private_resampled"]) - np.asarray(b["private_resampled"])
                se = float(np.std(diff, ddof=1))
                gap = a["private"] - b["private"]
                if abs(gap) > 2 * se:
                    agrees = (a["validation"] - b["validation"]) * gap > 0
                    out.append((name, a["rung"], b["rung"], gap, se, agrees))
    return out


def table(results):
    """The markdown table and the summary lines."""
    lines = ["| competition | rung | validation +- SE (molecules) | Private +- SE (molecules) | validation - Private |",
             "|---|---|---|---|---|"]
    gaps = []
    for r in results:
        gap = r["validation"] - r["private"]
        gaps.append(abs(gap))
        lines.append(f"| {r['competition']} | {r['rung']} | {r['validation']:.4f} +- {r['validation_se']:.4f} "
                     f"({r['validation_molecules']}) | {r['private']:.4f} +- {r['private_se']:.4f} "
                     f"({r['private_molecules']}) | {gap:+.4f} |")
    summary = []
    if gaps:
        summary.append(f"mean |validation - Private| {np.mean(gaps):.4f} over {len(gaps)} rows; largest {max(gaps):.4f}")
    for name, a, b, gap, se, agrees in orderings(results):
        summary.append(f"{name}: {a} vs {b} differ on Private by {gap:+.4f} (SE {se:.4f}); validation "
                       + ("orders them the same" if agrees else "orders them the OTHER way"))
    for r in results:
        if "private_uncalibrated" in r:
            cost = r["private"] - r["private_uncalibrated"]
            gains = ", ".join(f"{g:+.4f}" for g in r["calibration_gain"] or [])
            summary.append(f"{r['competition']}: siamese Private {r['private']:.4f} as saved "
                           f"({'calibrated' if r['calibrated'] else 'calibration declined'}; held-out gains {gains}), "
                           f"{r['private_uncalibrated']:.4f} without the map: {cost:+.4f}")
    return "\n".join(lines), summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--competitions", default=",".join(COMPETITIONS))
    parser.add_argument("--rungs", default=",".join(RUNGS))
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--data", default=None, help="folder of the competitions (default OUT/data)")
    parser.add_argument("--table", action="store_true", help="only print the table of the results so far")
    args = parser.parse_args(argv)
    data = args.data or str(Path(args.out) / "data")
    if not args.table:
        for name in args.competitions.split(","):
            for rung in args.rungs.split(","):
                r = run_one(name, rung, data, args.out)
                print(f"{name} {rung}: validation {r['validation']:.4f} +- {r['validation_se']:.4f}, "
                      f"Private {r['private']:.4f} +- {r['private_se']:.4f} ({r['train_seconds']:.0f} s)", flush=True)
    text, summary = table(load_results(args.out))
    print(text)
    print("\n".join(summary))


if __name__ == "__main__":
    main()
