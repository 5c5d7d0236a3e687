"""Pair features of the gradient-boosting rung (kit.models.features)."""
import numpy as np
import pytest

import kit.models
from conftest import make_spectrum, structure_spectra
from kit.errors import UserError
from kit.models.features import (
    CROSS_MODE_FEATURE_NAMES,
    FEATURE_NAMES,
    PROTON_MASS,
    ion_modes,
    modified_cosine_scores,
    neutral_fragments,
    neutral_loss_matrix,
    neutral_masses,
    pair_features,
    peak_matrix,
    precursor_mz,
    row_cosines,
    same_value,
    spectral_entropy,
    symmetric,
    unique_pairs,
)


def spectrum(mz, intensities=None, precursor=300.0, **metadata):
    mz = np.asarray(mz, dtype=float)
    intensities = np.linspace(1.0, 0.2, len(mz)) if intensities is None else intensities
    return make_spectrum(mz, intensities, precursor_mz=precursor, **metadata)


@pytest.fixture
def trio():
    """A spectrum, its analogue shifted by +14 Da above m/z 100, and an unrelated one."""
    base = [41.0, 67.0, 95.0, 121.0, 149.0, 177.0]
    return [
        spectrum(base, precursor=200.0, spectrum_id="a", ionmode="negative", adduct="[M-H]-"),
        spectrum([m + 14 if m > 100 else m for m in base], precursor=214.0, spectrum_id="b",
                 ionmode="negative", adduct="[M-H]-"),
        spectrum([53.0, 88.0, 130.0, 230.0, 260.0], precursor=340.0, spectrum_id="c",
                 ionmode="negative", adduct=None),
    ]


def test_columns_and_rows(trio):
    x = pair_features(trio, [0, 0, 1], [1, 2, 2])
    assert list(x.columns) == FEATURE_NAMES
    assert len(x) == 3
    numeric = x.drop(columns=["same_ionmode", "same_adduct"])
    assert np.isfinite(numeric.to_numpy(dtype=float)).all()


def test_features_are_symmetric_under_swap(trio, spectra):
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, len(spectra), 60), rng.integers(0, len(spectra), 60)
    forward = pair_features(spectra, a, b)
    backward = pair_features(spectra, b, a)
    assert forward.equals(backward)
    assert pair_features(trio, [0, 1], [1, 0]).iloc[0].equals(pair_features(trio, [0, 1], [1, 0]).iloc[1])


def test_identical_spectra_score_one(trio):
    row = pair_features(trio + [trio[0]], [0], [3]).iloc[0]
    for name in ("cosine", "modified_cosine", "binned_cosine", "binned_neutral_loss_cosine"):
        assert row[name] == pytest.approx(1.0)
    assert row["precursor_mz_diff"] == 0.0
    assert row["modified_cosine_matches"] == len(trio[0].peaks.mz)
    assert row["modified_cosine_matched_fraction"] == pytest.approx(1.0)


def test_modified_cosine_sees_the_shifted_analogue(trio):
    row = pair_features(trio, [0], [1]).iloc[0]
    assert row["modified_cosine"] == pytest.approx(1.0)
    assert row["cosine"] < 0.9
    assert row["precursor_mz_diff"] == pytest.approx(14.0)
    assert row["precursor_mz_rel_diff"] == pytest.approx(14.0 / 214.0)
    unrelated = pair_features(trio, [0], [2]).iloc[0]
    assert unrelated["modified_cosine"] < row["modified_cosine"]


def test_metadata_agreement(trio):
    x = pair_features(trio, [0, 0], [1, 2])
    assert x["same_ionmode"].tolist() == [1.0, 1.0]
    assert x["same_adduct"].iloc[0] == 1.0 and np.isnan(x["same_adduct"].iloc[1])


def test_repeated_pairs_get_identical_rows(trio):
    x = pair_features(trio, [0, 2, 0, 1], [1, 0, 1, 0])
    assert x.iloc[0].equals(x.iloc[2]) and x.iloc[0].equals(x.iloc[3])
    assert not x.iloc[0].equals(x.iloc[1])


