"""Pair features for the gradient-boosting rung: what two spectra share, as numbers.

Everything that depends on one spectrum only (precursor m/z, peak count, entropy, binned
vectors) is computed once per spectrum; what depends on a pair (matchms scores, row-wise
dot products) once per distinct pair. Each pair is put in a canonical order (lower index
first) before anything is computed, and per-spectrum values enter as the pair's minimum
and maximum, so the features of ``(a, b)`` and ``(b, a)`` are identical.

Examples
--------
>>> from matchms import Spectrum
>>> def spectrum(mz, precursor):
...     mz = np.asarray(mz, dtype=float)
...     return Spectrum(mz, np.linspace(1.0, 0.2, len(mz)), metadata={"precursor_mz": precursor})
>>> spectra = [spectrum([50, 80, 120, 150], 200.0), spectrum([50, 80, 134, 164], 214.0)]
>>> x = pair_features(spectra, [0], [1])
>>> list(x.columns) == FEATURE_NAMES
True
>>> round(float(x["modified_cosine"].iloc[0]), 3)
1.0
"""
from dataclasses import dataclass
from functools import cache

import numpy as np
from matchms.filtering.filter_utils.load_known_adducts import load_known_adducts

from kit.data import binning
from kit.data.spectra import MZ_RANGE
from kit.errors import UserError

TOLERANCE = 0.1
BIN_WIDTH = 1.0
# Square roots keep a few intense peaks from deciding the binned cosines alone
# (MS2DeepScore bins sqrt intensities for the same reason).
INTENSITY_POWER = 0.5

FEATURE_NAMES = [
    "cosine", "cosine_matches",
    "modified_cosine", "modified_cosine_matches", "modified_cosine_matched_fraction",
    "neutral_loss_cosine", "neutral_loss_matches",
    "binned_cosine", "binned_neutral_loss_cosine",
    "precursor_mz_diff", "precursor_mz_rel_diff", "precursor_mz_min", "precursor_mz_max",
    "n_peaks_min", "n_peaks_max", "entropy_min", "entropy_max",
    "same_ionmode", "same_adduct",
]
#: Features that do not assume one polarity, added to :data:`FEATURE_NAMES` for a competition
#: of cross-mode pairs (``pair_features(..., cross_mode=True)``): the neutral masses
#: that each spectrum's adduct gives, and a binned cosine of the peaks as neutral fragments
#: (a positive fragment carries a proton, a negative one has lost one: 2 Da apart).
CROSS_MODE_FEATURE_NAMES = ["neutral_mass_diff", "neutral_mass_rel_diff", "neutral_fragment_cosine"]
#: Other spellings of common adducts (as in MassBank) and the name matchms's table knows them by.
ADDUCT_ALIASES = {
    "[M+HCOO]-": "[M+FA-H]-", "[M+HCOOH-H]-": "[M+FA-H]-", "[M+HCO2]-": "[M+FA-H]-",
    "[M+CH3COOH-H]-": "[M+CH3COO]-", "[M+Hac-H]-": "[M+CH3COO]-", "[M+OAc]-": "[M+CH3COO]-",
    "[M+H-H2O]+": "[M-H2O+H]+",
}
#: Mass (Da) of a proton, the charge carrier of most fragments in either mode.
PROTON_MASS = 1.007276
#: Charge of each ion mode's usual fragment ions (what :func:`neutral_fragments` takes off).
MODE_SIGNS = {"positive": 1.0, "negative": -1.0}


# -- per spectrum -------------------------------------------------------------------
def precursor_mz(spectra):
    """Precursor m/z of each spectrum (float64).

    Raises
    ------
    UserError
        When a spectrum has no positive, finite ``precursor_mz`` (the modified cosine and
        neutral losses need it).

    Examples
    --------
    >>> from matchms import Spectrum
    >>> s = Spectrum(np.array([50.0]), np.array([1.0]), metadata={"precursor_mz": 181.07})
    >>> precursor_mz([s]).tolist()
    [181.07]
    """
    values = np.full(len(spectra), np.nan)
    for row, spectrum in enumerate(spectra):
        try:
            values[row] = float(spectrum.get("precursor_mz"))
        except (TypeError, ValueError):
            pass
    bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
    if len(bad):
        row = bad[0]
        raise UserError(
            f"{len(bad):,} of {len(values):,} spectra have no usable precursor_mz; first: spectrum "
            f"{spectra[row].get('spectrum_id')!r} (row {row}) has {spectra[row].get('precursor_mz')!r}: "
            "expected a positive number (kit.load_spectra cleans spectra so that they have one)"
        )
    return values


