"""The in-silico fragmenter of the embedded default library (kit.data.fragmenter): pieces,
neutral losses, and the same peak for the same substructure."""
import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Descriptors

from kit.data import fragmenter


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
