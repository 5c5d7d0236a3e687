"""bench/bench_uncertainty.py: the three orderings, the table and the verdict on the targets."""
import numpy as np
import pytest

from conftest import load_bench_script


@pytest.fixture(scope="module")
def bench():
    return load_bench_script("bench_uncertainty")


def result_of(bench, spread_knows):
    rng = np.random.default_rng(1)
    truth = rng.uniform(0, 1, 400)
    error = rng.normal(0, 0.2, 400)
    spread = np.abs(error) if spread_knows else rng.uniform(0, 1, 400)
    return {"private_rows": 400, "coverages": list(bench.COVERAGES),
            "rmse": bench.curves(truth, np.clip(truth + error, 0, 1), {10: spread, 30: spread})}


def test_a_spread_that_knows_the_errors_meets_both_targets(bench):
    result = result_of(bench, spread_knows=True)
    assert result["rmse"]["spread"]["10"][5] < 0.75 * result["rmse"]["spread"]["10"][0]
    verdict = bench.verdict(result).splitlines()
    assert len(verdict) == 2 and verdict[0].startswith("10 passes:") and verdict[1].startswith("30 passes:")
    assert all("target >= 25%: met" in line and "and below the trivial" in line for line in verdict)


def test_a_random_spread_meets_neither_and_the_verdict_says_so(bench):
    result = result_of(bench, spread_knows=False)
    verdict = bench.verdict(result)
    assert "NOT met" in verdict
    # The random floor is flat: every coverage keeps the full RMSE, within noise.
    assert np.allclose(result["rmse"]["random"], result["rmse"]["random"][0], rtol=0.05)


def test_the_table_has_a_row_per_coverage_with_the_pairs_kept(bench):
    lines = bench.table(result_of(bench, spread_knows=True)).splitlines()
    assert len(lines) == 2 + 10 and "spread of 10 passes | RMSE, spread of 30 passes" in lines[0]
    assert lines[2].startswith("| 100% | 400 |") and lines[-1].startswith("| 10% | 40 |")
