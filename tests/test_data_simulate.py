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


# --- seeded edits: molecules that no shipped list holds --------------------------------

def _atom_counts(mol):
    counts = collections.Counter(atom.GetSymbol() for atom in mol.GetAtoms())
    counts["H"] = sum(atom.GetTotalNumHs() for atom in mol.GetAtoms())
    return counts


# The change of formula each kind of edit makes (drop: minus the dropped atom and its
# hydrogens, plus one hydrogen; checked separately).
FORMULA_CHANGES = {
    "methyl": {"C": 1, "H": 2}, "hydroxy": {"O": 1}, "amino": {"N": 1, "H": 1},
    "fluoro": {"F": 1, "H": -1}, "chloro": {"Cl": 1, "H": -1}, "bromo": {"Br": 1, "H": -1},
    "homologue": {"C": 1, "H": 2}, "oxa": {"O": 1}, "aza": {"N": 1, "C": -1, "H": -1}, "move": {},
}
EDIT_TARGETS = (
    "CC(=O)Nc1ccc(O)cc1",          # acetanilide with OH: N-H, O-H, aromatic C-H
    "c1ccc2[nH]ccc2c1",            # indole: an explicit aromatic N-H
    "CCOC(=O)C1CCCCC1Cl",          # ester, aliphatic ring, a halogen to drop or move
    "Cn1cnc2c1c(=O)n(C)c(=O)n2C",  # caffeine: methyls on aromatic N
    "OC(=O)CCS",                   # a thiol to drop
)


@pytest.mark.parametrize("smiles", EDIT_TARGETS)
@pytest.mark.parametrize("edit", list(simulated_molecules.EDITS))
def test_every_edit_at_every_site_sanitises_with_its_formula_change(smiles, edit):
    mol = Chem.MolFromSmiles(smiles)
    sites = simulated_molecules.edit_sites(mol, edit)
    made = 0
    for site in sites:
        edited = simulated_molecules.apply_edit(mol, edit, site)
        if edited is None:
            continue
        made += 1
        again = Chem.MolFromSmiles(Chem.MolToSmiles(edited))
        assert again is not None and Chem.SanitizeMol(again) == Chem.SanitizeFlags.SANITIZE_NONE
        assert Chem.GetFormalCharge(edited) == 0 and len(Chem.GetMolFrags(edited)) == 1
        change = _atom_counts(edited)
        change.subtract(_atom_counts(mol))
        change = {element: n for element, n in change.items() if n}
        if edit == "drop":
            dropped = mol.GetAtomWithIdx(site[0])
            expected = {dropped.GetSymbol(): -1, "H": 1 - dropped.GetTotalNumHs()}
            assert change == {k: v for k, v in expected.items() if v}
        else:
            assert change == FORMULA_CHANGES[edit]
        assert Chem.MolToSmiles(edited) != Chem.MolToSmiles(mol) or edit == "move"
    assert made or not sites or edit == "aza"


@pytest.mark.parametrize("kind, site", [("methyl", (3,)), ("homologue", (0,)), ("aza", (3,)), ("move", (6, 3))])
def test_stacked_edits_leave_earlier_edits_alone(kind, site):
    # An edit that a later one could undo (drop the methyl just added, move it back)
    # would leave a molecule one or two edits from a shipped one.
    mol = simulated_molecules.apply_edit(Chem.MolFromSmiles("OCc1ccc(C)cc1"), kind, site)
    marked = {atom.GetIdx() for atom in mol.GetAtoms() if atom.HasProp(simulated_molecules._EDITED)}
    assert marked
    for edit in simulated_molecules.EDITS:
        for found in simulated_molecules.edit_sites(mol, edit):
            if edit in ("homologue", "oxa"):
                bond = mol.GetBondWithIdx(found[0])
                touched = {bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()}
            elif edit in ("drop", "move"):
                touched = {*found, mol.GetAtomWithIdx(found[0]).GetNeighbors()[0].GetIdx()}
            else:
                touched = set(found)
            assert not touched & marked, (edit, found)


@pytest.mark.parametrize("call", [
    lambda mol: simulated_molecules.edit_sites(mol, "nitro"),
    lambda mol: simulated_molecules.apply_edit(mol, "nitro", (0,)),
])
def test_unknown_edit_is_named(call):
    with pytest.raises(ValueError, match="unknown edit 'nitro'"):
        call(Chem.MolFromSmiles("CCO"))


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


def test_every_molecule_carries_at_least_three_edits():
    usable = simulated_molecules.usable_molecules(simulated_molecules.read_smiles_records(simulated_molecules.nci_smiles_path())[:300])
    generator = rdFingerprintGenerator.GetRDKitFPGenerator(maxPath=7, fpSize=2048)
    for line_index, variant, mol, _ in simulated_molecules.choose_molecules(usable, 30, seed=5):
        parent = {line: m for line, _, m in usable}[line_index]
        # Three edits move the heavy-atom count or the label's fingerprint well away.
        similarity = DataStructs.TanimotoSimilarity(generator.GetFingerprint(parent), generator.GetFingerprint(mol))
        assert similarity < 0.95, (Chem.MolToSmiles(parent), Chem.MolToSmiles(mol))


