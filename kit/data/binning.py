"""Spectra as fixed-length vectors: peaks binned on an m/z grid, one sparse row per spectrum.

The kit's one m/z binner, in two modes: ``"max"`` (below) feeds the siamese rung, and
``"cosine"`` (summed intensities, rows of unit length, so that row-wise dot products are
cosines) the binned peak and neutral-loss cosines of the gradient-boosting features
(:mod:`kit.models.features`).

The siamese rung (README, "The baseline ladder") reads spectra the way MS2DeepScore v1 does: bins
of 0.1 Da over m/z 10-1000 (9,900 bins), each bin holding the largest peak that falls in
it, intensities scaled to a maximum of 1 per spectrum and raised to the power 0.5.

All spectra are binned in one vectorised pass into a ``scipy.sparse`` CSR matrix
(a MassBank spectrum fills a few dozen of the 9,900 bins), and dense ``float32`` rows are
made only for the batch at hand. This module does not import TensorFlow.

Examples
--------
>>> import numpy as np
>>> from matchms import Spectrum
>>> s = Spectrum(np.array([10.05, 100.0, 100.04]), np.array([0.25, 1.0, 0.5]), metadata_harmonization=False)
>>> matrix = bin_spectra([s])
>>> matrix.shape, matrix.indices.tolist(), matrix.data.tolist()
((1, 9900), [0, 900], [0.5, 1.0])
"""
import math

import numpy as np
import scipy.sparse as sp

from kit.constraints import Each, Interval, Options, Real, check_param, validate_params

# The m/z range kept by spectrum cleaning is the range binned: one definition.
from kit.data.spectra import MZ_RANGE  # noqa: F401 - part of this module's interface
from kit.errors import UserError

BIN_WIDTH = 0.1
INTENSITY_POWER = 0.5
# Decimals kept before flooring, so that 100.0 / 0.1 lands in bin 1000, not 999.
_DECIMALS = 9
_MODES = Options("max", "cosine")
_SETTINGS = {
    "bin_width": Interval(Real, 0, None, closed="neither"),
    "mz_range": Each(Interval(Real, 0, None), min_length=2, max_length=2),
    "intensity_power": Interval(Real, 0, None, closed="neither"),  # 0.5 takes square roots
}


def binning_settings(bin_width=BIN_WIDTH, mz_range=MZ_RANGE, intensity_power=INTENSITY_POWER):
    """Checked binning settings as a plain dict (what a saved model records).

    Raises
    ------
    TypeError
        When a setting is not a number (or ``mz_range`` not a pair of numbers).
    UserError
        When ``bin_width`` or ``intensity_power`` is not a positive finite number, or the
        range is not ``0 <= low < high``.

    Examples
    --------
    >>> binning_settings()
    {'bin_width': 0.1, 'mz_range': [10.0, 1000.0], 'intensity_power': 0.5}
    """
    settings = {"bin_width": bin_width, "mz_range": mz_range, "intensity_power": intensity_power}
    checked = validate_params(_SETTINGS, settings)
    width, (lo, hi), power = checked["bin_width"], checked["mz_range"], checked["intensity_power"]
    if not lo < hi:
        raise UserError(f"mz_range must be (low, high) with low < high, found {mz_range!r}")
    return {"bin_width": width, "mz_range": [lo, hi], "intensity_power": power}


def n_bins(bin_width=BIN_WIDTH, mz_range=MZ_RANGE):
    """Number of bins covering ``mz_range`` (the last one may stick out past the top).

    Examples
    --------
    >>> n_bins(0.1, (10, 1000))
    9900
    """
    lo, hi = mz_range
    return int(math.ceil(round((hi - lo) / bin_width, _DECIMALS)))


def bin_of(mz, bin_width=BIN_WIDTH, mz_min=MZ_RANGE[0], decimals=_DECIMALS):
    """Bin index of each m/z: bin ``k`` holds ``[mz_min + k*w, mz_min + (k+1)*w)``.

    ``decimals=None`` floors the quotient as it is, without rounding it first (how the
    gradient-boosting features have always binned; see :func:`bin_table`).

    Examples
    --------
    >>> bin_of(np.array([10.0, 10.09, 10.1, 100.0])).tolist()
    [0, 0, 1, 900]
    >>> bin_of(np.array([10.1, 10.7]), decimals=None).tolist()   # (10.7 - 10) / 0.1 is 6.99999...
    [0, 6]
    """
    scaled = (np.asarray(mz, dtype=np.float64) - mz_min) / bin_width
    if decimals is not None:
        scaled = np.round(scaled, decimals)
    return np.floor(scaled).astype(np.int64)


