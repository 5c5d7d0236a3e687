"""The siamese's calibration: an isotonic map from the network's predictions to similarities, held-out checked."""

import numpy as np
from sklearn.isotonic import IsotonicRegression

# about 160); a larger fit keeps evenly spaced ones, so the manifest stays small.
MAX_CALIBRATION_POINTS = 4096


def fit_calibration(predicted, truth):
    """The isotonic map from predictions to true similarities, as plain lists.

    :class:`sklearn.isotonic.IsotonicRegression` fits it; its points are kept (not the
    fitted object, which only pickle could save) and :func:`apply_calibration`
    interpolates between them as the estimator's own ``predict`` does.

    Parameters
    ----------
    predicted, truth : array-like of float
        Predictions on held-out pairs and their true Tanimoto scores.

    Returns
    -------
    dict
        ``{"x": [...], "y": [...]}``: increasing predictions and what each maps to.

    Examples
    --------
    >>> fit_calibration([0.1, 0.5, 0.9, 0.95], [0.0, 0.6, 0.4, 1.0])
    {'x': [0.1, 0.5, 0.9, 0.95], 'y': [0.0, 0.5, 0.5, 1.0]}
    """
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(np.asarray(predicted, dtype=np.float64), np.asarray(truth, dtype=np.float64))
    x, y = iso.X_thresholds_, iso.y_thresholds_
    if len(x) > MAX_CALIBRATION_POINTS:
        keep = np.unique(np.linspace(0, len(x) - 1, MAX_CALIBRATION_POINTS).round().astype(int))
        x, y = x[keep], y[keep]
    return {"x": x.tolist(), "y": y.tolist()}


#: The map of a siamese whose calibration showed no gain on held-out molecules.
IDENTITY_CALIBRATION = {"x": [0.0, 1.0], "y": [0.0, 1.0]}
# Fewest pairs on each side of the held-out check; with fewer, calibration is declined.
MIN_CALIBRATION_PAIRS = 100


def held_out_calibration(predicted, truth, pair_molecules, rng):
    """An isotonic map where it lowers the RMSE on molecules it was not fitted on, else the identity.

    scikit-learn warns that isotonic calibration overfits small calibration sets; a
    map that helps the pairs it was fitted on may cost on new molecules. So the
    molecules are split in two halves (``rng``); a map fitted on the pairs within one
    half is scored on the pairs within the other, both ways round. Only when both
    halves gain is the map fitted on every pair kept
    (:func:`fit_calibration`); otherwise the identity (:data:`IDENTITY_CALIBRATION`).

    Parameters
    ----------
    predicted, truth : array-like of float
        The network's predictions on validation pairs and their true Tanimoto scores.
    pair_molecules : (n, 2) int array
        The two molecules of each pair.
    rng : numpy.random.Generator

    Returns
    -------
    calibration : dict
        ``{"x": [...], "y": [...]}`` as :func:`fit_calibration` writes it.
    gains : list of two floats
        RMSE without the map minus RMSE with it, on each held-out half (NaN where a
        half has fewer than :data:`MIN_CALIBRATION_PAIRS` pairs).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> molecules = rng.integers(0, 200, size=(4000, 2))
    >>> truth = rng.random(4000)
    >>> squeezed = 0.5 + 0.5 * (truth - 0.5)   # an under-confident network
    >>> calibration, gains = held_out_calibration(squeezed, truth, molecules, rng)
    >>> calibration != IDENTITY_CALIBRATION and min(gains) > 0
    True
    >>> calibrated = rng.uniform(0.2, 0.8, 4000)   # a network already calibrated
    >>> truth = calibrated + rng.normal(0.0, 0.1, 4000)
    >>> held_out_calibration(calibrated, truth, molecules, rng)[0] == IDENTITY_CALIBRATION
    True
    """
    predicted, truth = np.asarray(predicted, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    pair_molecules = np.asarray(pair_molecules, dtype=np.int64).reshape(-1, 2)
    n_molecules = int(pair_molecules.max()) + 1 if pair_molecules.size else 0
    first = np.zeros(n_molecules, dtype=bool)
    first[rng.permutation(n_molecules)[: n_molecules // 2]] = True
    side = first[pair_molecules]
    halves = (side[:, 0] & side[:, 1], ~side[:, 0] & ~side[:, 1])
    gains = []
    for fit_on, score_on in (halves, halves[::-1]):
        if min(fit_on.sum(), score_on.sum()) < MIN_CALIBRATION_PAIRS:
            gains.append(float("nan"))
            continue
        calibration = fit_calibration(predicted[fit_on], truth[fit_on])
        before = np.sqrt(np.mean((predicted[score_on] - truth[score_on]) ** 2))
        after = np.sqrt(np.mean((apply_calibration(calibration, predicted[score_on]) - truth[score_on]) ** 2))
        gains.append(float(before - after))
    if all(gain > 0 for gain in gains):  # NaN compares false: too few pairs declines calibration
        return fit_calibration(predicted, truth), gains
    return dict(IDENTITY_CALIBRATION), gains


def apply_calibration(calibration, scores):
    """``scores`` through a map from :func:`fit_calibration`; unchanged for None.

    Linear between the map's points and flat beyond its ends, as
    ``IsotonicRegression(out_of_bounds="clip").predict``.

    Examples
    --------
    >>> apply_calibration({"x": [0.2, 0.8], "y": [0.1, 0.9]}, np.array([0.0, 0.5, 1.0]))
    array([0.1, 0.5, 0.9])
    """
    if calibration is None:
        return scores
    return np.interp(scores, calibration["x"], calibration["y"]).astype(np.asarray(scores).dtype, copy=False)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


