import numpy as np
import pytest

from conftest import SMILES, make_spectrum
from kit.data.chemistry import (
    bins_from_counts,
    fingerprints,
    group_molecules,
    inchikey14,
    molecule_cache,
    molecules_of,
    tanimoto_counts,
    tanimoto_matrix,
    tanimoto_rows,
)
from kit.data.spectra import CleaningReport
from kit.data.tanimoto_bins import bin_index
from kit.errors import UserError


def rdkit_tanimoto(smiles):
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetRDKitFPGenerator(maxPath=7, fpSize=2048)
    fps = [gen.GetFingerprint(Chem.MolFromSmiles(s)) for s in smiles]
    return np.array([DataStructs.BulkTanimotoSimilarity(f, fps) for f in fps])


def test_tanimoto_matrix_equals_rdkit_exactly():
    ours = tanimoto_matrix(fingerprints(SMILES))
    np.testing.assert_array_equal(ours, rdkit_tanimoto(SMILES))


def test_rows_and_blocks_agree():
    fps = fingerprints(SMILES)
    full = tanimoto_matrix(fps)
    i, j = np.triu_indices(len(SMILES), 1)
    np.testing.assert_array_equal(tanimoto_rows(fps[i], fps[j]), full[i, j])


def test_integer_bins_match_float_bins():
    fps = fingerprints(SMILES)
    inter, union = tanimoto_counts(fps, fps)
    np.testing.assert_array_equal(bins_from_counts(inter, union), bin_index(tanimoto_matrix(fps)))


@pytest.mark.parametrize("inter, union, expected", [(3, 10, 3), (1, 10, 1), (7, 10, 7), (10, 10, 9), (0, 0, 0), (29, 30, 9)])
def test_bins_at_exact_edges(inter, union, expected):
    assert int(bins_from_counts(np.array([inter]), np.array([union]))[0]) == expected


def test_bad_smiles_is_a_user_error():
    with pytest.raises(UserError, match="does not parse"):
        fingerprints(["CCO", "not-a-smiles("])


@pytest.mark.parametrize(
    "key, expected",
    [("LFQSCWFLJHTTHZ-UHFFFAOYSA-N", "LFQSCWFLJHTTHZ"), ("lfqscwfljhtthz-uhfffaoysa-n", "LFQSCWFLJHTTHZ"),
     ("", None), (None, None), ("n/a", None), ("LFQSCWFLJHTTHZ", None), ("LFQSCWF1JHTTHZ-UHFFFAOYSA-N", None)],
)
def test_inchikey14(key, expected):
    assert inchikey14(key) == expected


def test_representative_smiles_is_most_frequent_ties_to_first():
    m = group_molecules(["K", "K", "K", "K", "L", "L"], ["a", "b", "b", "a", "x", "y"])
    assert m.smiles == ["a", "x"]
    assert m.spectrum_molecule.tolist() == [0, 0, 0, 0, 1, 1]
    assert [s.tolist() for s in m.spectra_of()] == [[0, 1, 2, 3], [4, 5]]


def test_molecules_of_derives_keys_and_counts_drops():
    ok = make_spectrum([1], [1], smiles="CCO", spectrum_id="a")  # no InChIKey: derived
    bad = make_spectrum([1], [1], smiles="C1CC(", spectrum_id="b")
    none = make_spectrum([1], [1], spectrum_id="c")
    same = make_spectrum([1], [1], smiles="OCC", inchikey="LFQSCWFLJHTTHZ-UHFFFAOYSA-N", spectrum_id="d")
    report = CleaningReport(source="t")
    kept, molecules = molecules_of([ok, bad, none, same], report=report)
    assert [s.get("spectrum_id") for s in kept] == ["a", "d"]
    assert list(molecules.keys) == ["LFQSCWFLJHTTHZ"]  # ethanol both times
    assert report.dropped == {"SMILES that RDKit cannot parse": 1, "no SMILES": 1}


def test_no_usable_structure_is_a_user_error():
    with pytest.raises(UserError, match="no spectrum with a usable structure"):
        molecules_of([make_spectrum([1], [1], smiles="xx(")])


def test_fingerprints_in_threads_are_rdkits_one_by_one():
    from rdkit import Chem

    from kit.data.chemistry import fingerprint_generator, fingerprints

    smiles = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "C" * 30]
    one_by_one = np.array([fingerprint_generator().GetFingerprintAsNumPy(Chem.MolFromSmiles(s)) for s in smiles])
    np.testing.assert_array_equal(fingerprints(smiles), one_by_one.astype(np.uint8))
    assert fingerprints([]).shape == (0, 2048)


def test_the_molecule_cache_computes_each_smiles_once_and_gives_the_same_fingerprints():
    plain = fingerprints(SMILES)
    with molecule_cache() as cache:
        first = fingerprints(SMILES[:3])
        again = fingerprints(SMILES[::-1])
        assert cache.computed["fingerprints"] == len(set(SMILES))
        fingerprints(SMILES)
        assert cache.computed["fingerprints"] == len(set(SMILES))
    np.testing.assert_array_equal(first, plain[:3])
    np.testing.assert_array_equal(again, plain[::-1])
    assert again.dtype == plain.dtype and fingerprints([]).shape == (0, 2048)


def test_the_molecule_cache_derives_each_inchikey_once():
    spectra = [make_spectrum([100.0], [1.0], smiles=s) for s in SMILES * 2]
    plain_kept, plain = molecules_of(spectra)
    with molecule_cache() as cache:
        kept, molecules = molecules_of(spectra)
        derived = cache.computed["inchikeys"]
        assert derived == len(set(SMILES))
        molecules_of(spectra[: len(SMILES)])
        assert cache.computed["inchikeys"] == derived
    assert kept == plain_kept and list(molecules.keys) == list(plain.keys)


def test_the_molecule_cache_lives_for_its_block_and_an_inner_block_shares_it():
    with molecule_cache() as outer:
        fingerprints(SMILES[:2])
        with molecule_cache() as inner:
            assert inner is outer
            fingerprints(SMILES[:2])
        assert outer.computed["fingerprints"] == 2
    with molecule_cache() as fresh:
        assert fresh is not outer and not fresh.fingerprints and not fresh.computed


@pytest.mark.parametrize("smiles, row", [
    (["CCO", "not a smiles"], 1),
    (["not a smiles"], 0),
    (["CCO", "CCO", "C1CC", "CCO"], 2),
    (["CCO", "C(C", "C(C"], 1),
])
def test_a_bad_smiles_is_named_with_its_row_with_or_without_the_cache(smiles, row):
    with pytest.raises(UserError) as plain:
        fingerprints(smiles)
    with molecule_cache() as cache:
        fingerprints(["CCO"])
        for _ in range(2):  # a refused SMILES is not kept: refused again
            with pytest.raises(UserError) as cached:
                fingerprints(smiles)
            assert str(cached.value) == str(plain.value) and f"(row {row})" in str(plain.value)
        assert set(cache.fingerprints) == {"CCO"}
