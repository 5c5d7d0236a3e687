"""Metrics of a similarity prediction (README, "A competition on disk": the metric).

Functions ending in ``_error`` are lower-is-better, those ending in ``_score`` are
higher-is-better. Each is registered as a :class:`Metric` that knows its direction, so
ranking code sorts any of them the same way.

Only NumPy is imported: ``kit score`` must start fast, and importing scikit-learn costs
more than scoring a million rows. The tests check that :func:`root_mean_squared_error`
equals :func:`sklearn.metrics.root_mean_squared_error` to 1e-12.
"""
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from kit.data.tanimoto_bins import BAND_LABELS, BIN_LABELS, N_BINS, PAIR_TYPES, bin_index
from kit.errors import UserError

MINIMIZE = "minimize"
MAXIMIZE = "maximize"


def _pair(y_true, y_pred):
    """Both inputs as 1-D float arrays of one length (a :class:`ValueError` otherwise)."""
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"expected arrays of one length, found {y_true.size} truths and {y_pred.size} predictions")
    return y_true, y_pred


def root_mean_squared_error(y_true, y_pred):
    """Root mean squared error, computed as scikit-learn and Kaggle compute it.

    ``sqrt(mean((y_true - y_pred) ** 2))``; NaN for empty input.

    Examples
    --------
    >>> root_mean_squared_error([0.0, 1.0], [0.0, 0.0])
    0.7071067811865476
    """
    y_true, y_pred = _pair(y_true, y_pred)
    if y_true.size == 0:
        return math.nan
    # Same order of operations as sklearn: mean of squared differences, then sqrt.
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def mean_absolute_error(y_true, y_pred):
    """Mean absolute error; NaN for empty input.

    Examples
    --------
    >>> mean_absolute_error([0.0, 1.0], [0.5, 0.5])
    0.5
    """
    y_true, y_pred = _pair(y_true, y_pred)
    if y_true.size == 0:
        return math.nan
    return float(np.mean(np.abs(y_true - y_pred)))


def pearson_score(y_true, y_pred):
    """Pearson correlation of predictions and truths; NaN when either is constant.

    Constant means a spread (max - min) within a few rounding errors of the values'
    size: the float mean of equal values can differ from them in the last bit, and
    centring on it would turn that rounding into a spurious correlation.

    Examples
    --------
    >>> round(pearson_score([0.1, 0.5, 0.9], [0.2, 0.4, 0.6]), 6)
    1.0
    >>> pearson_score([0.1, 0.5], [0.3, 0.3])
    nan
    >>> pearson_score([0.1, 0.5, 0.9], [0.1, 0.1, 0.1])
    nan
    """
    y_true, y_pred = _pair(y_true, y_pred)
    if y_true.size < 2 or _is_constant(y_true) or _is_constant(y_pred):
        return math.nan
    dt = y_true - y_true.mean()
    dp = y_pred - y_pred.mean()
    # Sums rather than np.dot: pairwise summation is more accurate and needs no BLAS threads.
    denominator = math.sqrt(float((dt * dt).sum()) * float((dp * dp).sum()))
    if denominator == 0.0:
        return math.nan
    # Clip: rounding can push a perfect correlation a hair past 1.
    return float(min(1.0, max(-1.0, float((dt * dp).sum()) / denominator)))


def _is_constant(values):
    """True when the spread of ``values`` is within rounding error of their size.

    Examples
    --------
    >>> _is_constant(np.full(3, 0.1)), _is_constant(np.array([0.1, 0.1 + 1e-9]))
    (True, False)
    """
    spread = float(np.ptp(values))
    return bool(spread <= 4 * np.finfo(np.float64).eps * float(np.max(np.abs(values))))


def per_bin_rmse(y_true, y_pred):
    """RMSE within each Tanimoto bin of the TRUE similarity; NaN for an empty bin.

    Returns
    -------
    numpy.ndarray
        ``N_BINS`` values, bin ``k`` covering ``[k/10, (k+1)/10)`` (the top bin includes 1).

    Examples
    --------
    >>> per_bin_rmse([0.05, 0.95], [0.15, 0.95]).round(3).tolist()[::9]
    [0.1, 0.0]
    """
    return _per_bin(*_pair(y_true, y_pred))[0]


