"""Binning spectra into sparse vectors (kit.data.binning)."""
import re
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from matchms import Spectrum

from kit.data import binning
from kit.errors import UserError


def spectrum(mz, intensities, spectrum_id="S1"):
    return Spectrum(
        mz=np.asarray(mz, dtype=float), intensities=np.asarray(intensities, dtype=float),
        metadata={"spectrum_id": spectrum_id}, metadata_harmonization=False,
    )


def reference_binning(spectra, width=0.1, lo=10.0, hi=1000.0, power=0.5):
    """Peak-by-peak binning, written for clarity, to check the vectorised one against."""
    size = binning.n_bins(width, (lo, hi))
    out = np.zeros((len(spectra), size))
    for row, s in enumerate(spectra):
        for mz, inten in zip(s.peaks.mz, s.peaks.intensities):
            if lo <= mz <= hi and inten > 0:
                col = min(int(np.floor(round((mz - lo) / width, 9))), size - 1)
                out[row, col] = max(out[row, col], inten)
        if out[row].max() > 0:
            out[row] = (out[row] / out[row].max()) ** power
    return out


@pytest.mark.parametrize(
    "mz, expected",
    [(10.0, 0), (10.05, 0), (10.1, 1), (10.3, 3), (100.0, 900), (523.47, 5134), (999.95, 9899), (1000.0, 9899)],
)
def test_peak_lands_in_its_bin(mz, expected):
    matrix = binning.bin_spectra([spectrum([mz], [1.0])])
    assert matrix.indices.tolist() == [expected]


def test_matrix_is_sparse_float32_with_one_row_per_spectrum():
    spectra = [spectrum([50.0, 60.0], [1.0, 2.0]), spectrum([70.0], [1.0], "S2"), spectrum([80.0], [3.0], "S3")]
    matrix = binning.bin_spectra(spectra)
    assert sp.issparse(matrix) and matrix.format == "csr"
    assert matrix.shape == (3, 9900) and matrix.dtype == np.float32
    assert matrix.nnz == 4


def test_intensities_scaled_to_base_peak_then_square_rooted():
    matrix = binning.bin_spectra([spectrum([50.0, 60.0, 70.0], [4.0, 1.0, 0.25])])
    np.testing.assert_allclose(matrix.data, [1.0, 0.5, 0.25])


def test_tallest_peak_wins_within_a_bin():
    matrix = binning.bin_spectra([spectrum([100.01, 100.05, 200.0], [0.36, 0.64, 1.0])])
    assert matrix.indices.tolist() == [900, 1900]
    np.testing.assert_allclose(matrix.data, [0.8, 1.0])


def test_peaks_outside_the_range_are_dropped_and_do_not_set_the_scale():
    matrix = binning.bin_spectra([spectrum([5.0, 9.99, 500.0, 1000.01, 1500.0], [9.0, 9.0, 0.25, 9.0, 9.0])])
    assert matrix.indices.tolist() == [4900]
    np.testing.assert_allclose(matrix.data, [1.0])


