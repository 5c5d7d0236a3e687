"""kit.scoring.coverage: RMSE against the share of pairs kept, least certain dropped first."""
import numpy as np
import pytest

from kit.scoring.coverage import COVERAGES, kept_count, rmse_by_coverage, trivial_uncertainty


def pairs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0, 1, n)
    error = rng.normal(0, 1, n) * rng.uniform(0.01, 0.3, n)
    return truth, truth + error, error


def test_full_coverage_is_the_plain_rmse_and_the_coverages_run_from_100_to_10_percent():
    truth, predicted, _ = pairs()
    assert COVERAGES == (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)
    got = rmse_by_coverage(truth, predicted, np.zeros_like(truth))
    assert got[0] == pytest.approx(np.sqrt(np.mean((predicted - truth) ** 2)))


def test_an_uncertainty_that_knows_the_errors_gives_a_falling_curve_and_a_random_one_does_not():
    truth, predicted, error = pairs()
    oracle = rmse_by_coverage(truth, predicted, np.abs(error))
    assert (np.diff(oracle) < 0).all() and oracle[-1] < 0.2 * oracle[0]
    backwards = rmse_by_coverage(truth, predicted, -np.abs(error))
    assert (np.diff(backwards) > 0).all()


def test_ties_keep_the_order_given():
    # Stable: with every uncertainty equal, the first pairs are kept.
    got = rmse_by_coverage([0, 0, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1], coverages=(0.5, 1.0))
    assert got.tolist() == [0.0, pytest.approx(np.sqrt(0.5))]


@pytest.mark.parametrize("n, coverage, kept", [(1000, 0.5, 500), (10, 0.1, 1), (3, 0.1, 1), (7, 1.0, 7), (5, 0.3, 2)])
def test_kept_count_rounds_and_keeps_at_least_one(n, coverage, kept):
    assert kept_count(n, coverage) == kept


@pytest.mark.parametrize("coverage", [0, -0.1, 1.01, float("nan"), float("inf")])
def test_a_coverage_outside_0_to_1_is_refused(coverage):
    with pytest.raises(ValueError, match="coverage must be a number in \\(0, 1\\]"):
        rmse_by_coverage([0.1], [0.1], [0.1], coverages=(coverage,))


@pytest.mark.parametrize("truth, predicted, uncertainty, match", [
    ([0.1, 0.2], [0.1], [0.1, 0.2], "equal, non-empty 1-d"),
    ([], [], [], "equal, non-empty 1-d"),
    ([[0.1]], [[0.1]], [[0.1]], "equal, non-empty 1-d"),
    ([0.1, np.nan], [0.1, 0.2], [0.1, 0.2], "finite"),
    ([0.1, 0.2], [0.1, np.inf], [0.1, 0.2], "finite"),
    ([0.1, 0.2], [0.1, 0.2], [0.1, -np.inf], "finite"),
])
def test_unusable_arrays_are_refused(truth, predicted, uncertainty, match):
    with pytest.raises(ValueError, match=match):
        rmse_by_coverage(truth, predicted, uncertainty)


def test_the_trivial_ordering_drops_predictions_near_one_half_first():
    assert np.argsort(trivial_uncertainty([0.5, 0.95, 0.4, 0.0]), kind="stable").tolist() == [3, 1, 2, 0]