def _per_bin(y_true, y_pred):
    """``(per-bin RMSE, rows per bin)`` of two checked arrays."""
    bins = bin_index(y_true)
    squared = (y_true - y_pred) ** 2
    counts = np.bincount(bins, minlength=N_BINS)
    sums = np.bincount(bins, weights=squared, minlength=N_BINS)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.sqrt(sums / np.maximum(counts, 1)), np.nan), counts


def _mean_of_filled(per_bin):
    """The mean of the per-bin values of non-empty bins; NaN when every bin is empty."""
    values = per_bin[~np.isnan(per_bin)]
    return float(np.mean(values)) if values.size else math.nan


def binned_root_mean_squared_error(y_true, y_pred):
    """Unweighted mean of the per-bin RMSEs over non-empty bins (MS2DeepScore's summary).

    A model that is good only where pairs are common (low similarity) scores badly here.

    Examples
    --------
    >>> round(binned_root_mean_squared_error([0.05, 0.95], [0.15, 0.95]), 6)
    0.05
    """
    return _mean_of_filled(per_bin_rmse(y_true, y_pred))


@dataclass(frozen=True)
class Metric:
    """A named metric that knows whether lower or higher is better.

    Examples
    --------
    >>> m = get_metric("rmse")
    >>> m.is_better(0.1, 0.2), m.format(0.123456789)
    (True, '0.12346')
    """

    name: str
    function: Callable
    direction: str
    decimals: int = 5

    def __call__(self, y_true, y_pred):
        return self.function(y_true, y_pred)

    @property
    def lower_is_better(self):
        return self.direction == MINIMIZE

    def sort_key(self, value):
        """A key that sorts the best value first; NaN sorts last."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return math.inf
        value = round(float(value), self.decimals)
        return value if self.lower_is_better else -value

    def is_better(self, a, b):
        """True when ``a`` beats ``b`` at the reported precision."""
        return self.sort_key(a) < self.sort_key(b)

    def format(self, value):
        """The value as reported: ``decimals`` places, or ``-`` when missing."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return f"{float(value):.{self.decimals}f}"

    def describe(self):
        """``rmse, lower is better`` and the like."""
        return f"{self.name}, {'lower' if self.lower_is_better else 'higher'} is better"


METRICS = {
    "rmse": Metric("rmse", root_mean_squared_error, MINIMIZE),
    "binned_rmse": Metric("binned_rmse", binned_root_mean_squared_error, MINIMIZE),
    "mae": Metric("mae", mean_absolute_error, MINIMIZE),
    "pearson": Metric("pearson", pearson_score, MAXIMIZE, decimals=4),
}


def get_metric(spec="rmse"):
    """The :class:`Metric` named by ``spec``: a name, or competition.json's ``metric`` object.

    A ``decimals`` or ``direction`` in the object overrides the registered default.

    Examples
    --------
    >>> get_metric({"name": "rmse", "decimals": 4}).decimals
    4
    """
    if isinstance(spec, Metric):
        return spec
    options = dict(spec) if isinstance(spec, dict) else {"name": spec or "rmse"}
    name = str(options.get("name", "rmse")).lower()
    if name not in METRICS:
        raise UserError(f"unknown metric {name!r}: expected one of {', '.join(sorted(METRICS))}")
    metric = METRICS[name]
    decimals = options.get("decimals", metric.decimals)
    direction = options.get("direction", metric.direction)
    if direction not in (MINIMIZE, MAXIMIZE) or not isinstance(decimals, int) or not 0 <= decimals <= 12:
        raise UserError(f"metric {options!r}: expected direction minimize|maximize and decimals 0-12")
    return Metric(metric.name, metric.function, direction, decimals)


