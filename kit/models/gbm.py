"""The gradient-boosting rung: a HistGradientBoostingRegressor on pair features.

The features (:mod:`kit.models.features`) are what a chemist would look at first: cosine and
modified cosine with their matched peaks, shared neutral losses, binned-spectrum cosines,
the precursor m/z difference, and how busy each spectrum is. Boosted trees learn how to
weigh them against each other, which a single calibrated score cannot.

Examples
--------
>>> from kit.models.gbm import GBMModel
>>> model = GBMModel(n_pairs=20000, seed=0).fit(train_spectra)   # doctest: +SKIP
>>> model.predict(test_spectra, test_pairs)[:3]                   # doctest: +SKIP
array([0.18, 0.71, 0.33])
"""
import time
from typing import Self

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from kit.constraints import Boolean, Integral, Interval, OrNone, Real
from kit.errors import UserError
from kit.models.base import SEED, PairModel, Spectra, check_spectra, training_pairs
from kit.models.cosine import CosineModel
from kit.models.features import BIN_WIDTH, CROSS_MODE_FEATURE_NAMES, FEATURE_NAMES, TOLERANCE, pair_features
from kit.models.untrusted import MAX_TREE_NODES, MAX_TREES, check_hist_gradient_boosting

#: Narrowest and widest bin (Da) of the binned-spectrum cosines: a bin of 1e-300 Da would
#: overflow the bin count, one wider than the m/z range puts every peak in one bin.
BIN_WIDTH_RANGE = (1e-3, 100.0)


