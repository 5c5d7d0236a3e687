"""The embedded default library (kit.data.simulate, simulated_molecules, fragmenter): determinism,
metadata, peaks, and that molecular structure shows in the simulated spectra."""
import collections
import re

import numpy as np
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import Descriptors, rdFingerprintGenerator, rdMolDescriptors

from kit.data import fragmenter, simulate, simulated_molecules

REQUIRED_KEYS = (
    "spectrum_id", "compound_name", "smiles", "inchi", "inchikey", "formula", "precursor_mz",
    "charge", "ionmode", "adduct", "collision_energy", "instrument_type", "license",
)


def _library(**kwargs):
    return simulate.simulate_library(progress=False, **kwargs)


def _by_molecule(spectra):
    groups = collections.defaultdict(list)
    for spectrum in spectra:
        groups[spectrum.get("inchikey")].append(spectrum)
    return groups


def _without_id(spectrum):
    metadata = dict(spectrum.metadata)
    metadata.pop("spectrum_id")
    return metadata


@pytest.fixture(scope="module")
def small():
    return _library(n_molecules=40, seed=0)


@pytest.fixture(scope="module")
def small_again():
    return _library(n_molecules=40, seed=0)


# --- determinism -------------------------------------------------------------------------

def test_same_seed_gives_identical_spectra(small, small_again):
    assert len(small) == len(small_again)
    for a, b in zip(small, small_again):
        assert a.metadata == b.metadata
        np.testing.assert_array_equal(a.peaks.mz, b.peaks.mz)
        np.testing.assert_array_equal(a.peaks.intensities, b.peaks.intensities)


def test_same_seed_gives_byte_identical_mgf(small, small_again, tmp_path):
    from matchms.exporting import save_as_mgf

    save_as_mgf(small, str(tmp_path / "a.mgf"))
    save_as_mgf(small_again, str(tmp_path / "b.mgf"))
    assert (tmp_path / "a.mgf").read_bytes() == (tmp_path / "b.mgf").read_bytes()


def test_metadata_survives_mgf_round_trip(small, tmp_path):
    from matchms.exporting import save_as_mgf
    from matchms.importing import load_from_mgf

    save_as_mgf(small[:10], str(tmp_path / "lib.mgf"))
    back = list(load_from_mgf(str(tmp_path / "lib.mgf")))
    assert [s.metadata for s in back] == [s.metadata for s in small[:10]]
    for a, b in zip(small, back):
        np.testing.assert_allclose(a.peaks.to_numpy, b.peaks.to_numpy)


def test_different_seed_gives_different_molecules(small):
    # The edits follow the seed: another seed makes other molecules, not other spectra
    # of the same ones (which an attacker could enumerate).
    other = _library(n_molecules=40, seed=1)
    shared = set(_by_molecule(small)) & set(_by_molecule(other))
    assert len(shared) <= 2


def test_spectra_of_a_molecule_do_not_depend_on_the_rest_of_the_library(small):
    # The first 40 molecules taken are among the first 80; their spectra must not change.
    larger = _by_molecule(_library(n_molecules=80, seed=0))
    for key, spectra in _by_molecule(small).items():
        assert key in larger
        assert [_without_id(s) for s in spectra] == [_without_id(s) for s in larger[key]]
        for a, b in zip(spectra, larger[key]):
            np.testing.assert_array_equal(a.peaks.to_numpy, b.peaks.to_numpy)


# --- metadata ----------------------------------------------------------------------------

def test_metadata_fields_present(small):
    for spectrum in small:
        missing = [key for key in REQUIRED_KEYS if spectrum.get(key) in (None, "")]
        assert not missing, f"{spectrum.get('spectrum_id')} lacks {missing}"


def test_spectrum_ids_unique_and_sequential(small):
    ids = [s.get("spectrum_id") for s in small]
    assert ids == [f"SIM{i:06d}" for i in range(1, len(small) + 1)]


def test_structures_agree_with_rdkit(small):
    for spectrum in small:
        mol = Chem.MolFromSmiles(spectrum.get("smiles"))
        assert mol is not None
        assert Chem.MolToSmiles(mol) == spectrum.get("smiles"), "SMILES is not canonical"
        assert Chem.MolToInchiKey(mol) == spectrum.get("inchikey")
        assert Chem.InchiToInchiKey(spectrum.get("inchi")) == spectrum.get("inchikey")
        assert rdMolDescriptors.CalcMolFormula(mol) == spectrum.get("formula")
        # The name tells nothing of the shipped molecule it was edited from.
        assert spectrum.get("compound_name") == f"simulated {spectrum.get('inchikey')[:14]}"