def diagnostics(y_true, y_pred):
    """Every diagnostic of one set of rows, as plain Python values (NaN -> None).

    Returns
    -------
    dict
        ``rmse``, ``binned_rmse``, ``per_bin_rmse`` (bin label -> value), ``bin_rows``
        (bin label -> count), ``mae``, ``pearson``, ``rows``.

    Examples
    --------
    >>> d = diagnostics([0.05, 0.95], [0.15, 0.95])
    >>> d["rows"], d["per_bin_rmse"]["0.9-1.0"], d["per_bin_rmse"]["0.5-0.6"]
    (2, 0.0, None)
    """
    y_true, y_pred = _pair(y_true, y_pred)
    per_bin, counts = _per_bin(y_true, y_pred)
    return {
        "rmse": _plain(root_mean_squared_error(y_true, y_pred)),
        "binned_rmse": _plain(_mean_of_filled(per_bin)),
        "per_bin_rmse": {label: _plain(value) for label, value in zip(BIN_LABELS, per_bin)},
        "bin_rows": {label: int(n) for label, n in zip(BIN_LABELS, counts)},
        "mae": _plain(mean_absolute_error(y_true, y_pred)),
        "pearson": _plain(pearson_score(y_true, y_pred)),
        "rows": int(y_true.size),
    }


def _plain(value):
    value = float(value)
    return None if math.isnan(value) else value


#: Decimals of every score a participant sees (pages, API, ``kit submit``, hosted
#: platforms, ``kit score`` without ``--private``), as Kaggle shows them. Full precision
#: stays in the teacher's ``private/`` exports: digits past these would let a
#: participant read labels off two submissions that differ in one row.
SHOWN_DECIMALS = 5


