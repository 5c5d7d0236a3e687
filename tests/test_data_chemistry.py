import numpy as np
import pytest
from conftest import SMILES, make_spectrum

from kit.data.tanimoto_bins import bin_index
from kit.data.chemistry import (
    bins_from_counts,
    fingerprints,
    group_molecules,
    inchikey14,
    molecules_of,
    tanimoto_counts,
    tanimoto_matrix,
    tanimoto_rows,
)
from kit.errors import UserError
from kit.data.spectra import CleaningReport


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
