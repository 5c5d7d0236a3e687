"""The bottom rung: predict the mean Tanimoto of the training pairs for every pair.

It ignores the spectra entirely, so every other rung has to beat it. Its RMSE on a
competition is about the spread of the test labels. The helpers here (parameter checks,
training pairs, the validation score) are what the classical rungs share.

Examples
--------
>>> from kit.models.mean import MeanModel
>>> model = MeanModel(n_pairs=2000, seed=0).fit(train_spectra)   # doctest: +SKIP
>>> model.predict(test_spectra, test_pairs)[:3]                   # doctest: +SKIP
array([0.49, 0.49, 0.49])
"""
import numbers
import time

import numpy as np
from sklearn.dummy import DummyRegressor

from kit.errors import UserError
from kit.models.base import PairModel, check_spectra

# Validation pairs drawn from validation spectra: enough for a score to 3 decimals.
MAX_VALIDATION_PAIRS = 5000


def check_int(value, name, minimum=1):
    """``value`` as an int, or a TypeError / UserError naming the parameter.

    Examples
    --------
    >>> check_int(20000, "n_pairs")
    20000
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise UserError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def check_float(value, name, minimum=0.0, inclusive=False):
    """``value`` as a float, or a TypeError / UserError naming the parameter.

    Examples
    --------
    >>> check_float(0.1, "tolerance")
    0.1
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < minimum or (value == minimum and not inclusive):
        bound = f">= {minimum}" if inclusive else f"> {minimum}"
        raise UserError(f"{name} must be a finite number {bound}, got {value}")
    return value


def seed_streams(seed):
    """Independent generators for the training pairs and the validation pairs of one seed.

    Examples
    --------
    >>> train, valid = seed_streams(0)
    >>> bool(train.random() != valid.random())
    True
    """
    seed = check_int(seed, "seed", minimum=0)
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)]


def training_pairs(spectra, n_pairs, rng, what="training spectra"):
    """Bin-balanced spectrum pairs of ``spectra`` (which carry structures) and their Tanimoto.

    Returns
    -------
    idx_a, idx_b : int arrays of positions in ``spectra``
    similarity : float64 array

    Raises
    ------
    UserError
        When the spectra offer no pair at all (one molecule with a single spectrum).

    Examples
    --------
    >>> idx_a, idx_b, y = training_pairs(train_spectra, 1000, np.random.default_rng(0))   # doctest: +SKIP
    >>> len(y)                                                                             # doctest: +SKIP
    1000
    """
    from kit.pairs import PairSampler

    idx_a, idx_b, similarity = PairSampler.from_spectra(spectra).sample(n_pairs, rng)
    if len(idx_a) == 0:
        raise UserError(
            f"no pairs can be drawn from the {len(spectra):,} {what}: expected at least two molecules, "
            "or two spectra of one molecule"
        )
    return idx_a, idx_b, similarity


def validation_rmse(model, spectra, n_pairs, rng):
    """RMSE of a fitted model on bin-balanced pairs of ``spectra`` (which carry structures).

    Examples
    --------
    >>> model = MeanModel().fit(train_spectra)                                      # doctest: +SKIP
    >>> validation_rmse(model, valid_spectra, 2000, np.random.default_rng(0))      # doctest: +SKIP
    0.2873
    """
    check_spectra(spectra, "validation spectra")
    idx_a, idx_b, truth = training_pairs(spectra, min(n_pairs, MAX_VALIDATION_PAIRS), rng, "validation spectra")
    pred = np.asarray(model._predict_indices(spectra, idx_a, idx_b), dtype=float)
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


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
    validation_score_ : float or None
        RMSE on pairs of ``validation_spectra`` when given to :meth:`fit`.
    fit_seconds_ : float

    Examples
    --------
    >>> model = MeanModel(n_pairs=500, seed=0).fit(train_spectra)   # doctest: +SKIP
    >>> float(model.regressor_.constant_[0, 0])                      # doctest: +SKIP
    0.49
    """

    name = "mean"

    def __init__(self, n_pairs=20000, seed=0):
        self.n_pairs = n_pairs
        self.seed = seed

    def fit(self, spectra, validation_spectra=None):
        """Draw training pairs from ``spectra`` and remember their mean Tanimoto; return self."""
        start = time.perf_counter()
        n_pairs = check_int(self.n_pairs, "n_pairs")
        check_spectra(spectra, "training spectra")
        train_rng, valid_rng = seed_streams(self.seed)
        _, _, similarity = training_pairs(spectra, n_pairs, train_rng)
        self.regressor_ = DummyRegressor(strategy="mean").fit(np.zeros((len(similarity), 1)), similarity)
        self.n_train_pairs_ = int(len(similarity))
        self.fitted_ = True
        self.validation_score_ = (
            None if validation_spectra is None else validation_rmse(self, validation_spectra, n_pairs, valid_rng)
        )
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _predict_indices(self, spectra, idx_a, idx_b):
        return self.regressor_.predict(np.zeros((len(idx_a), 1)))