def peak_counts(spectra):
    """Number of peaks of each spectrum.

    Examples
    --------
    >>> from matchms import Spectrum
    >>> peak_counts([Spectrum(np.array([50.0, 60.0]), np.array([1.0, 0.5]), metadata_harmonization=False)]).tolist()
    [2]
    """
    return np.array([len(s.peaks.mz) for s in spectra], dtype=np.int64)


def spectral_entropy(spectra):
    """Shannon entropy (nats) of each spectrum's intensities, read as a distribution.

    Few dominant peaks give a low entropy, many even peaks a high one.

    Examples
    --------
    >>> from matchms import Spectrum
    >>> s = Spectrum(np.array([50.0, 60.0]), np.array([1.0, 1.0]), metadata_harmonization=False)
    >>> round(float(spectral_entropy([s])[0]), 4)   # log(2)
    0.6931
    """
    out = np.zeros(len(spectra))
    for row, spectrum in enumerate(spectra):
        positive = spectrum.peaks.intensities[spectrum.peaks.intensities > 0]
        if len(positive):
            p = positive / positive.sum()
            out[row] = -(p * np.log(p)).sum()
    return out


def metadata_codes(spectra, key):
    """Integer code of each spectrum's ``key`` value; -1 where it is missing.

    Examples
    --------
    >>> from matchms import Spectrum
    >>> s = [Spectrum(np.array([50.0]), np.array([1.0]), metadata={"adduct": a}, metadata_harmonization=False)
    ...      for a in ("[M-H]-", "[M+Cl]-", "[M-H]-")]
    >>> metadata_codes(s, "adduct").tolist()
    [0, 1, 0]
    """
    codes, out = {}, np.full(len(spectra), -1, dtype=np.int64)
    for row, spectrum in enumerate(spectra):
        value = spectrum.get(key)
        if value is None or str(value).strip().lower() in ("", "n/a", "na", "none", "nan", "unknown"):
            continue
        out[row] = codes.setdefault(str(value).strip(), len(codes))
    return out


def ion_modes(spectra):
    """Sign of each spectrum's ion mode: +1 positive, -1 negative, 0 missing or unknown.

    Examples
    --------
    >>> from matchms import Spectrum
    >>> s = [Spectrum(np.array([50.0]), np.array([1.0]), metadata={"ionmode": m}, metadata_harmonization=False)
    ...      for m in ("positive", "Negative", "n/a")]
    >>> ion_modes(s).tolist()
    [1.0, -1.0, 0.0]
    """
    return np.array([MODE_SIGNS.get(str(s.get("ionmode") or "").strip().lower(), 0.0) for s in spectra])


@cache
def adduct_name(spectrum):
    """The spectrum's adduct as matchms's table of known adducts spells it ('' when missing).

    Examples
    --------
    >>> from matchms import Spectrum
    >>> adduct_name(Spectrum(np.array([50.0]), np.array([1.0]), {"adduct": " [M+HCOO]-"}, metadata_harmonization=False))
    '[M+FA-H]-'
    """
    name = str(spectrum.get("adduct") or "").strip()
    return ADDUCT_ALIASES.get(name, name)


@cache
def _known_adducts():
    """``adduct -> (ion mode sign, mass_multiplier, correction_mass)`` of matchms's table of known adducts."""
    table = load_known_adducts()
    signs = table["ionmode"].map(MODE_SIGNS).fillna(0.0).astype(float)
    return dict(zip(table["adduct"], zip(signs, table["mass_multiplier"].astype(float),
                                         table["correction_mass"].astype(float))))


