"""The bottom rung: predict the mean Tanimoto of the training pairs for every pair.

It ignores the spectra entirely, so every other rung has to beat it. Its RMSE on a
competition is about the spread of the test labels.

Examples
--------
>>> from kit.models.mean import MeanModel
>>> model = MeanModel(n_pairs=2000, seed=0).fit(train_spectra)   # doctest: +SKIP
>>> model.predict(test_spectra, test_pairs)[:3]                   # doctest: +SKIP
array([0.49, 0.49, 0.49])
"""
import time
from typing import Self

import numpy as np
from sklearn.dummy import DummyRegressor

from kit.constraints import Integral, Interval
from kit.models.base import SEED, PairModel, Spectra, check_spectra, training_pairs
from kit.models.untrusted import check_dummy_regressor


class MeanModel(PairModel):
    """Predicts the mean Tanimoto of bin-balanced training pairs, whatever the spectra.

    Parameters
    ----------
    n_pairs : int, default 20000
        Training pairs drawn (bin-balanced, by molecule).
    seed : int, default 0
        Seeds the pair sampling.

    Attributes
    ----------
    regressor_ : sklearn.dummy.DummyRegressor
    n_train_pairs_ : int
    fit_seconds_ : float

    Examples
    --------
    >>> model = MeanModel(n_pairs=500, seed=0).fit(train_spectra)   # doctest: +SKIP
    >>> float(model.regressor_.constant_[0, 0])                      # doctest: +SKIP
    0.49
    """

    name = "mean"
    state_types = {"regressor_": DummyRegressor, "n_train_pairs_": int}
    _parameter_constraints = {"n_pairs": Interval(Integral, 1, None), "seed": SEED}

    def __init__(self, n_pairs=20000, seed=0):
        self.n_pairs = n_pairs
        self.seed = seed

    def fit(self, spectra: Spectra, validation_spectra: Spectra | None = None) -> Self:
        """Draw training pairs from ``spectra`` and remember their mean Tanimoto; return self.

        ``validation_spectra`` is accepted so that every rung has one signature; this rung
        has nothing to tune on it.
        """
        start = time.perf_counter()
        params = self._validate_params()
        check_spectra(spectra, "training spectra")
        _, _, similarity = training_pairs(spectra, params["n_pairs"], np.random.default_rng(params["seed"]))
        self.regressor_ = DummyRegressor(strategy="mean").fit(np.zeros((len(similarity), 1)), similarity)
        self.n_train_pairs_ = int(len(similarity))
        self.fitted_ = True
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def check_loaded_state(self, where):
        """Also refuse a regressor that is not one mean of one output (:func:`~kit.models.untrusted.check_dummy_regressor`)."""
        super().check_loaded_state(where)
        check_dummy_regressor(self.regressor_, where)

    def _predict_indices(self, spectra, idx_a, idx_b):
        return self.regressor_.predict(np.zeros((len(idx_a), 1)))