def test_precursor_mz_matches_adduct(small):
    for spectrum in small:
        mass = Descriptors.ExactMolWt(Chem.MolFromSmiles(spectrum.get("smiles")))
        ionmode, charge, shift = fragmenter.ADDUCTS[spectrum.get("adduct")]
        assert spectrum.get("precursor_mz") == pytest.approx(mass + shift, abs=1e-3)
        assert spectrum.get("ionmode") == ionmode
        assert spectrum.get("charge") == charge and isinstance(spectrum.get("charge"), int)


def test_acquisition_fields_valid(small):
    for spectrum in small:
        energy = re.fullmatch(r"(\d+) eV", spectrum.get("collision_energy"))
        assert energy and int(energy.group(1)) in simulate.COLLISION_ENERGIES
        assert spectrum.get("license") == "CC0"
        assert "simulated" in spectrum.get("instrument_type")


def test_mostly_positive_mode():
    plans = [simulate.choose_acquisitions(4, simulate.molecule_rng(0, line)) for line in range(500)]
    modes = [fragmenter.ADDUCTS[adduct][0] for plan in plans for adduct, _ in plan]
    positive = np.mean([mode == "positive" for mode in modes])
    assert 0.75 < positive < 0.85


def test_molecules_are_distinct(small):
    blocks = {s.get("inchikey")[:14] for s in small}
    assert len(blocks) == 40
    assert len({s.get("smiles") for s in small}) == 40


# --- peaks -------------------------------------------------------------------------------

def test_peaks_sorted_float64_in_range(small):
    for spectrum in small:
        mz, intensities = spectrum.peaks.mz, spectrum.peaks.intensities
        assert mz.dtype == np.float64 and intensities.dtype == np.float64
        assert np.all(np.diff(mz) > 0)
        assert np.all(intensities > 0)
        assert intensities.max() == pytest.approx(1000.0)
        assert mz.min() >= 10.0 and mz.max() <= 1000.0
        assert len(mz) >= 3


def test_precursor_peak_usually_present(small):
    present = [np.any(np.abs(s.peaks.mz - s.get("precursor_mz")) < 0.01) for s in small]
    assert np.mean(present) > 0.8


def test_collision_energy_moves_intensity_to_small_ions():
    mol = Chem.MolFromSmiles("CCOC(=O)c1ccc(NC(=O)CCl)cc1")
    info = fragmenter.describe_molecule(mol, fragmenter.compile_loss_patterns())

    def mean_relative_mz(energy):
        rng = np.random.default_rng(0)
        (mz, intensity), precursor = fragmenter.simulate_peaks(info, "[M+H]+", energy, rng)
        return np.average(mz / precursor, weights=intensity)

    assert mean_relative_mz(60.0) < mean_relative_mz(10.0) - 0.2


@pytest.mark.parametrize("spectra_per_molecule, low, high", [((2, 5), 2, 5), (3, 3, 3), ((1, 1), 1, 1)])
def test_spectra_per_molecule(spectra_per_molecule, low, high, small):
    spectra = small if spectra_per_molecule == (2, 5) else _library(
        n_molecules=10, seed=0, spectra_per_molecule=spectra_per_molecule
    )
    counts = [len(group) for group in _by_molecule(spectra).values()]
    assert min(counts) >= low and max(counts) <= high
    if low < high:
        assert len(set(counts)) > 1


def test_library_holds_no_shipped_molecule(small):
    usable, shipped = simulated_molecules.shipped_molecules()
    assert shipped == simulated_molecules.shipped_blocks(usable) and len(shipped) > 4000
    assert not {s.get("inchikey")[:14] for s in small} & shipped
    # Nor any stereoisomer or other record of the NCI file read without the kit's filters.
    raw = set()
    for _, smiles, _ in simulated_molecules.read_smiles_records(simulated_molecules.nci_smiles_path())[:1000]:
        mol = Chem.MolFromSmiles(smiles)
        if mol is not None:
            raw.add(Chem.MolToInchiKey(mol)[:14])
    assert not {s.get("inchikey")[:14] for s in small} & raw