def stack_rows(mz_rows, intensity_rows):
    """Positions and intensities of several rows, concatenated: ``(row, mz, intensity)`` arrays.

    Parameters
    ----------
    mz_rows, intensity_rows : sequence of numpy.ndarray
        One array per row: a spectrum's peaks, or its neutral losses.

    Examples
    --------
    >>> rows, mz, inten = stack_rows([np.array([50.0, 60.0]), np.array([70.0])], [np.ones(2), np.ones(1)])
    >>> rows.tolist(), mz.tolist()
    ([0, 0, 1], [50.0, 60.0, 70.0])
    """
    counts = np.fromiter((len(m) for m in mz_rows), dtype=np.int64, count=len(mz_rows))
    rows = np.repeat(np.arange(len(mz_rows), dtype=np.int64), counts)
    if not len(mz_rows):
        return rows, np.empty(0), np.empty(0)
    mz = np.concatenate(mz_rows).astype(np.float64, copy=False)
    intensity = np.concatenate(intensity_rows).astype(np.float64, copy=False)
    return rows, mz, intensity


def peak_table(spectra):
    """Every peak of every spectrum, concatenated: ``(row, mz, intensity)`` arrays.

    Examples
    --------
    >>> from matchms import Spectrum
    >>> s = Spectrum(np.array([50.0, 60.0]), np.array([1.0, 2.0]), metadata_harmonization=False)
    >>> rows, mz, inten = peak_table([s])
    >>> rows.tolist(), mz.tolist()
    ([0, 0], [50.0, 60.0])
    """
    peaks = [s.peaks for s in spectra]
    return stack_rows([p.mz for p in peaks], [p.intensities for p in peaks])