def neutral_masses(spectra, precursors=None):
    """Neutral (parent) mass of each spectrum from its precursor m/z and adduct (Da).

    ``(precursor_mz - correction) / multiplier`` with matchms's table of known adducts; an
    adduct the table does not know counts as a singly protonated (positive) or deprotonated
    (negative) ion, and a spectrum without an ion mode keeps its precursor m/z. Either way a
    positive and a negative spectrum of one molecule get about the same mass.

    Parameters
    ----------
    spectra : list of matchms.Spectrum
    precursors : numpy.ndarray, optional
        Their precursor m/z (:func:`precursor_mz`), when already read.

    Examples
    --------
    >>> from matchms import Spectrum
    >>> def s(mz, adduct, mode):
    ...     return Spectrum(np.array([50.0]), np.array([1.0]), metadata_harmonization=False,
    ...                     metadata={"precursor_mz": mz, "adduct": adduct, "ionmode": mode})
    >>> neutral_masses([s(181.0707, "[M+H]+", "positive"), s(179.0561, "[M-H]-", "negative"),
    ...                 s(203.0526, "[M+Na]+", "positive"), s(179.0561, "odd", "negative")]).round(3).tolist()
    [180.063, 180.063, 180.063, 180.063]
    """
    precursors = precursor_mz(spectra) if precursors is None else precursors
    known, signs = _known_adducts(), ion_modes(spectra)
    out = precursors - signs * PROTON_MASS
    for row, spectrum in enumerate(spectra):
        adduct = known.get(adduct_name(spectrum))
        # An adduct of the other polarity than the spectrum's ion mode is a label error: not trusted.
        if adduct is not None and adduct[0] == signs[row] != 0 and adduct[1] > 0:
            out[row] = (precursors[row] - adduct[2]) / adduct[1]
    return out


def neutral_fragments(spectra, bin_width=BIN_WIDTH, mz_range=MZ_RANGE, intensity_power=INTENSITY_POWER):
    """Binned peaks shifted to neutral fragment masses (a proton off positive peaks, on negative ones).

    Examples
    --------
    >>> from matchms import Spectrum
    >>> pos = Spectrum(np.array([58.0651, 86.0964]), np.array([1.0, 0.5]), metadata={"ionmode": "positive"})
    >>> neg = Spectrum(np.array([56.0505, 84.0818]), np.array([1.0, 0.5]), metadata={"ionmode": "negative"})
    >>> m = neutral_fragments([pos, neg])
    >>> round(float(m[0].multiply(m[1]).sum()), 6)
    1.0
    """
    shifts = ion_modes(spectra) * PROTON_MASS
    table = ([s.peaks.mz - shift for s, shift in zip(spectra, shifts)], [s.peaks.intensities for s in spectra])
    return _cosine_rows(binning.stack_rows(*table), len(spectra), bin_width, mz_range, intensity_power)


def peak_matrix(spectra, bin_width=BIN_WIDTH, mz_range=MZ_RANGE, intensity_power=INTENSITY_POWER):
    """Binned peaks of each spectrum, one row of unit length each (dot products are cosines).

    Peaks falling in one bin add up (after ``intensity_power``); peaks outside ``mz_range``
    are left out. The kit's binner does the work (:func:`kit.data.binning.bin_table`,
    mode ``"cosine"``).

    Examples
    --------
    >>> from matchms import Spectrum
    >>> peak_matrix([Spectrum(np.array([50.0, 60.0]), np.array([1.0, 1.0]), metadata_harmonization=False)]).nnz
    2
    """
    return _cosine_rows(binning.peak_table(spectra), len(spectra), bin_width, mz_range, intensity_power)