# --- structure shows in the spectra ------------------------------------------------------

def test_modified_cosine_follows_tanimoto():
    from matchms.similarity import ModifiedCosineGreedy

    spectra = _library(n_molecules=150, seed=0)
    generator = rdFingerprintGenerator.GetRDKitFPGenerator(maxPath=7, fpSize=2048)
    fingerprints = {
        smiles: generator.GetFingerprint(Chem.MolFromSmiles(smiles))
        for smiles in {s.get("smiles") for s in spectra}
    }
    high, low = [], []
    for i, a in enumerate(spectra):
        for b in spectra[i + 1:]:
            if a.get("smiles") == b.get("smiles"):
                continue
            fingerprint_a, fingerprint_b = fingerprints[a.get("smiles")], fingerprints[b.get("smiles")]
            tanimoto = DataStructs.TanimotoSimilarity(fingerprint_a, fingerprint_b)
            if tanimoto > 0.7:
                high.append((a, b))
            elif tanimoto < 0.2:
                low.append((a, b))
    rng = np.random.default_rng(0)
    high = [high[k] for k in rng.choice(len(high), size=min(len(high), 600), replace=False)]
    low = [low[k] for k in rng.choice(len(low), size=min(len(low), 600), replace=False)]
    assert len(high) >= 100 and len(low) >= 100

    cosine = ModifiedCosineGreedy(tolerance=0.1)
    mean_high = np.mean([cosine.pair(a, b)["score"] for a, b in high])
    mean_low = np.mean([cosine.pair(a, b)["score"] for a, b in low])
    print(f"modified cosine: Tanimoto > 0.7 mean {mean_high:.3f} (n={len(high)}), "
          f"Tanimoto < 0.2 mean {mean_low:.3f} (n={len(low)})")
    assert mean_high > mean_low + 0.15


# --- arguments and messages --------------------------------------------------------------

@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"n_molecules": 0}, ValueError, "n_molecules must be an integer >= 1, found 0"),
        ({"n_molecules": -3}, ValueError, "n_molecules must be an integer >= 1, found -3"),
        ({"n_molecules": np.int64(0)}, ValueError, "n_molecules must be an integer >= 1"),
        ({"n_molecules": 1.5}, TypeError, "n_molecules must be an integer"),
        ({"n_molecules": True}, TypeError, "n_molecules must be an integer"),
        ({"n_molecules": 10**6}, ValueError, "exceeds"),
        ({"spectra_per_molecule": (0, 2)}, ValueError, "each of spectra_per_molecule must be an integer >= 1"),
        ({"spectra_per_molecule": (4, 2)}, ValueError, "low <= high, found (4, 2)"),
        ({"spectra_per_molecule": 0}, ValueError, "each of spectra_per_molecule must be an integer >= 1"),
        ({"spectra_per_molecule": (1,)}, ValueError, "spectra_per_molecule must be a list of 2 to 2 items"),
        ({"spectra_per_molecule": (1, 2, 3)}, ValueError, "spectra_per_molecule must be a list of 2 to 2 items"),
        ({"spectra_per_molecule": None}, TypeError, "spectra_per_molecule"),
        ({"spectra_per_molecule": (True, 2)}, TypeError, "spectra_per_molecule"),
        ({"spectra_per_molecule": (1.0, 2)}, TypeError, "spectra_per_molecule"),
        ({"spectra_per_molecule": "2-5"}, TypeError, "spectra_per_molecule"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": "0"}, TypeError, "seed"),
        ({"seed": 2.0}, TypeError, "seed must be an integer >= 0"),
        ({"seed": None}, TypeError, "seed"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        _library(**{"n_molecules": 5, **kwargs})


def test_progress_bar_on_stderr(capsys):
    _library(n_molecules=3, seed=0)
    assert capsys.readouterr().err == ""
    simulate.simulate_library(n_molecules=3, seed=0, progress=True)
    assert "simulating spectra" in capsys.readouterr().err


def test_description_says_simulated_and_how_to_use_real_data():
    text = simulate.simulated_library_description()
    assert "SIMULATED" in text and "not real" in text
    assert "--library massbank" in text and "--library path/to/library.mgf" in text