def max_per_cell(rows, cols, values):
    """Keep the largest value of each ``(row, col)`` cell; return the cells sorted.

    Two peaks in one bin keep the taller one (as MS2DeepScore does), so a bin's value
    never exceeds the spectrum's base peak.

    Examples
    --------
    >>> r, c, v = max_per_cell(np.array([0, 0, 0]), np.array([5, 5, 2]), np.array([1.0, 3.0, 2.0]))
    >>> r.tolist(), c.tolist(), v.tolist()
    ([0, 0], [2, 5], [2.0, 3.0])
    """
    order = np.lexsort((values, cols, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    # After sorting, the last entry of each cell holds its maximum.
    last = np.ones(len(rows), dtype=bool)
    last[:-1] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    return rows[last], cols[last], values[last]


def bin_spectra(spectra, bin_width=BIN_WIDTH, mz_range=MZ_RANGE, intensity_power=INTENSITY_POWER):
    """Bin spectra into a CSR matrix ``(n_spectra, n_bins)`` of ``float32``.

    Peaks outside ``mz_range`` (both ends included) are dropped; a bin keeps its tallest
    peak; intensities are divided by each spectrum's tallest peak in range, then raised
    to ``intensity_power``. A spectrum with no peak in range gives an empty row (see
    :func:`check_nonempty`).

    Parameters
    ----------
    spectra : list of matchms.Spectrum
    bin_width : float, default 0.1
    mz_range : (float, float), default (10, 1000)
    intensity_power : float, default 0.5

    Returns
    -------
    scipy.sparse.csr_matrix

    Examples
    --------
    >>> from matchms import Spectrum
    >>> s = Spectrum(np.array([5.0, 50.0, 60.0]), np.array([9.0, 1.0, 4.0]), metadata_harmonization=False)
    >>> m = bin_spectra([s], bin_width=1.0, mz_range=(10, 110))
    >>> m.indices.tolist(), m.data.tolist()
    ([40, 50], [0.5, 1.0])
    """
    return bin_table(*peak_table(spectra), len(spectra), bin_width, mz_range, intensity_power)


def bin_table(rows, mz, intensity, n_rows, bin_width=BIN_WIDTH, mz_range=MZ_RANGE, intensity_power=INTENSITY_POWER,
              *, mode="max", decimals=_DECIMALS):
    """Bin a table of peaks (:func:`stack_rows`, :func:`peak_table`) into ``n_rows`` sparse rows.

    Peaks outside ``mz_range`` (both ends included, the top in the last bin) and peaks
    without a positive, finite intensity are dropped. Then, by ``mode``:

    ``"max"``
        a bin keeps its tallest peak; each row is divided by its tallest peak, then raised
        to ``intensity_power`` (``float32``; MS2DeepScore's input, :func:`bin_spectra`);
    ``"cosine"``
        intensities are raised to ``intensity_power`` and a bin holds their sum; each row
        is scaled to unit length (``float64``), so row-wise dot products are cosines.

    Parameters
    ----------
    rows, mz, intensity : numpy.ndarray
        Row index, position and intensity of each peak.
    n_rows : int
    bin_width : float, default 0.1
    mz_range : (float, float), default (10, 1000)
    intensity_power : float, default 0.5
    mode : {"max", "cosine"}, default "max"
    decimals : int or None, default 9
        Passed to :func:`bin_of`.

    Returns
    -------
    scipy.sparse.csr_matrix of shape ``(n_rows, n_bins(bin_width, mz_range))``, indices sorted

    Examples
    --------
    >>> table = stack_rows([np.array([10.2, 10.7, 12.0])], [np.array([1.0, 1.0, 4.0])])
    >>> m = bin_table(*table, 1, bin_width=1.0, intensity_power=1.0, mode="cosine")
    >>> m.toarray()[0, :3].round(3).tolist()
    [0.447, 0.0, 0.894]
    >>> bin_table(*table, 1, bin_width=1.0, intensity_power=1.0).toarray()[0, :3].tolist()
    [0.25, 0.0, 1.0]
    """
    check_param(mode, "mode", _MODES)
    settings = binning_settings(bin_width, mz_range, intensity_power)
    width, (lo, hi), power = settings["bin_width"], settings["mz_range"], settings["intensity_power"]
    size = n_bins(width, (lo, hi))
    keep = (mz >= lo) & (mz <= hi) & (intensity > 0) & np.isfinite(intensity)
    rows, mz, intensity = rows[keep], mz[keep], intensity[keep]
    # m/z exactly at the top of the range belongs to the last bin.
    cols = np.minimum(bin_of(mz, width, lo, decimals), size - 1)
    if mode == "cosine":
        matrix = sp.csr_matrix((np.power(intensity, power), (rows, cols)), shape=(n_rows, size))
        matrix.sum_duplicates()
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        matrix = (sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ matrix).tocsr()
        matrix.sort_indices()
        return matrix
    rows, cols, values = max_per_cell(rows, cols, intensity)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    if len(values):
        top = np.maximum.reduceat(values, indptr[:-1][np.diff(indptr) > 0])
        values = values / np.repeat(top, np.diff(indptr)[np.diff(indptr) > 0])
    values = np.power(values, power).astype(np.float32)
    return sp.csr_matrix((values, cols.astype(np.int32), indptr), shape=(n_rows, size))


def empty_rows(matrix):
    """Indices of the rows without any filled bin."""
    return np.flatnonzero(np.diff(matrix.indptr) == 0)


def check_nonempty(matrix, spectra, settings=None):
    """Raise :class:`UserError` naming the first spectrum whose binned row is empty.

    Examples
    --------
    >>> from matchms import Spectrum
    >>> s = Spectrum(np.array([2000.0]), np.array([1.0]), {"spectrum_id": "far"}, metadata_harmonization=False)
    >>> check_nonempty(bin_spectra([s]), [s])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    kit.errors.UserError: 1 spectra have no peak in m/z 10-1000 after binning; first: 'far' (row 0); ...
    """
    empty = empty_rows(matrix)
    if len(empty):
        lo, hi = (settings or binning_settings())["mz_range"]
        row = int(empty[0])
        raise UserError(
            f"{len(empty):,} spectra have no peak in m/z {lo:g}-{hi:g} after binning; first: "
            f"{spectra[row].get('spectrum_id')!r} (row {row}); expected at least one peak in that range"
        )


def densify(matrix, rows, out=None):
    """Dense ``float32`` array of the given rows of a CSR matrix (one batch).

    Examples
    --------
    >>> m = sp.csr_matrix(np.array([[0, 1.0], [2.0, 0]], dtype=np.float32))
    >>> densify(m, np.array([1, 1, 0])).tolist()
    [[2.0, 0.0], [2.0, 0.0], [0.0, 1.0]]
    """
    return matrix[np.asarray(rows)].toarray(out=out)


def check_binning(settings, input_dim, where="model"):
    """Raise :class:`UserError` when binning settings do not give ``input_dim`` bins.

    A saved model can only read spectra binned as it was trained; its manifest records
    the settings and its network the input width, and the two must agree.

    Examples
    --------
    >>> check_binning(binning_settings(), 9900)
    >>> check_binning(binning_settings(bin_width=0.2), 9900)
    Traceback (most recent call last):
    ...
    kit.errors.UserError: model: binning settings (bin width 0.2 Da over m/z 10-1000) give 4,950 bins but its
    network reads 9,900; expected the settings it was trained with
    """
    try:
        checked = binning_settings(**settings)
    except (TypeError, UserError) as exc:
        raise UserError(f"{where}: unusable binning settings {settings!r} ({exc})") from None
    expected = n_bins(checked["bin_width"], checked["mz_range"])
    if expected != int(input_dim):
        lo, hi = checked["mz_range"]
        raise UserError(
            f"{where}: binning settings (bin width {checked['bin_width']:g} Da over m/z {lo:g}-{hi:g}) give "
            f"{expected:,} bins but its network reads {int(input_dim):,}; expected the settings it was trained with"
        )