def test_unique_pairs_orders_and_deduplicates():
    low, high, inverse = unique_pairs([5, 2, 2, 5], [2, 5, 7, 2])
    assert low.tolist() == [2, 2] and high.tolist() == [5, 7]
    assert inverse.tolist() == [0, 0, 1, 0]
    with pytest.raises(ValueError):
        unique_pairs([0, 1], [1])


def test_peak_matrix_sums_bins_normalises_and_drops_out_of_range():
    m = peak_matrix(
        [spectrum([5.0, 10.2, 10.8, 12.5, 1200.0], [1.0, 1.0, 3.0, 3.0, 1.0]), spectrum([20.0], [0.5])],
        intensity_power=1.0,
    )
    dense = m.toarray()
    assert dense.shape == (2, 990)
    assert dense[0, 0] == pytest.approx(4 / 5) and dense[0, 2] == pytest.approx(3 / 5)
    assert np.count_nonzero(dense[0]) == 2
    assert np.linalg.norm(dense, axis=1) == pytest.approx([1.0, 1.0])
    assert row_cosines(m, [0, 0], [0, 1]).tolist() == pytest.approx([1.0, 0.0])


def test_neutral_losses_skip_peaks_at_or_above_the_precursor():
    s = spectrum([50.0, 82.0, 150.0, 210.0], precursor=150.0)
    m = neutral_loss_matrix([s], precursor_mz([s]))
    assert m.indices.tolist() == [68, 100]


def test_entropy_orders_busy_and_sparse_spectra():
    even = spectrum([50.0, 60.0, 70.0, 80.0], [1.0, 1.0, 1.0, 1.0])
    peaked = spectrum([50.0, 60.0, 70.0, 80.0], [1.0, 0.01, 0.01, 0.01])
    values = spectral_entropy([even, peaked])
    assert values[0] == pytest.approx(np.log(4))
    assert values[1] < values[0]


def test_symmetric_and_same_value():
    lo, hi = symmetric(np.array([3.0, 1.0]), [0, 1], [1, 0])
    assert lo.tolist() == [1.0, 1.0] and hi.tolist() == [3.0, 3.0]
    out = same_value(np.array([2, 2, 5, -1]), [0, 0, 3], [1, 2, 3])
    assert out[:2].tolist() == [1.0, 0.0] and np.isnan(out[2])


@pytest.mark.parametrize("bad", [None, "n/a", -5.0, 0.0])
def test_missing_precursor_is_a_user_error(bad):
    good = spectrum([50.0, 60.0], spectrum_id="ok")
    broken = make_spectrum([50.0, 60.0], [1.0, 0.5], spectrum_id="broken", precursor_mz=bad)
    with pytest.raises(UserError, match="precursor.*broken"):
        pair_features([good, broken], [0], [1])
    with pytest.raises(UserError, match="precursor"):
        modified_cosine_scores([good, broken], [0], [1])


def test_modified_cosine_scores_are_symmetric(spectra):
    a, b = np.arange(len(spectra)), np.arange(len(spectra))[::-1]
    forward, matches = modified_cosine_scores(spectra, a, b)
    backward, _ = modified_cosine_scores(spectra, b, a)
    assert np.array_equal(forward, backward)
    assert ((forward >= 0) & (forward <= 1 + 1e-9)).all() and (matches >= 0).all()


# --- across ion modes -------------------------------------------------------------------


def negative_twin(s, k=0):
    """The [M-H]- spectrum of ``s``'s molecule: every peak and the precursor two protons lighter."""
    return make_spectrum(s.peaks.mz - 2 * PROTON_MASS, s.peaks.intensities,
                         **{**s.metadata, "spectrum_id": f"N{k}", "ionmode": "negative", "adduct": "[M-H]-",
                            "precursor_mz": s.get("precursor_mz") - 2 * PROTON_MASS})


def both_modes():
    positive = structure_spectra(per_molecule=2)
    return positive + [negative_twin(s, k) for k, s in enumerate(positive)]