def shown_scores(value, decimals=SHOWN_DECIMALS):
    """``value`` with every float rounded to ``decimals`` places, for a participant's eyes.

    Works through dicts, lists and tuples (the shape of :func:`diagnostics`); integers,
    strings, booleans and None pass unchanged; NaN and infinities stay as they are.

    Examples
    --------
    >>> shown_scores({"rmse": 0.123456789, "rows": 7, "per_bin_rmse": {"0.0-0.1": 0.1000049, "0.1-0.2": None}})
    {'rmse': 0.12346, 'rows': 7, 'per_bin_rmse': {'0.0-0.1': 0.1, '0.1-0.2': None}}
    """
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return round(value, decimals) if math.isfinite(value) else value
    if isinstance(value, dict):
        return {key: shown_scores(item, decimals) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(shown_scores(item, decimals) for item in value)
    return value


#: Keys of the top bin's two halves in :func:`molecule_diagnostics`' ``top_bin_split``.
SAME_MOLECULE_BIN = f"{BIN_LABELS[-1]} same molecule"
DIFFERENT_MOLECULE_BIN = f"{BIN_LABELS[-1]} different molecules"


def bin_tick(label):
    r"""A tick label for a bin of a plot, narrow enough for ten bins: the top bin's halves on three lines
    (pair types and novelty bands, shown beside the bins, likewise short).

    Examples
    --------
    >>> bin_tick(SAME_MOLECULE_BIN), bin_tick("0.2-0.3")
    ('0.9-1.0\nsame\nmolecule', '0.2-0.3')
    >>> bin_tick("positive-positive"), bin_tick("novelty 0.0-0.4")
    ('pos-\npos', 'novelty\n0.0-\n0.4')
    """
    if label.startswith(NOVELTY_PREFIX):
        return "novelty\n" + label.removeprefix(NOVELTY_PREFIX).replace("-", "-\n")
    if label in PAIR_TYPES:
        return {"positive-positive": "pos-\npos", "negative-negative": "neg-\nneg"}.get(label, label)
    return label.replace(" ", "\n") if label in (SAME_MOLECULE_BIN, DIFFERENT_MOLECULE_BIN) else label


def molecule_diagnostics(y_true, y_pred, same_molecule):
    """RMSE on pairs of two spectra of one molecule and on pairs of different molecules.

    The metric hides this split: two spectra of one molecule share their precursor m/z,
    so a model that reads it scores the top bin well without judging structures at all.

    Parameters
    ----------
    y_true, y_pred : array-like of float
    same_molecule : array-like of bool
        True where a pair's two spectra are of one molecule.

    Returns
    -------
    dict
        ``same_molecule_rmse``, ``different_molecule_rmse`` (None when no such row),
        ``same_molecule_rows``, ``different_molecule_rows`` and ``top_bin_split``: the top
        bin's RMSE on each kind of pair (keys :data:`SAME_MOLECULE_BIN` and
        :data:`DIFFERENT_MOLECULE_BIN`).

    Examples
    --------
    >>> d = molecule_diagnostics([1.0, 1.0, 0.2], [0.9, 1.0, 0.2], [True, False, False])
    >>> round(d["same_molecule_rmse"], 3), d["different_molecule_rmse"], d["different_molecule_rows"]
    (0.1, 0.0, 2)
    >>> d["top_bin_split"][DIFFERENT_MOLECULE_BIN]
    0.0
    """
    y_true, y_pred = _pair(y_true, y_pred)
    same = np.asarray(same_molecule, dtype=bool).ravel()
    if same.shape != y_true.shape:
        raise ValueError(f"expected one same_molecule flag per row, found {same.size} flags for {y_true.size} rows")
    squared = (y_true - y_pred) ** 2
    top = bin_index(y_true) == N_BINS - 1

    def rmse(mask):
        return _plain(np.sqrt(squared[mask].mean())) if mask.any() else None

    return {
        "same_molecule_rmse": rmse(same),
        "different_molecule_rmse": rmse(~same),
        "same_molecule_rows": int(same.sum()),
        "different_molecule_rows": int((~same).sum()),
        "top_bin_split": {SAME_MOLECULE_BIN: rmse(top & same), DIFFERENT_MOLECULE_BIN: rmse(top & ~same)},
    }


def per_group_rmse(y_true, y_pred, groups, labels):
    """RMSE of the rows of each group, in the order of ``labels`` (None for a group without rows).

    The breakdowns of competitions whose pairs are of several kinds: ion-mode pair types
    (``per_pair_type_rmse``) and novelty bands (``per_novelty_band_rmse``).

    Parameters
    ----------
    y_true, y_pred : array-like of float
    groups : array-like of str
        The group of each row.
    labels : sequence of str
        Every group, in the order shown.

    Examples
    --------
    >>> per_group_rmse([0.2, 0.4, 1.0], [0.3, 0.4, 1.0], ["cross", "cross", "positive-positive"],
    ...                ["positive-positive", "negative-negative", "cross"])
    {'positive-positive': 0.0, 'negative-negative': None, 'cross': 0.07071067811865474}
    """
    y_true, y_pred = _pair(y_true, y_pred)
    groups = np.asarray(groups, dtype=object).ravel()
    if groups.shape != y_true.shape:
        raise ValueError(f"expected one group per row, found {groups.size} groups for {y_true.size} rows")
    squared = (y_true - y_pred) ** 2
    return {label: _plain(np.sqrt(squared[groups == label].mean())) if (groups == label).any() else None
            for label in labels}


#: Prefix of the novelty bands among the per-bin numbers of the log and the pages, which
#: would otherwise read like Tanimoto bins.
NOVELTY_PREFIX = "novelty "
#: Every breakdown label of :func:`breakdown_cells`, in the order shown.
BREAKDOWN_LABELS = list(PAIR_TYPES) + [NOVELTY_PREFIX + label for label in BAND_LABELS]


def breakdown_cells(details):
    """The pair-type and novelty-band RMSEs of one Usage's diagnostics as one flat dict, shown beside the bins.

    Examples
    --------
    >>> breakdown_cells({"per_pair_type_rmse": {"cross": 0.2}, "per_novelty_band_rmse": {"0.0-0.4": 0.3}})
    {'cross': 0.2, 'novelty 0.0-0.4': 0.3}
    >>> breakdown_cells({})
    {}
    """
    return {**details.get("per_pair_type_rmse", {}),
            **{NOVELTY_PREFIX + label: value for label, value in details.get("per_novelty_band_rmse", {}).items()}}
