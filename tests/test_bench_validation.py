"""bench/bench_validation.py: Private's molecules, its error bar, and the table's verdicts."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from conftest import load_bench_script


@pytest.fixture(scope="module")
def bench():
    return load_bench_script("bench_validation")


def fake_competition():
    """Four test spectra: a and b one molecule (a same-molecule pair says so), c and d two others."""
    pairs = pd.DataFrame({"id": [0, 1, 2, 3], "spectrum_id_a": ["a", "a", "c", "b"],
                          "spectrum_id_b": ["b", "c", "d", "d"]})
    details = pd.DataFrame({"id": [0, 1, 2, 3], "same_molecule": [1, 0, 0, 0]})
    solution = pd.DataFrame({"id": [0, 1, 2, 3], "similarity": [1.0, 0.2, 0.4, 0.3],
                             "Usage": ["Private", "Private", "Public", "Private"]})
    return SimpleNamespace(test_pairs=pairs, load_pair_details=lambda: details, load_solution=lambda: solution)


def test_test_molecules_join_spectra_through_same_molecule_pairs(bench):
    molecule = bench.test_molecules(fake_competition())
    assert molecule["a"] == molecule["b"] and len({molecule["a"], molecule["c"], molecule["d"]}) == 3


def test_private_scores_private_rows_only_with_a_molecule_bootstrap(bench):
    private = bench.Private(fake_competition())
    assert private.ids.tolist() == [0, 1, 3] and private.molecules == 3
    rmse, se, resampled = private.score({0: 1.0, 1: 0.2, 2: 0.9, 3: 0.3})
    assert rmse == 0 and se == 0 and resampled.shape == (bench.BOOTSTRAP_ROUNDS,)
    rmse, se, _ = private.score({0: 0.5, 1: 0.2, 2: 0.4, 3: 0.3})
    assert rmse == pytest.approx(np.sqrt(0.25 / 3)) and se > 0


def row(competition, rung, validation, private, spread=0.001, seed=0):
    resampled = private + np.random.default_rng(seed).normal(0, spread, 50)
    return {"competition": competition, "rung": rung, "validation": validation, "validation_se": 0.004,
            "validation_molecules": 360, "private": private, "private_se": spread, "private_molecules": 140,
            "private_resampled": resampled.tolist()}


def test_orderings_judge_only_pairs_that_private_tells_apart(bench):
    results = [row("p", "gbm", 0.17, 0.17), row("p", "siamese", 0.18, 0.171, seed=1),
               row("p", "blend", 0.16, 0.15, seed=2)]
    verdicts = {(a, b): agrees for _, a, b, _, _, agrees in bench.orderings(results)}
    # gbm and siamese are within their noise on Private: no verdict; the blend is clearly ahead.
    assert ("gbm", "siamese") not in verdicts
    assert verdicts[("gbm", "blend")] and verdicts[("siamese", "blend")]
    wrong = [row("p", "gbm", 0.15, 0.17), row("p", "blend", 0.16, 0.15, seed=2)]
    assert [agrees for *_, agrees in bench.orderings(wrong)] == [False]


def test_table_reports_gaps_and_the_calibration_cost(bench):
    siamese = row("p", "siamese", 0.18, 0.17) | {"private_uncalibrated": 0.169, "calibrated": True,
                                                  "calibration_gain": [0.002, 0.001]}
    text, summary = bench.table([row("p", "gbm", 0.17, 0.16), siamese])
    assert "| p | gbm | 0.1700 +- 0.0040 (360) | 0.1600 +- 0.0010 (140) | +0.0100 |" in text
    assert summary[0] == "mean |validation - Private| 0.0100 over 2 rows; largest 0.0100"
    assert summary[-1].endswith("0.1690 without the map: +0.0010") and "calibrated;" in summary[-1]
