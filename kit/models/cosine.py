"""The cosine rung: matchms's modified cosine, calibrated to Tanimoto.

A modified cosine of 0.9 does not mean a Tanimoto of 0.9: spectra of quite different
molecules can share a few fragments, and close analogues can fragment differently. An
isotonic regression, fitted on bin-balanced training pairs, maps the score to the mean
Tanimoto of pairs with that score while keeping the order of the scores.

Examples
--------
>>> from kit.models.cosine import CosineModel
>>> model = CosineModel(n_pairs=5000, seed=0).fit(train_spectra)   # doctest: +SKIP
>>> model.predict(test_spectra, test_pairs)[:3]                     # doctest: +SKIP
array([0.21, 0.63, 0.35])
"""
import time
from typing import Self

import numpy as np
from sklearn.isotonic import IsotonicRegression

from kit.constraints import Boolean, Integral, Interval, Real, check_param
from kit.models.base import SEED, PairModel, Spectra, check_spectra, training_pairs
from kit.models.features import TOLERANCE, modified_cosine_scores
from kit.models.untrusted import check_isotonic

#: Widest m/z tolerance (Da) a model may match peaks with; wider matches everything with everything.
MAX_TOLERANCE = 10.0


class CosineModel(PairModel):
    """Modified cosine score (matchms ``ModifiedCosineGreedy``) mapped to Tanimoto.

    Parameters
    ----------
    n_pairs : int, default 20000
        Training pairs drawn (bin-balanced, by molecule) to fit the calibration.
    tolerance : float, default 0.1
        m/z tolerance (Da) for two peaks to match.
    seed : int, default 0
        Seeds the pair sampling.
    progress : bool, default True
        Show progress bars while scoring pairs.

    Attributes
    ----------
    calibration_ : sklearn.isotonic.IsotonicRegression
        Modified cosine -> Tanimoto, non-decreasing, clipped to [0, 1].
    n_train_pairs_ : int
    fit_seconds_ : float

    Examples
    --------
    >>> model = CosineModel(n_pairs=2000).fit(train_spectra)   # doctest: +SKIP
    >>> model.calibrate([0.0, 0.5, 1.0])                        # doctest: +SKIP
    array([0.18, 0.41, 0.83])
    """

    name = "cosine"
    state_types = {"calibration_": IsotonicRegression, "n_train_pairs_": int}
    _parameter_constraints = {
        "n_pairs": Interval(Integral, 1, None),
        "tolerance": Interval(Real, 0, MAX_TOLERANCE, closed="right"),
        "seed": SEED,
        "progress": Boolean(),
    }

    def __init__(self, n_pairs=20000, tolerance=TOLERANCE, seed=0, progress=True):
        self.n_pairs = n_pairs
        self.tolerance = tolerance
        self.seed = seed
        self.progress = progress

    def scores(self, spectra, idx_a, idx_b):
        """Uncalibrated modified cosine of each pair (positions in ``spectra``)."""
        tolerance = check_param(self.tolerance, "tolerance", self._parameter_constraints["tolerance"])
        scores, _ = modified_cosine_scores(spectra, idx_a, idx_b, tolerance, progress=bool(self.progress))
        return scores

    def fit(self, spectra: Spectra, validation_spectra: Spectra | None = None) -> Self:
        """Fit the calibration on training pairs of ``spectra``; return self."""
        start = time.perf_counter()
        params = self._validate_params()
        check_spectra(spectra, "training spectra")
        idx_a, idx_b, similarity = training_pairs(spectra, params["n_pairs"], np.random.default_rng(params["seed"]))
        calibration = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        self.calibration_ = calibration.fit(self.scores(spectra, idx_a, idx_b), similarity)
        self.n_train_pairs_ = int(len(similarity))
        self.fitted_ = True
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def check_loaded_state(self, where):
        """Also refuse a calibration map that is not bounded and sorted (:func:`~kit.models.untrusted.check_isotonic`)."""
        super().check_loaded_state(where)
        check_isotonic(self.calibration_, where)

    def calibrate(self, scores):
        """Tanimoto predicted for modified cosine ``scores`` (array-like)."""
        self._check_fitted()
        return np.clip(self.calibration_.predict(np.asarray(scores, dtype=float).ravel()), 0.0, 1.0)

    def _predict_indices(self, spectra, idx_a, idx_b):
        return self.calibrate(self.scores(spectra, idx_a, idx_b))