def test_cross_mode_features_see_one_molecule_in_both_modes():
    base = [41.0265, 67.0421, 95.0734, 121.0527, 149.0841]
    pos = spectrum(base, precursor=181.0707, ionmode="positive", adduct="[M+H]+")
    neg = negative_twin(pos)
    plain = pair_features([pos, neg], [0], [1])
    assert list(plain.columns) == FEATURE_NAMES
    x = pair_features([pos, neg], [0], [1], cross_mode=True)
    assert list(x.columns) == FEATURE_NAMES + CROSS_MODE_FEATURE_NAMES
    # 2 Da apart as ions, one molecule as neutral masses and fragments.
    assert x.loc[0, "precursor_mz_diff"] == pytest.approx(2 * PROTON_MASS)
    assert x.loc[0, "neutral_mass_diff"] == pytest.approx(0, abs=1e-9)
    assert x.loc[0, "neutral_fragment_cosine"] == pytest.approx(1.0)
    assert x.loc[0, "binned_cosine"] < 0.5
    swapped = pair_features([pos, neg], [1], [0], cross_mode=True)
    np.testing.assert_array_equal(swapped.to_numpy(), x.to_numpy())


@pytest.mark.parametrize("metadata, expected", [
    ({"ionmode": "positive", "adduct": "[M+Na]+"}, 300.0 - 22.989218),
    ({"ionmode": "negative", "adduct": "[M+Cl]-"}, 300.0 - 34.969402),
    ({"ionmode": "negative", "adduct": "[M+CH3COOH-H]-"}, 300.0 - 59.013853),   # MassBank's spelling
    ({"ionmode": "positive", "adduct": "[M-H]-"}, 300.0 - PROTON_MASS),          # wrong polarity: mode wins
    ({"ionmode": "negative", "adduct": "[M+Xe]-"}, 300.0 + PROTON_MASS),         # unknown: a lost proton
    ({"ionmode": "POSITIVE", "adduct": ["[M+H]+"]}, 300.0 - PROTON_MASS),        # not a string
    ({"ionmode": 1, "adduct": "[M+H]+"}, 300.0),                                # no ion mode: m/z kept
    ({"ionmode": "positive", "adduct": "[M+2H]2+"}, 2 * (300.0 - PROTON_MASS)),
])
def test_neutral_masses_of_odd_spectra(metadata, expected):
    assert neutral_masses([spectrum([50.0], **metadata)])[0] == pytest.approx(expected, abs=1e-5)


def test_ion_modes_and_neutral_fragments_of_unknown_modes():
    odd = [spectrum([50.0, 80.0], ionmode=mode) for mode in ("n/a", None, "both", "positive")]
    assert ion_modes(odd).tolist() == [0.0, 0.0, 0.0, 1.0]
    fragments = neutral_fragments(odd)
    assert fragments.shape[0] == 4 and np.allclose(np.asarray(fragments.multiply(fragments).sum(axis=1)).ravel(), 1)


def test_gbm_reads_cross_mode_features_only_when_asked(tmp_path):
    small = {"n_pairs": 400, "max_iter": 20, "progress": False, "seed": 0}
    positive = structure_spectra(per_molecule=2)
    single = kit.models.get("gbm")(**small).fit(positive)
    assert single.feature_names_ == FEATURE_NAMES
    forced_off = kit.models.get("gbm")(**small, cross_mode=False).fit(positive)
    ids = [s.get("spectrum_id") for s in positive]
    pairs = np.array([[ids[0], ids[3]], [ids[1], ids[5]], [ids[2], ids[2]]])
    np.testing.assert_array_equal(single.predict(positive, pairs), forced_off.predict(positive, pairs))
    library = both_modes()
    assert kit.models.get("gbm")(**small).fit(library).feature_names_ == FEATURE_NAMES  # None is off
    both = kit.models.get("gbm")(**small, cross_mode=True).fit(library)
    assert both.feature_names_ == FEATURE_NAMES + CROSS_MODE_FEATURE_NAMES
    cross = np.array([[s.get("spectrum_id"), f"N{k}"] for k, s in enumerate(positive)])
    predicted = both.predict(library, cross)
    assert np.isfinite(predicted).all() and ((predicted >= 0) & (predicted <= 1)).all()
    loaded = kit.models.load(both.save(tmp_path / "gbm"))
    np.testing.assert_array_equal(loaded.predict(library, cross), predicted)
