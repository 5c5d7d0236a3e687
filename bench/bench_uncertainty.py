"""Uncertainty you can act on: RMSE on Private rows against coverage, ordered by the siamese's spread.

MassBank positive is prepared as ``kit prepare`` does with seed 0, the siamese is
trained as ``kit train siamese`` trains it (defaults, or fewer ``--epochs`` on a busy
machine), and ``kit predict --with-std`` writes its predictions and their Monte Carlo
dropout spread (``--passes``: one run of ``kit predict --with-std --passes P`` per count, the
model loaded in its sandbox each time). On the Private rows, the pairs are dropped least
certain first and the rest scored, at coverage 100%, 90%, ..., 10%, for these orderings:

- ``spread``: the siamese's spread (``<submission>.std.csv``) over P passes, largest first;
- ``trivial``: ``|prediction - 0.5|``, predictions nearest 0.5 dropped first;
- ``random``: the mean RMSE of 100 random orderings (seed 0), the floor.

Targets: RMSE at 50% coverage at least 25% below RMSE at full coverage, and below the
trivial ordering's at 50%. Writes ``--out``/result.json, the plot (``--plot``) and prints
the table in Markdown.

Usage::

    nice .venv/bin/python bench/bench_uncertainty.py [--library ../shared/data/massbank/massbank_positive.mgf.gz]
        [--out bench/out/uncertainty] [--epochs N] [--passes 10,30,100] [--model DIR] [--data DIR]
        [--plot bench/uncertainty_coverage.png]
    .venv/bin/python bench/bench_uncertainty.py --table [--out bench/out/uncertainty]
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kit.cli import main as kit  # noqa: E402 - after the path is set
from kit.competition.folder import PRIVATE, load_competition  # noqa: E402
from kit.models.prediction import STD_SUFFIX, predict_competition  # noqa: E402
from kit.scoring.coverage import COVERAGES, kept_count, rmse_by_coverage, trivial_uncertainty  # noqa: E402

LIBRARY = REPO.parent / "shared" / "data" / "massbank" / "massbank_positive.mgf.gz"
NAME = "massbank_positive"
RANDOM_ORDERINGS = 100
#: RMSE at 50% coverage must be at least this much below RMSE at full coverage.
TARGET_DROP = 0.25


def run_kit(*args):
    code = kit([str(a) for a in args])
    if code:
        raise SystemExit(f"kit {' '.join(map(str, args))} failed with exit code {code}")


def newest(folder, pattern):
    found = sorted(Path(folder).glob(pattern))
    if not found:
        raise SystemExit(f"{folder}: nothing matches {pattern}")
    return found[-1]


def curves(truth, predicted, spreads, seed=0):
    """RMSE per coverage for the spread (one per count of passes, ``{passes: spread}``), trivial and random orderings."""
    rng = np.random.default_rng(seed)
    random = np.mean([rmse_by_coverage(truth, predicted, rng.permutation(truth.size)) for _ in range(RANDOM_ORDERINGS)],
                     axis=0)
    return {"spread": {str(passes): rmse_by_coverage(truth, predicted, spread).tolist()
                       for passes, spread in spreads.items()},
            "trivial": rmse_by_coverage(truth, predicted, trivial_uncertainty(predicted)).tolist(),
            "random": random.tolist()}


def private_rows(comp, submission):
    """Truth, prediction and spread of the Private rows, in the order of the solution."""
    import pandas as pd

    solution = comp.load_solution()
    solution = solution[solution["Usage"] == PRIVATE]
    predicted = pd.read_csv(submission).set_index("id")["similarity"]
    spread = pd.read_csv(submission.with_suffix(STD_SUFFIX)).set_index("id")["std"]
    ids = solution["id"].to_numpy()
    return solution["similarity"].to_numpy(float), predicted.loc[ids].to_numpy(float), spread.loc[ids].to_numpy(float)


def table(result):
    spreads = result["rmse"]["spread"]
    lines = ["| coverage | pairs kept | " + " | ".join(f"RMSE, spread of {p} passes" for p in spreads)
             + " | RMSE, trivial ordering | RMSE, random ordering |", "|---:|---:|" + "---:|" * (len(spreads) + 2)]
    n = result["private_rows"]
    for k, coverage in enumerate(result["coverages"]):
        cells = [f"{curve[k]:.4f}" for curve in spreads.values()]
        cells += [f"{result['rmse']['trivial'][k]:.4f}", f"{result['rmse']['random'][k]:.4f}"]
        lines.append(f"| {coverage:.0%} | {kept_count(n, coverage):,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(result):
    """One line per count of passes: is each target met?"""
    trivial = result["rmse"]["trivial"]
    half = result["coverages"].index(0.5)
    lines = []
    for passes, spread in result["rmse"]["spread"].items():
        drop = 1 - spread[half] / spread[0]
        lines.append(
            f"{passes} passes: at 50% coverage the spread ordering's RMSE is {drop:.1%} below full coverage "
            f"({spread[half]:.4f} against {spread[0]:.4f}; target >= {TARGET_DROP:.0%}: "
            f"{'met' if drop >= TARGET_DROP else 'NOT met'}) and "
            f"{'below' if spread[half] < trivial[half] else 'NOT below'} the trivial ordering's {trivial[half]:.4f}"
        )
    return "\n".join(lines)


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    shares = [100 * c for c in result["coverages"]]
    for passes, curve in result["rmse"]["spread"].items():
        ax.plot(shares, curve, "o-", label=f"spread of {passes} passes")
    ax.plot(shares, result["rmse"]["trivial"], "s--", label="|prediction - 0.5|")
    ax.plot(shares, result["rmse"]["random"], ":", label="random (mean of 100)")
    ax.invert_xaxis()
    ax.set_xlabel("coverage: % of Private pairs kept (least certain dropped first)")
    ax.set_ylabel("RMSE")
    ax.set_title(f"siamese on MassBank positive, {result['private_rows']:,} Private pairs")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--library", type=Path, default=LIBRARY)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "uncertainty")
    parser.add_argument("--epochs", type=int, help="most training epochs (default: kit train's)")
    parser.add_argument("--passes", default="10,30,100",
                        help="Monte Carlo dropout passes, one spread per count (default 10,30,100)")
    parser.add_argument("--model", type=Path, help="a siamese already trained on the competition: skip training")
    parser.add_argument("--data", type=Path, help="folder of competitions to reuse (default: OUT/data)")
    parser.add_argument("--plot", type=Path, default=REPO / "bench" / "uncertainty_coverage.png")
    parser.add_argument("--table", action="store_true", help="print the table of an earlier run")
    args = parser.parse_args(argv)
    result_path = args.out / "result.json"
    if args.table:
        result = json.loads(result_path.read_text())
        print(table(result))
        print(verdict(result))
        return 0
    data, models, submissions = args.data or args.out / "data", args.out / "models", args.out / "submissions"
    timings = {}
    start = time.perf_counter()
    if not (data / NAME / "competition.json").exists():
        run_kit("prepare", "--library", args.library, "--name", NAME, "--data", data, "--seed", 0, "--quiet")
    timings["prepare_seconds"] = time.perf_counter() - start
    model = args.model
    if model is None:
        start = time.perf_counter()
        epochs = ["--epochs", args.epochs] if args.epochs else []
        run_kit("train", "siamese", "--competition", NAME, "--data", data, "--models", models, "--seed", 0, *epochs)
        timings["train_seconds"] = time.perf_counter() - start
        model = newest(models / NAME, "siamese-*")
    comp = load_competition(data / NAME)
    spreads, files = {}, {}
    for passes in (int(p) for p in args.passes.split(",")):
        # As `kit predict MODEL --with-std --passes P`, which picks no file name to return.
        start = time.perf_counter()
        files[passes] = predict_competition(model, comp.path, submissions=submissions, memory_limit=6 << 30,
                                            time_limit=1800, with_std=True, n_passes=passes)
        timings[f"predict_seconds_{passes}_passes"] = time.perf_counter() - start
        truth, predicted, spreads[passes] = private_rows(comp, files[passes])
        if files[passes].read_bytes() != next(iter(files.values())).read_bytes():
            raise SystemExit(f"{files[passes]}: the submission changed with --passes {passes}: it must not")
    result = {"library": str(args.library), "model": str(model), "submissions": {p: str(f) for p, f in files.items()},
              "epochs": args.epochs, "private_rows": int(truth.size),
              "coverages": list(COVERAGES), "rmse": curves(truth, predicted, spreads), **timings}
    args.out.mkdir(parents=True, exist_ok=True)
    result_path.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.plot)
    print(table(result))
    print(verdict(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
