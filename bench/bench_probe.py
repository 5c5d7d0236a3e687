"""What a row-by-row probe of the leaderboard still learns now that shown scores are rounded.

The attack: a participant knows how many rows are Public (``kit score --json`` says
``public_rows``), submits a base file, then the same file with one row changed. The two
Public scores bound that row's label: with full precision (before), exactly; rounded to
:data:`kit.scoring.metrics.SHOWN_DECIMALS` places (as Kaggle shows them, and as the kit now shows
them), to an interval. A row whose change leaves the score as it was is Private (or its
label sits where the change cancels out).

For each row of the competition's solution this script makes that probe against the
rounded and the full-precision score, from two base files (all 0.5; a model at about the
ladder's RMSE), and reports: how wide the label interval is (and so how many bits of the
label one submission gives), how often the row's Public/Private membership shows, how
many days the daily limit then takes to learn every Public label, and the ceiling of any
probe (one rounded number tells at most log2 of the values it can take). Private labels
move no Public score, and the Public and Private rows are drawn from disjoint molecules
(README, "A competition on disk"), so the Public labels learned say nothing about the Private ones.

Usage::

    .venv/bin/python bench/bench_probe.py                       # a practice-sized solution, seeded
    .venv/bin/python bench/bench_probe.py --competition data/practice
"""
import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kit.competition.folder import DEFAULT_DAILY_LIMIT  # noqa: E402
from kit.data.tanimoto_bins import BIN_LABELS  # noqa: E402
from kit.scoring.metrics import SHOWN_DECIMALS, root_mean_squared_error, shown_scores  # noqa: E402


def practice_like_solution(rows_per_bin=1000, public_fraction=0.3, seed=0):
    """Labels balanced over the Tanimoto bins and a Public mask, as ``kit prepare`` draws them (seeded)."""
    rng = np.random.default_rng(seed)
    bins = len(BIN_LABELS)
    truth = np.concatenate([rng.uniform(k / bins, (k + 1) / bins, rows_per_bin) for k in range(bins)])
    public = np.zeros(truth.size, dtype=bool)
    public[rng.permutation(truth.size)[: round(public_fraction * truth.size)]] = True
    return truth, public


def competition_solution(folder):
    """``(truth, public mask)`` of a competition's ``private/solution.csv``."""
    import pandas as pd

    solution = pd.read_csv(Path(folder) / "private" / "solution.csv")
    return solution["similarity"].to_numpy(float), (solution["Usage"] == "Public").to_numpy()


def shown(value, rounded):
    return shown_scores(float(value)) if rounded else float(value)


def probe(truth, public, base, rounded, change=1.0):
    """For every row: the label interval one probe gives, and whether the row showed as Public.

    The probe changes row ``i`` of ``base`` to ``change`` (``1 - change`` where the base is
    already there). Returns ``(low, high, seen_public)`` arrays over all rows.
    """
    n = int(public.sum())
    y, b = truth[public], base[public]
    half = 0.5 * 10.0 ** -SHOWN_DECIMALS if rounded else 0.0
    r0 = shown(root_mean_squared_error(y, b), rounded)
    sse0 = (b - y) ** 2
    total0 = sse0.sum()
    low, high = np.zeros(truth.size), np.ones(truth.size)
    seen = np.zeros(truth.size, dtype=bool)
    where = np.flatnonzero(public)
    for row in range(truth.size):
        c = change if abs(base[row] - change) > 0.25 else 1.0 - change
        if public[row]:
            j = np.searchsorted(where, row)
            total1 = total0 - sse0[j] + (c - y[j]) ** 2
        else:
            total1 = total0  # a Private row moves no Public score
        r1 = shown(math.sqrt(max(total1, 0.0) / n), rounded)
        # What the participant knows: n, r0, r1 (each within half a shown unit), the base and c.
        d_low = n * max(r1 - half, 0.0) ** 2 - n * (r0 + half) ** 2
        d_high = n * (r1 + half) ** 2 - n * max(r0 - half, 0.0) ** 2
        # (c - y)^2 - (b - y)^2 = c^2 - b^2 - 2 y (c - b): solve for y at both ends.
        ends = [(c * c - base[row] ** 2 - d) / (2 * (c - base[row])) for d in (d_low, d_high)]
        low[row], high[row] = max(0.0, min(ends)), min(1.0, max(ends))
        seen[row] = not (d_low <= 0.0 <= d_high)  # the score moved for sure: the row is Public
    return low, high, seen


def report(truth, public, label, base, rounded, limit):
    low, high, seen = probe(truth, public, base, rounded)
    width = np.maximum(high - low, 1e-15)
    pub = public
    bits = np.log2(1.0 / width[pub])
    n_public = int(pub.sum())
    rows_per_submission = 1  # one changed row per scored submission (plus one base file)
    days = (n_public / rows_per_submission + 1) / limit
    return {
        "base": label,
        "shown": f"{SHOWN_DECIMALS} decimals" if rounded else "full precision",
        "base Public RMSE": round(root_mean_squared_error(truth[pub], base[pub]), 5),
        "median label interval (Public rows)": float(np.median(width[pub])),
        "bits per submission (median)": float(np.median(bits)),
        "label within its Tanimoto bin (share of Public rows)": float(np.mean(
            np.floor(low[pub] * 10 + 1e-9) == np.floor(np.minimum(high[pub], 0.999999) * 10 + 1e-9))),
        "Public rows shown as Public": float(seen[pub].mean()),
        "Private rows shown as Public": float(seen[~pub].mean()),
        f"days to probe every Public row at {limit}/day": days,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--competition", help="a competition folder with private/solution.csv (default: a "
                        "practice-sized solution drawn here, 10 bins x 1,000 rows, 30%% Public)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=DEFAULT_DAILY_LIMIT, help="scored submissions a day")
    args = parser.parse_args(argv)
    if args.competition:
        truth, public = competition_solution(args.competition)
    else:
        truth, public = practice_like_solution(seed=args.seed)
    rng = np.random.default_rng(args.seed + 1)
    bases = {
        "all 0.5": np.full(truth.size, 0.5),
        "a model (noise 0.15)": np.clip(truth + rng.normal(0.0, 0.15, truth.size), 0.0, 1.0),
    }
    rows = [report(truth, public, label, base, rounded, args.limit)
            for label, base in bases.items() for rounded in (False, True)]
    n_public = int(public.sum())
    print(f"{truth.size:,} rows, {n_public:,} Public; daily limit {args.limit}")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
    ceiling = math.log2(10 ** SHOWN_DECIMALS)  # distinct shown values of an RMSE in [0, 1]
    bin_bits = n_public * math.log2(len(BIN_LABELS))
    print(f"\nAny probe, however many rows it changes: at most {ceiling:.1f} bits per rounded score, so "
          f"learning the Tanimoto bin of every Public row ({bin_bits:,.0f} bits) takes at least "
          f"{bin_bits / ceiling / args.limit:,.0f} days at {args.limit}/day.")
    print(f"At full precision (before) one score carries up to {52:.0f} bits (a float64's mantissa): a probe "
          "changing several rows by amounts at different scales reads several labels from one submission.")
    print("Private rows: no Public score moves with them, and Public and Private rows come from disjoint "
          "molecules, so no Private label follows from the Public labels learned.")


if __name__ == "__main__":
    main()
