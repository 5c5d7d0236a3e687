"""The molecules of the embedded default library: seeded edits of RDKit's NCI sample.

Its molecules are made from RDKit's NCI sample (``RDConfig.RDDataDir/NCI/first_5K.smi``)
by seeded edits, so that no list the kit or its dependencies ship holds them:

* each shipped molecule taken gives a family of one to four siblings: three edits shared
  by the family, then none or one of the sibling's own (:data:`EDITS`: methyl, hydroxy,
  amino, fluoro, chloro or bromo on a site that holds a hydrogen; CH2 or O inserted into a
  single bond; an aromatic CH made N; a terminal atom dropped, or moved to another site);
  the kind and the site of every edit are drawn from the library's seed, which
  ``kit prepare`` draws from the competition's secret seed;
* edits share masses (methyl and CH2 insertion, hydroxy and O insertion, amino and NH
  insertion) and a move changes none, so an edited molecule's mass fits many stacks of
  edits on many shipped molecules, and the molecule is three or more edits from any of
  them: an attacker who knows these rules but not the seed must enumerate every triple
  of edits of every candidate to rebuild it (see ``bench/bench_lookup_attack.py``);
* a sibling whose first InChIKey block is a shipped molecule's is left out, and the
  library is written in an order drawn from the seed, not the NCI file's.

Shipped molecules are taken in groups of close analogues, and each gives a family of
siblings, so that a competition built from the library has pairs in every Tanimoto bin.
The choice of shipped molecules draws from :func:`numpy.random.default_rng` seeded with
``(seed, 1)``, the edits of a family from ``(seed, 3, its line in the NCI file)`` and the
library's order from ``(seed, 4)``. :mod:`kit.data.fragmenter` gives their spectra and
:mod:`kit.data.simulate` puts the library together.
"""
import functools
import sys
from pathlib import Path
from types import MappingProxyType

import numpy as np
from rdkit import Chem, DataStructs, RDConfig, rdBase
from rdkit.Chem import (
    Descriptors,
    GetPeriodicTable,
    rdFingerprintGenerator,
    rdMolDescriptors,
)
from rdkit.Chem.MolStandardize import rdMolStandardize

from kit.progress import progress as progress_bar

# Which molecules of the NCI file qualify.
ALLOWED_ELEMENTS = ("B", "C", "N", "O", "F", "Si", "P", "S", "Cl", "Se", "Br", "I")
HEAVY_ATOM_RANGE = (5, 60)
MASS_RANGE = (80.0, 900.0)

# Library composition: groups of analogues (Morgan radius 2, a cheap stand-in for the
# label's path fingerprint) make pairs with high Tanimoto common enough.
ANALOGUE_THRESHOLD = 0.45
MAX_ANALOGUES = 15

# Random streams: (seed, stream, line) seeds one generator per purpose and molecule
# (stream 2 is the spectra's, in kit.data.simulate).
_SELECTION_STREAM = 1
_EDIT_STREAM = 3
_ORDER_STREAM = 4


def nci_smiles_path():
    """Path of RDKit's NCI sample of 5,000 molecules (SMILES, then NCI number).

    Examples
    --------
    >>> nci_smiles_path().name
    'first_5K.smi'
    """
    path = Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"
    if not path.is_file():
        raise FileNotFoundError(
            f"RDKit's NCI sample is missing: expected {path} (it ships with the rdkit package; "
            "reinstall rdkit, or use `kit prepare --library PATH`)"
        )
    return path