def test_plain_mass_lookup_finds_few_molecules():
    # The attack of bench/bench_lookup_attack.py on a small build: each molecule's mass
    # against the shipped molecules'. It cannot name the molecule (none is shipped) and
    # names the molecule it was edited from for under 10% (the full-size figures are in
    # bench/README.md).
    usable, shipped = simulated_molecules.shipped_molecules()
    masses = np.array([Descriptors.ExactMolWt(mol) for _, _, mol in usable])
    blocks = [Chem.MolToInchiKey(mol)[:14] for _, _, mol in usable]
    chosen = simulated_molecules.choose_molecules(usable, 60, seed=11, shipped=shipped)
    found = parent_found = 0
    for line_index, _, mol, structure in chosen:
        distance = np.abs(masses - Descriptors.ExactMolWt(mol))
        closest = int(np.argmin(distance))
        if distance[closest] < 0.002:
            found += blocks[closest] == structure["inchikey"][:14]
            parent_found += usable[closest][0] == line_index
    assert found == 0
    assert parent_found / len(chosen) < 0.10


def test_order_does_not_follow_the_shipped_file():
    # The spectrum ids of train.mgf must not place a test molecule between two shipped lines.
    usable, shipped = simulated_molecules.shipped_molecules()
    lines = [line for line, _, _, _ in simulated_molecules.choose_molecules(usable, 40, seed=0, shipped=shipped)]
    assert lines != sorted(lines)


# --- the fragmenter ----------------------------------------------------------------------

@pytest.mark.parametrize(
    "smiles, expected",
    [
        ("[Na+].CCCCC(=O)[O-]", "CCCCC(=O)O"),       # largest fragment, neutralised
        ("c1ccccc1CCN", "NCCc1ccccc1"),
        ("CCO", None),                                # too few heavy atoms
        ("not a smiles", None),
        ("CC[Sn](CC)(CC)CC", None),                   # element outside the list
        ("C" * 70, None),                             # too many heavy atoms
        ("C[N+](C)(C)CCCCC", None),                   # permanent charge
    ],
)
def test_prepare_molecule(smiles, expected):
    mol = simulated_molecules.prepare_molecule(smiles)
    assert (None if mol is None else Chem.MolToSmiles(mol)) == expected


def test_same_substructure_same_peak_across_molecules():
    # Ethyl and propyl benzoate share the benzoyl ion, freed by the same cut.
    patterns = fragmenter.compile_loss_patterns()
    mols = [Chem.MolFromSmiles(smiles) for smiles in ("CCOC(=O)c1ccccc1", "CCCOC(=O)c1ccccc1")]
    infos = [(fragmenter.fragment_table(mol), fragmenter.describe_molecule(mol, patterns)) for mol in mols]
    benzoyl = "[O]=[C][c]1[cH][cH][cH][cH][cH]1"
    peaks = []
    for table, info in infos:
        row = table["keys"].index(benzoyl)
        ions = info["ions"]["positive"]
        peaks.append((ions["mz"][row], ions["intensity"][row]))
    assert peaks[0] == pytest.approx(peaks[1])
    assert peaks[0][0] == pytest.approx(105.034, abs=1.1)


def _connected(mol, atoms):
    atoms = set(atoms)
    seen, stack = {min(atoms)}, [min(atoms)]
    while stack:
        for neighbour in mol.GetAtomWithIdx(stack.pop()).GetNeighbors():
            if neighbour.GetIdx() in atoms and neighbour.GetIdx() not in seen:
                seen.add(neighbour.GetIdx())
                stack.append(neighbour.GetIdx())
    return seen == atoms


def test_pieces_are_connected_and_masses_add_up():
    mol = Chem.MolFromSmiles("CC(=O)Nc1ccc(OCC)cc1")
    graph = fragmenter.molecule_graph(mol)
    n_atoms, full = mol.GetNumAtoms(), (1 << mol.GetNumAtoms()) - 1
    assert graph["mass"].sum() == pytest.approx(Descriptors.ExactMolWt(mol), abs=1e-6)
    pieces = fragmenter.acyclic_pieces(graph)
    assert pieces
    for mask, weight in pieces:
        assert 0 < mask < full and weight > 0
        assert _connected(mol, [i for i in range(n_atoms) if mask >> i & 1])
    # Single cuts come first, as (one side, other side) pairs.
    n_single = sum(1 for b in mol.GetBonds() if not b.IsInRing() and b.GetBondTypeAsDouble() == 1.0)
    for (side, _), (other, _) in zip(pieces[0:2 * n_single:2], pieces[1:2 * n_single:2]):
        assert side | other == full and side & other == 0


def test_ring_cleavage_for_molecules_without_acyclic_bonds():
    table = fragmenter.fragment_table(Chem.MolFromSmiles("c1ccc2ccccc2c1"))  # naphthalene
    assert len(table["keys"]) >= 2


def test_neutral_losses_follow_groups():
    patterns = fragmenter.compile_loss_patterns()
    names, masses = fragmenter.neutral_losses(Chem.MolFromSmiles("OC(=O)CCN"), patterns)
    assert {"H2O", "NH3", "CO2"} <= set(names)
    assert masses[names.index("H2O")] == pytest.approx(18.0106, abs=1e-4)
    names, _ = fragmenter.neutral_losses(Chem.MolFromSmiles("c1ccccc1C"), patterns)
    assert "H2O" not in names


def test_hash_units_stable():
    units = fragmenter.hash_units(["c1ccccc1", "CCO"], 3)
    assert units.shape == (2, 3)
    np.testing.assert_array_equal(units, fragmenter.hash_units(["c1ccccc1", "CCO"], 3))
    assert not np.array_equal(units[0], units[1])
    assert fragmenter.hash_units([], 2).shape == (0, 2)


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