class GBMModel(PairModel):
    """Gradient boosting (scikit-learn ``HistGradientBoostingRegressor``) on pair features.

    Parameters
    ----------
    n_pairs : int, default 20000
        Training pairs drawn (bin-balanced, by molecule).
    tolerance : float, default 0.1
        m/z tolerance (Da) of the matchms scores.
    bin_width : float, default 1.0
        Bin width (Da) of the binned-spectrum cosines.
    max_iter : int, default 500
        Most boosting iterations; early stopping usually ends sooner.
    learning_rate : float, default 0.1
    max_leaf_nodes : int, default 31
    min_samples_leaf : int, default 20
    l2_regularization : float, default 0.0
    early_stopping : bool, default True
        Stop when the loss on a held-out 10% of the training pairs has not improved
        for 20 iterations.
    cross_mode : bool or None, default None
        Also learn from the features that compare a positive and a negative spectrum as
        neutral molecules (:data:`kit.models.features.CROSS_MODE_FEATURE_NAMES`). ``None``:
        off, except that ``kit train`` turns it on for a competition of cross-mode pairs
        (``--pair-types`` with ``cross``), so every other competition keeps the features
        (and predictions) it always had.
    seed : int, default 0
        Seeds the pair sampling and the boosting.
    progress : bool, default True
        Show progress bars while computing pair features.

    Attributes
    ----------
    regressor_ : sklearn.ensemble.HistGradientBoostingRegressor
    feature_names_ : list of str
    n_train_pairs_ : int
    fit_seconds_ : float

    Examples
    --------
    >>> model = GBMModel(n_pairs=5000, progress=False).fit(train_spectra)   # doctest: +SKIP
    >>> model.regressor_.n_iter_                                             # doctest: +SKIP
    143
    """

    name = "gbm"
    state_types = {"regressor_": HistGradientBoostingRegressor, "feature_names_": list, "n_train_pairs_": int}
    _parameter_constraints = {
        "n_pairs": Interval(Integral, 1, None),
        "tolerance": CosineModel._parameter_constraints["tolerance"],
        "bin_width": Interval(Real, *BIN_WIDTH_RANGE),
        "max_iter": Interval(Integral, 1, MAX_TREES),
        "learning_rate": Interval(Real, 0, None, closed="neither"),
        "max_leaf_nodes": Interval(Integral, 2, MAX_TREE_NODES // 2),
        "min_samples_leaf": Interval(Integral, 1, None),
        "l2_regularization": Interval(Real, 0, None),
        "early_stopping": Boolean(),
        "cross_mode": OrNone(Boolean()),
        "seed": SEED,
        "progress": Boolean(),
    }

    def __init__(
        self,
        n_pairs=20000,
        tolerance=TOLERANCE,
        bin_width=BIN_WIDTH,
        max_iter=500,
        learning_rate=0.1,
        max_leaf_nodes=31,
        min_samples_leaf=20,
        l2_regularization=0.0,
        early_stopping=True,
        cross_mode=None,
        seed=0,
        progress=True,
    ):
        self.n_pairs = n_pairs
        self.tolerance = tolerance
        self.bin_width = bin_width
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.early_stopping = early_stopping
        self.cross_mode = cross_mode
        self.seed = seed
        self.progress = progress

    def features(self, spectra, idx_a, idx_b, cross_mode=None):
        """The pair features (a DataFrame, columns :data:`kit.models.features.FEATURE_NAMES`, then the
        cross-mode ones where ``cross_mode``; by default as the fitted model uses them)."""
        params = self._validate_params()
        if cross_mode is None:
            cross_mode = any(name in CROSS_MODE_FEATURE_NAMES for name in getattr(self, "feature_names_", ()))
        return pair_features(spectra, idx_a, idx_b, tolerance=params["tolerance"], bin_width=params["bin_width"],
                             progress=params["progress"], cross_mode=cross_mode)

    def _regressor(self, params):
        """The unfitted booster of checked ``params`` (:meth:`_validate_params`)."""
        return HistGradientBoostingRegressor(
            max_iter=params["max_iter"],
            learning_rate=params["learning_rate"],
            max_leaf_nodes=params["max_leaf_nodes"],
            min_samples_leaf=params["min_samples_leaf"],
            l2_regularization=params["l2_regularization"],
            early_stopping=params["early_stopping"],
            validation_fraction=0.1,
            n_iter_no_change=20,
            random_state=params["seed"],
        )

    def fit(self, spectra: Spectra, validation_spectra: Spectra | None = None) -> Self:
        """Fit the boosted trees on features of training pairs of ``spectra``; return self."""
        start = time.perf_counter()
        params = self._validate_params()
        regressor = self._regressor(params)
        check_spectra(spectra, "training spectra")
        idx_a, idx_b, similarity = training_pairs(spectra, params["n_pairs"], np.random.default_rng(params["seed"]))
        cross_mode = bool(params["cross_mode"])  # None: off, unless the competition's pairs cross modes (kit train)
        x = self.features(spectra, idx_a, idx_b, cross_mode=cross_mode)
        self.regressor_ = regressor.fit(x, similarity)
        self.feature_names_ = list(x.columns)
        self.n_train_pairs_ = int(len(similarity))
        self.fitted_ = True
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def check_loaded_state(self, where):
        """Also refuse features the kit does not compute and trees a prediction cannot trust.

        The trees are checked by :func:`kit.models.untrusted.check_hist_gradient_boosting`.
        """
        super().check_loaded_state(where)
        self.check_feature_names(FEATURE_NAMES + CROSS_MODE_FEATURE_NAMES, where)
        check_hist_gradient_boosting(self.regressor_, self.feature_names_, where)

    def check_feature_names(self, known, where):
        """Refuse feature names outside ``known``, repeated, or not a list of strings."""
        names = self.feature_names_
        if (not names or len(names) > len(known) or not all(isinstance(n, str) and n in known for n in names)
                or len(set(names)) != len(names)):
            raise UserError(f"{where}: the saved {self.name} model's feature names are not the kit's pair features")

    def _predict_indices(self, spectra, idx_a, idx_b):
        x = self.features(spectra, idx_a, idx_b)
        return np.clip(self.regressor_.predict(x[self.feature_names_]), 0.0, 1.0)