@pytest.mark.parametrize(
    "width, mz_range, power", [(0.1, (10, 1000), 0.5), (1.0, (0, 500), 1.0), (0.25, (50, 300), 0.33)]
)
def test_vectorised_binning_matches_peak_by_peak_reference(width, mz_range, power):
    rng = np.random.default_rng(0)
    spectra = []
    for i in range(30):
        n = int(rng.integers(1, 60))
        mz = np.sort(rng.uniform(0, 1100, n))
        # Duplicate some peaks into the same bin on purpose.
        mz[: n // 4] = np.round(mz[: n // 4], 0)
        spectra.append(spectrum(np.sort(mz), rng.uniform(0.01, 1.0, n), f"S{i}"))
    expected = reference_binning(spectra, width, *mz_range, power)
    got = binning.bin_spectra(spectra, bin_width=width, mz_range=mz_range, intensity_power=power)
    np.testing.assert_allclose(got.toarray(), expected, rtol=1e-6, atol=1e-7)


def test_no_spectra_gives_an_empty_matrix():
    assert binning.bin_spectra([]).shape == (0, 9900)


def test_spectrum_without_peaks_in_range_is_refused_by_name():
    spectra = [spectrum([50.0], [1.0]), spectrum([1200.0, 2000.0], [1.0, 1.0], "far-out")]
    matrix = binning.bin_spectra(spectra)
    assert binning.empty_rows(matrix).tolist() == [1]
    with pytest.raises(UserError, match="no peak in m/z 10-1000.*'far-out' \\(row 1\\)"):
        binning.check_nonempty(matrix, spectra)


@pytest.mark.parametrize(
    "width, mz_range, expected",
    [(0.1, (10, 1000), 9900), (1.0, (0, 100), 100), (0.3, (10, 1000), 3300), (0.07, (10, 1000), 14143)],
)
def test_number_of_bins(width, mz_range, expected):
    assert binning.n_bins(width, mz_range) == expected


@pytest.mark.parametrize(
    "kwargs, error, message",
    [({"bin_width": 0}, UserError, "bin_width must be a number > 0, found 0.0"),
     ({"bin_width": -0.1}, UserError, "bin_width must be a number > 0"),
     ({"bin_width": float("nan")}, UserError, "bin_width must be a number > 0, found nan"),
     ({"bin_width": float("inf")}, UserError, "bin_width must be a number > 0, found inf"),
     ({"bin_width": True}, TypeError, "bin_width must be a number > 0, found bool True"),
     ({"bin_width": "wide"}, TypeError, "bin_width must be a number > 0, found str 'wide'"),
     ({"bin_width": "0.1"}, TypeError, "bin_width must be a number > 0, found str '0.1'"),
     ({"mz_range": (100, 10)}, UserError, "mz_range must be (low, high) with low < high, found (100, 10)"),
     ({"mz_range": (10, 10)}, UserError, "mz_range must be (low, high) with low < high"),
     ({"mz_range": (-5, 10)}, UserError, "each of mz_range must be a number >= 0, found -5.0"),
     ({"mz_range": (10, float("inf"))}, UserError, "each of mz_range must be a number >= 0, found inf"),
     ({"mz_range": (10, 100, 1000)}, UserError,
      "mz_range must be a list of 2 to 2 items, each a number >= 0, found 3 items"),
     ({"mz_range": 10}, TypeError, "mz_range must be a list of 2 to 2 items"),
     ({"mz_range": "10-1000"}, TypeError, "mz_range must be a list of 2 to 2 items"),
     ({"mz_range": (None, 1000)}, TypeError, "each of mz_range must be a number >= 0, found NoneType None"),
     ({"intensity_power": 0}, UserError, "intensity_power must be a number > 0, found 0.0"),
     ({"intensity_power": None}, TypeError, "intensity_power must be a number > 0")],
)
def test_bad_settings_are_refused(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        binning.binning_settings(**kwargs)


def test_check_binning_accepts_matching_and_refuses_other_widths():
    binning.check_binning(binning.binning_settings(), 9900)
    with pytest.raises(UserError, match="give 4,950 bins but its network reads 9,900"):
        binning.check_binning(binning.binning_settings(bin_width=0.2), 9900)
    with pytest.raises(UserError, match="unusable binning settings"):
        binning.check_binning({"bin_width": 0.0, "mz_range": [10, 1000], "intensity_power": 0.5}, 9900)


def test_densify_returns_float32_rows_in_order():
    matrix = binning.bin_spectra([spectrum([50.0], [1.0]), spectrum([60.0], [1.0], "S2")])
    dense = binning.densify(matrix, [1, 0, 1])
    assert dense.dtype == np.float32 and dense.shape == (3, 9900)
    assert dense[0, 500] == dense[2, 500] == dense[1, 400] == 1.0


def test_binning_does_not_import_tensorflow():
    code = "import sys, kit.data.binning; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- one binner, two modes: "max" (the siamese's input), "cosine" (the gbm's binned cosines) ---

def reference_cosine_rows(rows, width=1.0, lo=10.0, hi=1000.0, power=0.5):
    """Summed powered intensities per bin, rows scaled to unit length, written for clarity."""
    size = binning.n_bins(width, (lo, hi))
    out = np.zeros((len(rows), size))
    for row, (mz_row, intensity_row) in enumerate(rows):
        for mz, inten in zip(mz_row, intensity_row):
            if lo <= mz <= hi and inten > 0 and np.isfinite(inten):
                out[row, min(int(np.floor((mz - lo) / width)), size - 1)] += inten**power
        norm = np.linalg.norm(out[row])
        out[row] /= norm if norm > 0 else 1.0
    return out


@pytest.mark.parametrize("width, power", [(1.0, 0.5), (0.5, 1.0), (2.0, 0.5)])
def test_cosine_mode_sums_bins_into_unit_rows(width, power):
    rng = np.random.default_rng(4)
    rows = [(np.sort(rng.uniform(0, 1100, 40)), rng.uniform(0, 5, 40)) for _ in range(5)] + [(np.empty(0), np.empty(0))]
    table = binning.stack_rows([mz for mz, _ in rows], [inten for _, inten in rows])
    matrix = binning.bin_table(*table, len(rows), width, intensity_power=power, mode="cosine", decimals=None)
    assert matrix.dtype == np.float64 and matrix.has_sorted_indices
    np.testing.assert_allclose(matrix.toarray(), reference_cosine_rows(rows, width, power=power), rtol=1e-12)
    assert np.linalg.norm(matrix.toarray(), axis=1) == pytest.approx([1.0] * 5 + [0.0])


def test_max_mode_of_a_peak_table_is_bin_spectra():
    spectra = [spectrum([12.0, 55.55, 55.56, 900.0], [1.0, 3.0, 2.0, 0.5]), spectrum([20.0], [4.0], "S2")]
    direct = binning.bin_spectra(spectra)
    via_table = binning.bin_table(*binning.peak_table(spectra), len(spectra))
    assert (direct != via_table).nnz == 0 and via_table.dtype == np.float32


@pytest.mark.parametrize("intensity", [np.inf, -np.inf, np.nan, 0.0, -1.0])
@pytest.mark.parametrize("mode", ["max", "cosine"])
def test_peaks_without_a_positive_finite_intensity_are_dropped(mode, intensity):
    table = binning.stack_rows([np.array([50.0, 60.0])], [np.array([1.0, intensity])])
    matrix = binning.bin_table(*table, 1, bin_width=1.0, mode=mode)
    assert matrix.indices.tolist() == [40] and matrix.data.tolist() == [1.0]


@pytest.mark.parametrize(
    "mz, decimals, expected", [(100.0, 9, 900), (100.0, None, 900), (10.1, None, 0), (10.1, 9, 1), (10.7, None, 6)]
)
def test_decimals_choose_whether_the_quotient_is_rounded_before_flooring(mz, decimals, expected):
    assert binning.bin_of(np.array([mz]), decimals=decimals).tolist() == [expected]


@pytest.mark.parametrize("mode", ["sum", "MAX", None, 1])
def test_unknown_mode_is_refused(mode):
    with pytest.raises((UserError, TypeError), match="mode must be one of 'max', 'cosine'"):
        binning.bin_table(*binning.stack_rows([], []), 0, mode=mode)
