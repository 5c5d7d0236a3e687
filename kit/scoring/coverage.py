"""RMSE against coverage: how much better the predictions a model is surest of are.

Drop the pairs a model is least certain of and score the rest: where the uncertainty
means something, the RMSE falls as the coverage (the share of pairs kept) falls. The
uncertainty may be the siamese's Monte Carlo dropout spread (``kit predict --with-std``)
or any other number per pair; :func:`trivial_uncertainty` is the ordering any
prediction gives for free, the one a spread must beat to be worth its passes.

Examples
--------
>>> import numpy as np
>>> truth = np.array([0.1, 0.9, 0.5, 0.2])
>>> predicted = np.array([0.1, 0.8, 0.2, 0.2])
>>> spread = np.array([0.01, 0.05, 0.30, 0.02])
>>> rmse_by_coverage(truth, predicted, spread, coverages=(1.0, 0.5)).round(3).tolist()
[0.158, 0.0]
"""
import numpy as np

#: Shares of pairs kept: 100%, 90%, ..., 10%.
COVERAGES = tuple(round(1.0 - 0.1 * k, 1) for k in range(10))


def kept_count(n, coverage):
    """How many of ``n`` pairs a coverage keeps: at least one, rounded to the nearest.

    Examples
    --------
    >>> kept_count(1000, 0.5), kept_count(3, 0.1)
    (500, 1)
    """
    if not 0 < coverage <= 1:
        raise ValueError(f"coverage must be a number in (0, 1], found {coverage!r}")
    return max(1, int(round(n * coverage)))


def rmse_by_coverage(truth, predicted, uncertainty, coverages=COVERAGES):
    """RMSE of the pairs kept at each coverage when the least certain are dropped first.

    Parameters
    ----------
    truth, predicted, uncertainty : array-like of float
        One per pair; a larger ``uncertainty`` is dropped earlier (ties keep the order
        given, so the result does not depend on the sort's luck).
    coverages : sequence of float in (0, 1]
        Shares of pairs kept.

    Returns
    -------
    numpy.ndarray of float, one RMSE per coverage.

    Examples
    --------
    >>> rmse_by_coverage([0.0, 1.0], [0.0, 0.0], [0.0, 1.0], coverages=(1.0, 0.5)).round(3).tolist()
    [0.707, 0.0]
    """
    truth, predicted, uncertainty = (np.asarray(x, dtype=float) for x in (truth, predicted, uncertainty))
    if not truth.shape == predicted.shape == uncertainty.shape or truth.ndim != 1 or truth.size == 0:
        raise ValueError(f"expected three equal, non-empty 1-d arrays, found shapes {truth.shape}, "
                         f"{predicted.shape} and {uncertainty.shape}")
    if not (np.isfinite(truth).all() and np.isfinite(predicted).all() and np.isfinite(uncertainty).all()):
        raise ValueError("expected finite numbers: found NaN or infinite values")
    squared = ((predicted - truth) ** 2)[np.argsort(uncertainty, kind="stable")]
    running = np.cumsum(squared)
    return np.array([np.sqrt(running[kept_count(truth.size, c) - 1] / kept_count(truth.size, c)) for c in coverages])


def trivial_uncertainty(predicted):
    """The ordering any prediction gives: ``0.5 - |predicted - 0.5|``, largest for a similarity near 0.5.

    Examples
    --------
    >>> trivial_uncertainty([0.5, 0.9, 0.1]).round(2).tolist()
    [0.5, 0.1, 0.1]
    """
    return 0.5 - np.abs(np.asarray(predicted, dtype=float) - 0.5)