def neutral_loss_matrix(
    spectra, precursors, bin_width=BIN_WIDTH, mz_range=(0.0, MZ_RANGE[1]), intensity_power=INTENSITY_POWER
):
    """Binned neutral losses (precursor m/z minus peak m/z) of each spectrum.

    Peaks at or above the precursor are left out: they lose nothing. Spectra of related
    molecules that differ by a substituent share losses even where their fragments shift.

    Examples
    --------
    >>> from matchms import Spectrum
    >>> s = Spectrum(np.array([50.0, 82.0, 100.0]), np.array([1.0, 1.0, 1.0]), metadata_harmonization=False)
    >>> m = neutral_loss_matrix([s], np.array([100.0]))
    >>> m.indices.tolist()   # losses 18 and 50
    [18, 50]
    """
    losses, weights = [], []
    for spectrum, precursor in zip(spectra, precursors):
        mz, intensity = spectrum.peaks.mz, spectrum.peaks.intensities
        below = mz < precursor - 0.5 * bin_width
        losses.append(precursor - mz[below])
        weights.append(intensity[below])
    return _cosine_rows(binning.stack_rows(losses, weights), len(spectra), bin_width, mz_range, intensity_power)


def _cosine_rows(table, n_rows, bin_width, mz_range, intensity_power):
    # Plain flooring (decimals=None) is how these features were trained and measured: rounding
    # first would move a peak whose quotient is a hair under a bin edge, e.g. (10.7 - 10) / 0.1 =
    # 6.99999..., one bin up.
    return binning.bin_table(*table, n_rows, bin_width, mz_range, intensity_power, mode="cosine", decimals=None)


@dataclass
class SpectrumSummary:
    """What the pair features need from each spectrum, computed once.

    Build it with :func:`summarise`.
    """

    precursor_mz: np.ndarray
    n_peaks: np.ndarray
    entropy: np.ndarray
    ionmode: np.ndarray
    adduct: np.ndarray
    peaks: object
    losses: object


def summarise(spectra, bin_width=BIN_WIDTH):
    """A :class:`SpectrumSummary` of ``spectra``.

    Examples
    --------
    >>> from matchms import Spectrum
    >>> s = Spectrum(np.array([50.0, 60.0]), np.array([1.0, 0.5]), metadata={"precursor_mz": 90.0})
    >>> summarise([s]).n_peaks.tolist()
    [2]
    """
    precursors = precursor_mz(spectra)
    return SpectrumSummary(
        precursor_mz=precursors,
        n_peaks=peak_counts(spectra),
        entropy=spectral_entropy(spectra),
        ionmode=metadata_codes(spectra, "ionmode"),
        adduct=metadata_codes(spectra, "adduct"),
        peaks=peak_matrix(spectra, bin_width),
        losses=neutral_loss_matrix(spectra, precursors, bin_width),
    )


# -- per pair -----------------------------------------------------------------------
def unique_pairs(idx_a, idx_b):
    """Distinct unordered pairs, lower index first, and where each input pair went.

    Returns
    -------
    low, high : int arrays, one entry per distinct pair
    inverse : int array such that pair ``k`` of the input is distinct pair ``inverse[k]``

    Examples
    --------
    >>> low, high, inverse = unique_pairs([3, 1, 1], [1, 3, 2])
    >>> low.tolist(), high.tolist(), inverse.tolist()
    ([1, 1], [2, 3], [1, 1, 0])
    """
    a, b = np.asarray(idx_a, dtype=np.int64), np.asarray(idx_b, dtype=np.int64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"expected two 1-d index arrays of one length, found shapes {a.shape} and {b.shape}")
    both = np.column_stack([np.minimum(a, b), np.maximum(a, b)])
    distinct, inverse = np.unique(both, axis=0, return_inverse=True)
    return distinct[:, 0], distinct[:, 1], inverse.ravel()


def row_cosines(matrix, idx_a, idx_b):
    """Dot product of rows ``idx_a[k]`` and ``idx_b[k]`` of an L2-normalised matrix.

    Examples
    --------
    >>> from scipy import sparse
    >>> m = sparse.csr_matrix(np.array([[1.0, 0.0], [0.6, 0.8]]))
    >>> row_cosines(m, [0, 1], [1, 1]).round(2).tolist()
    [0.6, 1.0]
    """
    rows_a, rows_b = matrix[np.asarray(idx_a)], matrix[np.asarray(idx_b)]
    return np.asarray(rows_a.multiply(rows_b).sum(axis=1)).ravel()


