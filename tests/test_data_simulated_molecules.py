"""The molecules of the embedded default library (kit.data.simulated_molecules): seeded edits
of RDKit's NCI sample that no shipped list holds, and how a molecule of the file is prepared."""
import collections

import numpy as np
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import Descriptors, rdFingerprintGenerator

from kit.data import simulated_molecules


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


def test_every_molecule_carries_at_least_three_edits():
    records = simulated_molecules.read_smiles_records(simulated_molecules.nci_smiles_path())[:300]
    usable = simulated_molecules.usable_molecules(records)
    generator = rdFingerprintGenerator.GetRDKitFPGenerator(maxPath=7, fpSize=2048)
    for line_index, _variant, mol, _ in simulated_molecules.choose_molecules(usable, 30, seed=5):
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


# --- preparing a molecule of the NCI file --------------------------------------------------

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