def read_smiles_records(path):
    """Read a ``.smi`` file into ``(line index, SMILES, name)`` tuples.

    Blank lines and lines that start with ``#`` are skipped; the line index still counts
    them, so a record keeps its index whatever else the file holds.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.smi"
    >>> _ = p.write_text("CCO\\t7\\n\\nc1ccccc1O 8\\n")
    >>> read_smiles_records(p)
    [(0, 'CCO', '7'), (2, 'c1ccccc1O', '8')]
    """
    records = []
    with open(path, encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            name = fields[1] if len(fields) > 1 else str(index + 1)
            records.append((index, fields[0], name))
    return records


def _filter_patterns():
    """SMARTS used by :func:`prepare_molecule`, compiled once per library."""
    table = GetPeriodicTable()
    allowed = ";".join(f"!#{table.GetAtomicNumber(symbol)}" for symbol in ALLOWED_ELEMENTS)
    return {
        "disallowed": Chem.MolFromSmarts(f"[{allowed};!#1]"),
        "carbon": Chem.MolFromSmarts("[#6]"),
        "charged": Chem.MolFromSmarts("[+,-]"),
    }


def prepare_molecule(smiles, patterns=None):
    """Parse, keep the largest fragment, neutralise, and check elements and size.

    Parameters
    ----------
    smiles : str
    patterns : dict, optional
        Compiled filter patterns (built here when not given).

    Returns
    -------
    rdkit.Chem.Mol or None
        None when the SMILES does not parse, holds an element outside
        :data:`ALLOWED_ELEMENTS` or no carbon, keeps a net charge, or falls outside
        :data:`HEAVY_ATOM_RANGE` or :data:`MASS_RANGE`.

    Examples
    --------
    >>> from rdkit import Chem
    >>> Chem.MolToSmiles(prepare_molecule("[Na+].CCCCC(=O)[O-]"))
    'CCCCC(=O)O'
    >>> prepare_molecule("CCO") is None   # too small
    True
    """
    patterns = patterns or _filter_patterns()
    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            return None
        if "." in smiles:
            pieces = Chem.GetMolFrags(mol, asMols=True)
            mol = max(pieces, key=lambda piece: piece.GetNumHeavyAtoms())
        if mol.HasSubstructMatch(patterns["charged"]):
            mol = rdMolStandardize.Uncharger().uncharge(mol)
            if Chem.GetFormalCharge(mol) != 0:
                return None
    if mol.HasSubstructMatch(patterns["disallowed"]) or not mol.HasSubstructMatch(patterns["carbon"]):
        return None
    if not HEAVY_ATOM_RANGE[0] <= mol.GetNumHeavyAtoms() <= HEAVY_ATOM_RANGE[1]:
        return None
    if not MASS_RANGE[0] <= Descriptors.ExactMolWt(mol) <= MASS_RANGE[1]:
        return None
    return mol


def _canonical_form(mol):
    """``mol`` re-read from its canonical SMILES, so later steps see what a user sees."""
    with rdBase.BlockLogs():
        return Chem.MolFromSmiles(Chem.MolToSmiles(mol))


def structure_metadata(mol):
    """Canonical SMILES, InChI, InChIKey and formula of ``mol``.

    Examples
    --------
    >>> from rdkit import Chem
    >>> structure_metadata(Chem.MolFromSmiles("OC(=O)c1ccccc1"))["inchikey"]
    'WPYMKLBDIGXBTP-UHFFFAOYSA-N'
    """
    with rdBase.BlockLogs():
        inchi = Chem.MolToInchi(mol)
    return {
        "smiles": Chem.MolToSmiles(mol),
        "inchi": inchi,
        "inchikey": Chem.InchiToInchiKey(inchi) if inchi else "",
        "formula": rdMolDescriptors.CalcMolFormula(mol),
    }


# --- seeded edits: the library's molecules are not in any shipped list ---------------------
#
# name -> (what it does, change of formula). Several edits share a change of formula
# (methyl and CH2 insertion, hydroxy and O insertion, amino and NH insertion) and a moved
# substituent changes none, so the precursor m/z of an edited molecule leaves its edits open.
EDITS = MappingProxyType({
    "methyl": ("CH3 on an atom that holds a hydrogen (C, N or O)", "+CH2"),
    "hydroxy": ("OH on a carbon that holds a hydrogen", "+O"),
    "amino": ("NH2 on a carbon that holds a hydrogen", "+NH"),
    "fluoro": ("F on a carbon that holds a hydrogen", "+F-H"),
    "chloro": ("Cl on a carbon that holds a hydrogen", "+Cl-H"),
    "bromo": ("Br on a carbon that holds a hydrogen", "+Br-H"),
    "homologue": ("CH2 inserted into a non-aromatic single bond (chain or ring)", "+CH2"),
    "oxa": ("O inserted into a non-aromatic single C-C bond", "+O"),
    "aza": ("an aromatic CH of a six-membered ring becomes N", "+N-CH"),
    "drop": ("a terminal heavy atom on a single bond is removed", "-X+H"),
    "move": ("a terminal heavy atom moves to another atom that holds a hydrogen", "0"),
})
# Atomic number each edit adds, and which atoms may take it.
_EDITED = "specsim_edited"  # atom property of the atoms an edit added or changed
_ADDED_ATOM = MappingProxyType({"methyl": 6, "hydroxy": 8, "amino": 7, "fluoro": 9, "chloro": 17, "bromo": 35})
_ACCEPTORS = MappingProxyType({6: (6, 7, 8), 7: (6,), 8: (6,), 9: (6,), 17: (6,), 35: (6,)})
# Every molecule of the library carries the BASE_EDITS edits of its family (the molecules
# edited from one shipped molecule) plus VARIANT_EDITS of its own: at least three in all,
# so no molecule is a single or double edit of a shipped one, while siblings (one to
# MAX_VARIANTS of them) differ by an edit or two and fill the upper Tanimoto bins.
BASE_EDITS = (3, 3)
VARIANT_EDITS = (0, 1)
MAX_VARIANTS = 4
_EDIT_TRIES = 20


def edit_sites(mol, edit):
    """Every place :func:`apply_edit` may try ``edit`` on ``mol``, in a fixed order.

    Parameters
    ----------
    mol : rdkit.Chem.Mol
        Without explicit hydrogen atoms.
    edit : str
        A key of :data:`EDITS`.

    Returns
    -------
    list of tuple of int
        Atom indices, bond indices (``homologue``, ``oxa``) or ``(from atom, to atom)``
        (``move``). A site may still fail (the result does not sanitise).

    Examples
    --------
    >>> from rdkit import Chem
    >>> mol = Chem.MolFromSmiles("CCOc1ccccc1")
    >>> len(edit_sites(mol, "aza")), edit_sites(mol, "drop"), edit_sites(mol, "oxa")
    (5, [(0,)], [(0,)])
    """
    atoms = [atom for atom in mol.GetAtoms() if not atom.HasProp(_EDITED)]
    if edit in _ADDED_ATOM:
        acceptors = _ACCEPTORS[_ADDED_ATOM[edit]]
        return [(a.GetIdx(),) for a in atoms if a.GetAtomicNum() in acceptors and a.GetTotalNumHs() > 0]
    if edit in ("homologue", "oxa"):
        sites = []
        for bond in mol.GetBonds():
            ends = (bond.GetBeginAtom(), bond.GetEndAtom())
            if bond.GetBondType() != _single() or bond.GetIsAromatic() or any(a.HasProp(_EDITED) for a in ends):
                continue
            if edit == "oxa" and not all(a.GetAtomicNum() == 6 and not a.GetIsAromatic() for a in ends):
                continue
            sites.append((bond.GetIdx(),))
        return sites
    if edit == "aza":
        return [
            (a.GetIdx(),) for a in atoms
            if a.GetAtomicNum() == 6 and a.GetIsAromatic() and a.GetTotalNumHs() == 1 and a.IsInRingSize(6)
        ]
    terminal = [
        a for a in atoms
        if a.GetDegree() == 1 and not a.IsInRing() and a.GetBonds()[0].GetBondType() == _single()
        and not a.GetNeighbors()[0].HasProp(_EDITED)
    ]
    if edit == "drop":
        return [(a.GetIdx(),) for a in terminal]
    if edit == "move":
        return [
            (a.GetIdx(), b.GetIdx()) for a in terminal for b in atoms
            if b.GetAtomicNum() in _ACCEPTORS.get(a.GetAtomicNum(), ()) and b.GetTotalNumHs() > 0
            and b.GetIdx() != a.GetNeighbors()[0].GetIdx()
        ]
    raise ValueError(f"unknown edit {edit!r}: expected one of {', '.join(EDITS)}")


def _single():
    return Chem.BondType.SINGLE


def _mark(*atoms):
    """Later edits leave these atoms alone, so that no edit undoes or moves an earlier one."""
    for atom in atoms:
        atom.SetBoolProp(_EDITED, True)


def _take_hydrogen(atom):
    """A new bond on ``atom`` replaces one of its hydrogens."""
    if atom.GetNumExplicitHs():
        atom.SetNumExplicitHs(atom.GetNumExplicitHs() - 1)


def _attach(rw, atom_index, atomic_number):
    _take_hydrogen(rw.GetAtomWithIdx(atom_index))
    new = rw.AddAtom(Chem.Atom(atomic_number))
    rw.AddBond(atom_index, new, Chem.BondType.SINGLE)
    _mark(rw.GetAtomWithIdx(atom_index), rw.GetAtomWithIdx(new))


def _detach(rw, atom_index):
    """Remove a terminal atom; its neighbour takes a hydrogen in its place."""
    neighbour = rw.GetAtomWithIdx(atom_index).GetNeighbors()[0]
    if neighbour.GetIsAromatic() or neighbour.GetNumExplicitHs() or neighbour.GetFormalCharge():
        neighbour.SetNumExplicitHs(neighbour.GetNumExplicitHs() + 1)
    _mark(neighbour)
    rw.RemoveAtom(atom_index)


def apply_edit(mol, edit, site):
    """``mol`` with one edit of :data:`EDITS` at ``site`` (see :func:`edit_sites`).

    The atoms the edit adds or changes are marked: :func:`edit_sites` offers no later
    edit on them, so stacked edits neither undo nor repeat each other.

    Returns
    -------
    rdkit.Chem.Mol or None
        In canonical atom order; None when the result does not sanitise, falls apart,
        or carries a charge.

    Examples
    --------
    >>> from rdkit import Chem
    >>> Chem.MolToSmiles(apply_edit(Chem.MolFromSmiles("CCOc1ccccc1"), "oxa", (0,)))
    'COCOc1ccccc1'
    >>> Chem.MolToSmiles(apply_edit(Chem.MolFromSmiles("CCOc1ccccc1"), "move", (0, 5)))
    'COc1cccc(C)c1'
    """
    rw = Chem.RWMol(mol)
    if edit in _ADDED_ATOM:
        _attach(rw, site[0], _ADDED_ATOM[edit])
    elif edit in ("homologue", "oxa"):
        bond = rw.GetBondWithIdx(site[0])
        begin, end = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        rw.RemoveBond(begin, end)
        middle = rw.AddAtom(Chem.Atom(6 if edit == "homologue" else 8))
        rw.AddBond(begin, middle, Chem.BondType.SINGLE)
        rw.AddBond(middle, end, Chem.BondType.SINGLE)
        _mark(*(rw.GetAtomWithIdx(i) for i in (begin, middle, end)))
    elif edit == "aza":
        atom = rw.GetAtomWithIdx(site[0])
        atom.SetAtomicNum(7)
        atom.SetNumExplicitHs(0)
        _mark(atom)
    elif edit == "drop":
        _detach(rw, site[0])
    elif edit == "move":
        atomic_number = rw.GetAtomWithIdx(site[0]).GetAtomicNum()
        _attach(rw, site[1], atomic_number)
        _detach(rw, site[0])
    else:
        raise ValueError(f"unknown edit {edit!r}: expected one of {', '.join(EDITS)}")
    with rdBase.BlockLogs():
        try:
            Chem.SanitizeMol(rw)
        except Exception:  # RDKit raises several kinds for an impossible valence or ring
            return None
        if len(Chem.GetMolFrags(rw)) > 1 or Chem.GetFormalCharge(rw) != 0:
            return None
    edited = rw.GetMol()
    # Canonical atom order, keeping the marks of edited atoms (a SMILES round trip would drop them).
    ranks = list(Chem.CanonicalRankAtoms(edited))
    return Chem.RenumberAtoms(edited, sorted(range(len(ranks)), key=ranks.__getitem__))


def random_edits(mol, n_edits, rng, patterns=None):
    """``mol`` after ``n_edits`` edits, each of a random kind at a random site.

    Kinds that have no site, or whose result fails :func:`prepare_molecule` (size,
    mass), are drawn again, up to a bound.

    Returns
    -------
    rdkit.Chem.Mol or None
        None when the molecule runs out of editable sites.

    Examples
    --------
    >>> from rdkit import Chem
    >>> mol = Chem.MolFromSmiles("CC(=O)Nc1ccc(O)cc1")
    >>> edited = random_edits(mol, 3, np.random.default_rng(0))
    >>> Chem.MolToSmiles(edited) != Chem.MolToSmiles(mol)
    True
    """
    patterns = patterns or _filter_patterns()
    kinds = list(EDITS)
    for _ in range(n_edits):
        for _ in range(_EDIT_TRIES):
            kind = kinds[int(rng.integers(len(kinds)))]
            sites = edit_sites(mol, kind)
            if not sites:
                continue
            edited = apply_edit(mol, kind, sites[int(rng.integers(len(sites)))])
            if edited is not None and prepare_molecule(Chem.MolToSmiles(edited), patterns) is not None:
                mol = edited
                break
        else:
            return None
    return mol


def shipped_blocks(usable):
    """First InChIKey blocks of the shipped molecules, which the library must avoid.

    Examples
    --------
    >>> from rdkit import Chem
    >>> sorted(shipped_blocks([(0, "1", Chem.MolFromSmiles("c1ccccc1O"))]))
    ['ISWSIDIOOBJBQZ']
    """
    with rdBase.BlockLogs():
        return {Chem.MolToInchiKey(mol)[:14] for _, _, mol in usable}


def family_rng(seed, line_index):
    """The random generator of the edits made to one shipped molecule.

    Examples
    --------
    >>> family_rng(3, 5).random() == family_rng(3, 5).random() != family_rng(4, 5).random()
    True
    """
    return np.random.default_rng((seed, _EDIT_STREAM, line_index))


def edited_family(mol, rng, patterns=None):
    """Siblings edited from one shipped molecule: shared base edits, then their own.

    Returns
    -------
    list of rdkit.Chem.Mol
        One to :data:`MAX_VARIANTS` molecules (fewer when edits fail), each carrying
        ``BASE_EDITS`` plus ``VARIANT_EDITS`` edits; possibly empty.
    """
    mol = Chem.Mol(mol)
    Chem.RemoveStereochemistry(mol)  # edits move atoms; old stereo labels would mislead
    mol = _canonical_form(mol)
    base = random_edits(mol, int(rng.integers(BASE_EDITS[0], BASE_EDITS[1] + 1)), rng, patterns)
    if base is None:
        return []
    family = []
    for _ in range(int(rng.integers(1, MAX_VARIANTS + 1))):
        variant = random_edits(base, int(rng.integers(VARIANT_EDITS[0], VARIANT_EDITS[1] + 1)), rng, patterns)
        if variant is not None:
            family.append(_canonical_form(variant))  # as a user reads it from its SMILES
    return family


def usable_molecules(records, progress=False):
    """Molecules of ``records`` that :func:`prepare_molecule` accepts, in file order.

    Returns
    -------
    list of (int, str, rdkit.Chem.Mol)
        ``(line index, name, molecule)``.
    """
    patterns = _filter_patterns()
    usable = []
    for line_index, smiles, name in progress_bar(
        records, desc="reading molecules", unit="mol", disable=not progress, file=sys.stderr, leave=False
    ):
        mol = prepare_molecule(smiles, patterns)
        if mol is not None:
            usable.append((line_index, name, mol))
    return usable


def analogue_order(mols, seed):
    """Indices of ``mols`` in the order the library takes them: groups of analogues.

    Seeds are drawn in a seeded random order; each brings up to :data:`MAX_ANALOGUES`
    molecules not yet taken with Tanimoto >= :data:`ANALOGUE_THRESHOLD` (Morgan radius
    2), most similar first. A plain random sample would hold too few similar pairs for
    the upper Tanimoto bins.

    Yields
    ------
    int
    """
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    fingerprints = [generator.GetFingerprint(mol) for mol in mols]
    taken = np.zeros(len(mols), dtype=bool)
    for index in np.random.default_rng((seed, _SELECTION_STREAM)).permutation(len(mols)):
        if taken[index]:
            continue
        similarity = np.asarray(DataStructs.BulkTanimotoSimilarity(fingerprints[index], fingerprints))
        similarity[index] = 2.0  # the seed itself comes first
        group = np.flatnonzero((similarity >= ANALOGUE_THRESHOLD) & ~taken)
        # Most similar first; ties to the earlier line so the order is reproducible.
        group = group[np.lexsort((group, -similarity[group]))][: MAX_ANALOGUES + 1]
        taken[group] = True
        yield from group.tolist()


@functools.lru_cache(maxsize=1)
def shipped_molecules():
    """The usable NCI molecules and their first InChIKey blocks, read once per process.

    Returns
    -------
    usable : tuple of (int, str, rdkit.Chem.Mol)
        As :func:`usable_molecules`; callers copy a molecule before changing it.
    blocks : frozenset of str
        As :func:`shipped_blocks`.
    """
    usable = tuple(usable_molecules(read_smiles_records(nci_smiles_path())))
    return usable, frozenset(shipped_blocks(usable))


def choose_molecules(usable, n_molecules, seed, shipped=None):
    """Edit shipped molecules, in analogue order, until ``n_molecules`` new ones are made.

    Each shipped molecule taken gives a family of siblings (:func:`edited_family`,
    seeded from ``seed`` and its line); a sibling whose first InChIKey block is a
    shipped molecule's, or an earlier sibling's, is left out.

    Parameters
    ----------
    usable : sequence of (int, str, rdkit.Chem.Mol)
        Output of :func:`usable_molecules`.
    n_molecules, seed : int
    shipped : set of str, optional
        :func:`shipped_blocks` of ``usable`` (computed here when not given).

    Returns
    -------
    list of (int, int, rdkit.Chem.Mol, dict)
        ``(line index of the shipped molecule, place among its siblings, edited
        molecule, structure metadata)`` in an order drawn from ``seed``: the order of
        the shipped file would tell where a molecule came from.
    """
    shipped = shipped_blocks(usable) if shipped is None else shipped
    patterns = _filter_patterns()
    chosen, blocks = [], set()
    for index in analogue_order([mol for _, _, mol in usable], seed):
        line_index, _, parent = usable[index]
        for variant, mol in enumerate(edited_family(parent, family_rng(seed, line_index), patterns)):
            structure = structure_metadata(mol)
            block = structure["inchikey"][:14]
            if not block or block in blocks or block in shipped:
                continue  # stereoisomers and repeats are one molecule to the competition
            blocks.add(block)
            chosen.append((line_index, variant, mol, structure))
            if len(chosen) == n_molecules:
                order = np.random.default_rng((seed, _ORDER_STREAM)).permutation(len(chosen))
                return [chosen[k] for k in order]
    raise ValueError(
        f"n_molecules={n_molecules} exceeds the {len(chosen)} distinct molecules the simulator "
        f"edits from RDKit's NCI sample; ask for at most {len(chosen)}, or use a real library "
        "(`kit prepare --library massbank` or `--library path/to/library.mgf`)"
    )

