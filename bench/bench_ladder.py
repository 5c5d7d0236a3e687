"""The baseline ladder on a MassBank competition: scores, training time and peak memory.

Usage::

    .venv/bin/python bench/bench_ladder.py [--library ../shared/data/massbank/massbank_positive.mgf.gz]
        [--models mean,cosine,gbm,siamese] [--work bench/out/ladder] [--set siamese.epochs=30 ...]

The competition is prepared with default options (reused when it exists under --work).
Each rung trains in its own process (`kit train`, then `kit predict`), so its peak RSS is
its own; scores are computed against private/solution.csv. Prints a Markdown table.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_LIBRARY = REPO.parent / "shared" / "data" / "massbank" / "massbank_positive.mgf.gz"


def run(args, cwd):
    """Run a ``kit`` command; return (seconds, its own peak RSS in GiB, stdout)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "kit", *args], cwd=cwd, text=True, stdout=out, stderr=err)
        # wait4 reports this child's own resource use, not the largest child's so far.
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.exit(f"kit {' '.join(args)} failed:\n{err.read()[-3000:]}")
        return seconds, usage.ru_maxrss / 2**20, out.read()


def overrides(pairs):
    """``["siamese.epochs=30"]`` -> ``{"siamese": ["--epochs", "30"]}``."""
    out = {}
    for item in pairs:
        key, _, value = item.partition("=")
        model, _, option = key.partition(".")
        out.setdefault(model, []).extend([f"--{option.replace('_', '-')}", value])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", type=Path, default=DEFAULT_LIBRARY)
    parser.add_argument("--models", default="mean,cosine,gbm,siamese")
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "out" / "ladder")
    parser.add_argument("--set", nargs="*", default=[], metavar="MODEL.OPTION=VALUE")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    name = args.library.name.split(".")[0]
    if not (work / "data" / name / "competition.json").is_file():
        seconds, peak, _ = run(["prepare", "--library", str(args.library.resolve()), "--quiet"], work)
        print(f"prepared {name} in {seconds:.0f} s (peak {peak:.2f} GiB)", file=sys.stderr)

    sys.path.insert(0, str(REPO))
    from kit.competition import load_competition
    from kit.scoring import score_submission

    comp = load_competition(work / "data" / name)
    extra = overrides(args.set)
    rows = []
    for model in args.models.split(","):
        seconds, peak, out = run(["train", model, "--competition", str(comp.path), *extra.get(model, [])], work)
        folder = out.strip().splitlines()[-1].removeprefix("saved ").strip()
        manifest = json.loads((Path(folder) / "manifest.json").read_text())
        _, _, out = run(["predict", folder, "--competition", str(comp.path)], work)
        submission = out.strip().splitlines()[-1].removeprefix("wrote ").strip()
        result = score_submission(submission, comp)
        private = result.details["Private"]
        rows.append((model, result.public, result.private, private["binned_rmse"], private["mae"], private["pearson"],
                     manifest.get("fit_seconds"), seconds, peak, " ".join(["kit", "train", model, *extra.get(model, [])])))
        print(f"{model}: private {result.private:.5f}", file=sys.stderr)

    print(f"Competition `{name}` (default options): {len(comp.test_pairs):,} test pairs, "
          f"{comp.metadata['split']['train_spectra']:,} training spectra.\n")
    print("| rung | Public RMSE | Private RMSE | Private binned RMSE | Private MAE | Private Pearson r | fit s | `kit train` wall s | peak RSS GiB | command |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.5f} | {r[2]:.5f} | {r[3]:.5f} | {r[4]:.5f} | {r[5]:.3f} | {r[6]:.0f} | {r[7]:.0f} | {r[8]:.2f} | `{r[9]}` |")
    mean = next((r for r in rows if r[0] == "mean"), None)
    if mean:
        for r in rows:
            if r[0] != "mean":
                print(f"\n{r[0]}: Private RMSE {100 * (1 - r[2] / mean[2]):.1f}% below the mean rung's", end="")
        print()


if __name__ == "__main__":
    main()
