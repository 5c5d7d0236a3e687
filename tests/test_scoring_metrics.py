"""kit.scoring.metrics: the leaderboard's metric is scikit-learn's, and the diagnostics are right."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from kit.errors import UserError
from kit.scoring.metrics import (
    METRICS,
    _is_constant,
    binned_root_mean_squared_error,
    diagnostics,
    get_metric,
    mean_absolute_error,
    pearson_score,
    per_bin_rmse,
    root_mean_squared_error,
)

finite = st.floats(min_value=-2.0, max_value=3.0, allow_nan=False, allow_infinity=False)
pairs = st.integers(min_value=1, max_value=60).flatmap(
    lambda n: st.tuples(st.lists(finite, min_size=n, max_size=n), st.lists(finite, min_size=n, max_size=n))
)


@settings(max_examples=60, deadline=None)
@given(pairs)
def test_rmse_and_mae_equal_sklearn(data):
    y_true, y_pred = data
    assert root_mean_squared_error(y_true, y_pred) == pytest.approx(
        skm.root_mean_squared_error(y_true, y_pred), abs=1e-12, rel=0
    )
    assert mean_absolute_error(y_true, y_pred) == pytest.approx(skm.mean_absolute_error(y_true, y_pred), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(pairs)
def test_pearson_matches_numpy(data):
    y_true, y_pred = map(np.asarray, data)
    ours = pearson_score(y_true, y_pred)
    if len(y_true) < 2 or _is_constant(y_true) or _is_constant(y_pred):
        assert math.isnan(ours)
    else:
        with np.errstate(all="ignore"):
            reference = np.corrcoef(y_true, y_pred)[0, 1]
        if np.isfinite(reference):
            assert ours == pytest.approx(reference, abs=1e-9)


@pytest.mark.parametrize("value", [0.1, 0.3, 1 / 3, 0.7, 0.123456, 1e-300, -2.5, 0.0])
@pytest.mark.parametrize("n", [2, 3, 7, 10, 100, 1000])
def test_pearson_of_constant_predictions_is_nan(value, n):
    # The float mean of n equal values can be off in the last bit; the spread cannot.
    truth = np.linspace(0, 1, n)
    assert math.isnan(pearson_score(truth, np.full(n, value)))
    assert math.isnan(pearson_score(np.full(n, value), truth))


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), st.integers(min_value=2, max_value=500),
       st.integers(min_value=0, max_value=2**32 - 1))
def test_pearson_of_any_constant_is_nan(value, n, seed):
    truth = np.random.default_rng(seed).random(n)
    assert math.isnan(pearson_score(truth, np.full(n, value)))


@pytest.mark.parametrize("step", [1e-9, 1e-6, 0.5])
def test_pearson_of_small_but_real_spread_is_defined(step):
    truth = np.linspace(0, 1, 50)
    assert pearson_score(truth, 0.5 + step * truth) == pytest.approx(1.0)
    assert pearson_score(truth, 0.5 - step * truth) == pytest.approx(-1.0)


def test_per_bin_rmse_uses_true_similarity_bins():
    truth = [0.05, 0.05, 0.35, 1.0]
    pred = [0.15, 0.05, 0.35, 0.5]
    bins = per_bin_rmse(truth, pred)
    assert bins[0] == pytest.approx(math.sqrt(0.01 / 2))
    assert bins[3] == 0.0
    assert bins[9] == pytest.approx(0.5)  # 1.0 falls in the top bin
    assert np.isnan(bins[[1, 2, 4, 5, 6, 7, 8]]).all()


def test_binned_rmse_is_unweighted_mean_of_nonempty_bins():
    truth = [0.05] * 99 + [0.95]
    pred = [0.05] * 99 + [0.55]
    assert binned_root_mean_squared_error(truth, pred) == pytest.approx(0.2)
    assert root_mean_squared_error(truth, pred) == pytest.approx(0.04)


def test_empty_input_gives_nan_not_an_error():
    assert math.isnan(root_mean_squared_error([], []))
    assert math.isnan(binned_root_mean_squared_error([], []))


def test_length_mismatch_is_a_value_error():
    with pytest.raises(ValueError, match="one length"):
        root_mean_squared_error([0.1, 0.2], [0.1])


def test_diagnostics_are_plain_json_values():
    d = diagnostics([0.05, 0.95, 0.5], [0.1, 0.9, 0.5])
    assert set(d) == {"rmse", "binned_rmse", "per_bin_rmse", "bin_rows", "mae", "pearson", "rows"}
    assert d["per_bin_rmse"]["0.1-0.2"] is None
    assert d["bin_rows"]["0.9-1.0"] == 1 and d["rows"] == 3
    assert isinstance(d["rmse"], float)


def test_metrics_know_their_direction():
    rmse, pearson = get_metric("rmse"), get_metric("pearson")
    assert rmse.lower_is_better and not pearson.lower_is_better
    assert rmse.is_better(0.1, 0.2) and pearson.is_better(0.9, 0.8)
    assert sorted([0.3, 0.1, 0.2], key=rmse.sort_key) == [0.1, 0.2, 0.3]
    assert sorted([0.3, 0.1, 0.2], key=pearson.sort_key) == [0.3, 0.2, 0.1]
    assert rmse.sort_key(float("nan")) == math.inf  # missing scores sort last


def test_ties_are_judged_at_the_reported_precision():
    rmse = get_metric({"name": "rmse", "decimals": 5})
    assert not rmse.is_better(0.1234500001, 0.1234500002)
    assert rmse.format(0.123456789) == "0.12346"


def test_metric_names_follow_the_error_score_convention():
    for metric in METRICS.values():
        suffix = metric.function.__name__.rsplit("_", 1)[-1]
        assert suffix == ("error" if metric.lower_is_better else "score")


@pytest.mark.parametrize("spec", ["f1", {"name": "rmse", "direction": "sideways"}, {"name": "rmse", "decimals": -1}])
def test_bad_metric_specs_are_user_errors(spec):
    with pytest.raises(UserError):
        get_metric(spec)


@settings(max_examples=30, deadline=None)
@given(pairs)
def test_diagnostics_agree_with_the_single_metrics(data):
    y_true, y_pred = np.clip(data[0], 0, 1), data[1]
    d = diagnostics(y_true, y_pred)
    assert d["rmse"] == root_mean_squared_error(y_true, y_pred)
    assert d["mae"] == pytest.approx(skm.mean_absolute_error(y_true, y_pred), abs=1e-12)
    expected_bins = per_bin_rmse(y_true, y_pred)
    got_bins = np.array([np.nan if v is None else v for v in d["per_bin_rmse"].values()])
    np.testing.assert_allclose(got_bins, expected_bins, rtol=0, atol=1e-12)
    assert d["binned_rmse"] == pytest.approx(binned_root_mean_squared_error(y_true, y_pred), abs=1e-12)
