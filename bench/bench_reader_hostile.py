"""Hostile submission lines: the reader before the linear patterns against the one reader now.

    python bench/bench_reader_hostile.py [--digits 2000 4000] [--rows 100000]

Both readers (``kit/scoring/reader.py`` at commit ``BEFORE`` and the working tree's)
run in this one process on the same files: for each size, ``0,`` then that many digits
then ``x`` (quadratic before: every split of the digits between two repeats was tried),
the same line of 1 MiB for the reader now only, and a plain valid file of ``--rows``
rows (what the length cap costs on the usual path). Best of ``--repeat`` runs.
"""
import argparse
import importlib.util
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import kit.scoring.reader as now
from kit.errors import SubmissionError

ROOT = Path(__file__).resolve().parents[1]
#: The last commit with the ambiguous value pattern.
BEFORE = "ae34830"


def load_before(folder):
    path = folder / "reader_before.py"
    path.write_bytes(subprocess.run(["git", "show", f"{BEFORE}:kit/scoring/reader.py"], cwd=ROOT,
                                    capture_output=True, check=True).stdout)
    spec = importlib.util.spec_from_file_location("reader_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def best_seconds(module, path, ids, repeat):
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            module.read_submission(path, expected_ids=ids)
        except SubmissionError:
            pass
        best = min(best, time.perf_counter() - started)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits", type=int, nargs="+", default=[2000, 4000])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kit-bench-hostile-") as tmp:
        tmp = Path(tmp)
        before = load_before(tmp)
        print(f"{'file':<28} {'before s':>9} {'now s':>8} {'ratio':>8}")
        cases = [(f"0,<{n:,} digits>x", "0," + "1" * n + "x", True) for n in args.digits]
        cases.append(("0,<1 MiB of digits>x", "0," + "1" * (1 << 20) + "x", False))
        for name, line, both in cases:
            path = tmp / "hostile.csv"
            path.write_text(f"id,similarity\n{line}\n")
            new = best_seconds(now, path, None, args.repeat)
            old = best_seconds(before, path, None, 1) if both else float("nan")
            print(f"{name:<28} {old:>9.3f} {new:>8.4f} {old / new:>8.0f}")
        rng = np.random.default_rng(0)
        path = tmp / "plain.csv"
        path.write_text("id,similarity\n" + "".join(f"{i},{v!r}\n" for i, v in enumerate(rng.random(args.rows))))
        ids = np.arange(args.rows)
        old, new = best_seconds(before, path, ids, args.repeat), best_seconds(now, path, ids, args.repeat)
        print(f"{f'plain, {args.rows:,} rows':<28} {old:>9.3f} {new:>8.4f} {new / old:>8.2f}")


if __name__ == "__main__":
    main()