def similarity_scores(similarity, spectra, idx_a, idx_b, progress=False, desc=None):
    """Score and matched-peak count of a matchms similarity for each pair.

    Parameters
    ----------
    similarity : matchms.similarity.BaseSimilarity
        One whose ``pair`` returns a ``(score, matches)`` record, such as
        ``CosineGreedy`` or ``ModifiedCosineGreedy``.
    spectra : list of matchms.Spectrum
    idx_a, idx_b : int arrays
    progress : bool
        Show a progress bar.
    desc : str, optional
        Label of the progress bar.

    Returns
    -------
    scores : float64 array
    matches : int64 array

    Examples
    --------
    >>> from matchms import Spectrum
    >>> from matchms.similarity import CosineGreedy
    >>> s = Spectrum(np.array([50.0, 60.0]), np.array([1.0, 0.5]), metadata_harmonization=False)
    >>> scores, matches = similarity_scores(CosineGreedy(), [s, s], [0], [1])
    >>> round(float(scores[0]), 6), int(matches[0])
    (1.0, 2)
    """
    from kit.progress import progress as progress_bar

    idx_a, idx_b = np.asarray(idx_a), np.asarray(idx_b)
    scores = np.zeros(len(idx_a))
    matches = np.zeros(len(idx_a), dtype=np.int64)
    label = desc or type(similarity).__name__
    bar = progress_bar(zip(idx_a.tolist(), idx_b.tolist()), total=len(idx_a), desc=label, unit=" pairs",
                       disable=not progress)
    for k, (i, j) in enumerate(bar):
        result = similarity.pair(spectra[i], spectra[j])
        scores[k], matches[k] = float(result["score"]), int(result["matches"])
    return scores, matches


def modified_cosine_scores(spectra, idx_a, idx_b, tolerance=TOLERANCE, progress=False):
    """Modified cosine (matchms ``ModifiedCosineGreedy``) and matched peaks of each pair.

    Pairs are scored once each, in canonical order, so ``(a, b)`` and ``(b, a)`` agree.

    Examples
    --------
    >>> from matchms import Spectrum
    >>> a = Spectrum(np.array([50.0, 80.0]), np.array([1.0, 0.5]), metadata={"precursor_mz": 100.0})
    >>> b = Spectrum(np.array([50.0, 94.0]), np.array([1.0, 0.5]), metadata={"precursor_mz": 114.0})
    >>> scores, matches = modified_cosine_scores([a, b], [0], [1])
    >>> round(float(scores[0]), 6), int(matches[0])
    (1.0, 2)
    """
    from matchms.similarity import ModifiedCosineGreedy

    precursor_mz(spectra)  # a clear error instead of matchms's assertion
    low, high, inverse = unique_pairs(idx_a, idx_b)
    scores, matches = similarity_scores(
        ModifiedCosineGreedy(tolerance=tolerance), spectra, low, high, progress, "modified cosine"
    )
    return scores[inverse], matches[inverse]


def symmetric(values, idx_a, idx_b):
    """Minimum and maximum of a per-spectrum value over each pair's two spectra.

    Examples
    --------
    >>> lo, hi = symmetric(np.array([5, 9, 7]), [0, 2], [1, 0])
    >>> lo.tolist(), hi.tolist()
    ([5, 5], [9, 7])
    """
    a, b = values[np.asarray(idx_a)], values[np.asarray(idx_b)]
    return np.minimum(a, b), np.maximum(a, b)


def same_value(codes, idx_a, idx_b):
    """1.0 where both spectra have the same code, 0.0 where they differ, NaN where one is missing.

    Examples
    --------
    >>> same_value(np.array([0, 0, 1, -1]), [0, 0, 3], [1, 2, 0]).tolist()
    [1.0, 0.0, nan]
    """
    a, b = codes[np.asarray(idx_a)], codes[np.asarray(idx_b)]
    return np.where((a < 0) | (b < 0), np.nan, (a == b).astype(float))


def pair_features(spectra, idx_a, idx_b, tolerance=TOLERANCE, bin_width=BIN_WIDTH, progress=False, cross_mode=False):
    """The features of :data:`FEATURE_NAMES` (and :data:`CROSS_MODE_FEATURE_NAMES`) for each pair of spectra.

    Parameters
    ----------
    spectra : list of matchms.Spectrum
        Cleaned spectra with a ``precursor_mz``.
    idx_a, idx_b : int arrays
        Positions in ``spectra`` of each pair's two spectra.
    tolerance : float
        m/z tolerance of the matchms scores (Da).
    bin_width : float
        Bin width of the binned cosines (Da).
    progress : bool
        Show progress bars for the matchms scores.
    cross_mode : bool
        Also the features of :data:`CROSS_MODE_FEATURE_NAMES`, which compare a positive and
        a negative spectrum as neutral molecules.

    Returns
    -------
    pandas.DataFrame
        One row per pair, columns :data:`FEATURE_NAMES` (then :data:`CROSS_MODE_FEATURE_NAMES`);
        the same for ``(a, b)`` and ``(b, a)``.

    Raises
    ------
    UserError
        When a spectrum has no usable precursor m/z.

    Examples
    --------
    >>> from matchms import Spectrum
    >>> s = Spectrum(np.array([50.0, 60.0, 70.0]), np.array([1.0, 0.5, 0.2]), metadata={"precursor_mz": 90.0})
    >>> pair_features([s, s], [0], [1]).loc[0, ["cosine", "binned_cosine", "precursor_mz_diff"]].round(6).tolist()
    [1.0, 1.0, 0.0]
    """
    import pandas as pd
    from matchms.similarity import CosineGreedy, ModifiedCosineGreedy, NeutralLossesCosine

    summary = summarise(spectra, bin_width)
    a, b, inverse = unique_pairs(idx_a, idx_b)
    columns = {}
    for prefix, similarity, desc in (
        ("cosine", CosineGreedy(tolerance=tolerance), "cosine"),
        ("modified_cosine", ModifiedCosineGreedy(tolerance=tolerance), "modified cosine"),
        ("neutral_loss", NeutralLossesCosine(tolerance=tolerance), "neutral-loss cosine"),
    ):
        scores, matches = similarity_scores(similarity, spectra, a, b, progress, desc)
        columns["neutral_loss_cosine" if prefix == "neutral_loss" else prefix] = scores
        columns[f"{prefix}_matches"] = matches
    n_min, n_max = symmetric(summary.n_peaks, a, b)
    columns["modified_cosine_matched_fraction"] = columns["modified_cosine_matches"] / n_min
    columns["binned_cosine"] = row_cosines(summary.peaks, a, b)
    columns["binned_neutral_loss_cosine"] = row_cosines(summary.losses, a, b)
    p_min, p_max = symmetric(summary.precursor_mz, a, b)
    columns["precursor_mz_diff"] = p_max - p_min
    # Relative to the heavier precursor: a 14 Da step means more for a small molecule.
    columns["precursor_mz_rel_diff"] = (p_max - p_min) / p_max
    columns["precursor_mz_min"], columns["precursor_mz_max"] = p_min, p_max
    columns["n_peaks_min"], columns["n_peaks_max"] = n_min, n_max
    columns["entropy_min"], columns["entropy_max"] = symmetric(summary.entropy, a, b)
    columns["same_ionmode"] = same_value(summary.ionmode, a, b)
    columns["same_adduct"] = same_value(summary.adduct, a, b)
    names = list(FEATURE_NAMES)
    if cross_mode:
        m_min, m_max = symmetric(neutral_masses(spectra, summary.precursor_mz), a, b)
        columns["neutral_mass_diff"] = m_max - m_min
        columns["neutral_mass_rel_diff"] = (m_max - m_min) / np.maximum(np.abs(m_max), 1.0)
        columns["neutral_fragment_cosine"] = row_cosines(neutral_fragments(spectra, bin_width), a, b)
        names += CROSS_MODE_FEATURE_NAMES
    table = pd.DataFrame({name: columns[name] for name in names})
    return table.iloc[inverse].reset_index(drop=True)
