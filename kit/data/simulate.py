"""The embedded default library: simulated MS/MS spectra of seeded edits of RDKit's molecules.

``kit prepare`` without ``--library`` builds the ``practice`` competition from this
library, so the kit works offline and on a fresh machine. Its molecules are made from
RDKit's NCI sample (``RDConfig.RDDataDir/NCI/first_5K.smi``) by seeded edits, so that no
list the kit or its dependencies ship holds them:

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

Their spectra come from a small in-silico fragmenter in this module:

* every acyclic single bond is cut once (either piece may keep the charge), pairs of
  them are cut together (the piece between them), and pairs of bonds of one ring are
  cut where that frees a piece (ring cleavage);
* the precursor loses small neutral molecules (H2O, NH3, CO, CO2, HCOOH, CH3OH, HCl,
  HCN ...) when it holds the group they come from;
* adducts ``[M+H]+``, ``[M+Na]+``, ``[M+NH4]+`` and ``[M-H]-`` (about 80% positive),
  several collision energies per molecule, 13C isotope peaks, a few noise peaks,
  intensity jitter and m/z errors of a few ppm.

Structure shows in the spectra because everything about a fragment is a function of its
structure: its intensity is a hash of its canonical SMILES times a hash of the bonds cut
to free it (their atoms and neighbours), and the hydrogen shift of its ion is a hash of
those bonds. The same substructure gives the same peak, with the same relative intensity,
in every molecule that holds it; an analogue that differs elsewhere keeps the peak, and
one that differs inside the piece keeps the cut and so a similar peak, moved by the mass
difference (which the modified cosine matches). The collision energy moves intensity
from the precursor and large fragments toward small fragments.

Shipped molecules are taken in groups of close analogues, and each gives a family of
siblings, so that a competition built from the library has pairs in every Tanimoto bin.
Every random step draws from :func:`numpy.random.default_rng`: the choice of shipped
molecules from one seeded with ``(seed, 1)``, the edits of a family from ``(seed, 3, its
line in the NCI file)``, each molecule's spectra from ``(seed, 2, line, place in the
family)`` and the library's order from ``(seed, 4)``, so a molecule and its spectra do not
depend on which other molecules were chosen or in what order they were simulated.
"""
import functools
import hashlib
import sys
from pathlib import Path
from types import MappingProxyType

import numpy as np

__all__ = ["SIMULATED_LIBRARY_DESCRIPTION", "simulate_library", "simulated_library_description"]

SIMULATED_LIBRARY_DESCRIPTION = (
    "SIMULATED library: these spectra come from the kit's own in-silico fragmenter "
    "(acyclic and ring bond cleavages, neutral losses, adducts, collision energies, "
    "noise), applied to seeded edits of molecules of RDKit's NCI sample; they are not real "
    "measurements. Scores on it show how a method behaves, not how it does on real "
    "MS/MS data. For real spectra use `kit prepare --library massbank` (MassBank) or "
    "`kit prepare --library path/to/library.mgf` (MGF, MSP, mzML or JSON, gzip allowed)."
)

# Monoisotopic masses (Da).
ELECTRON = 0.00054858
PROTON = 1.00727646
HYDROGEN = 1.00782503
SODIUM = 22.98976928
C13_SHIFT = 1.00335484
C13_PER_CARBON = 0.0107 / (1.0 - 0.0107)  # M+1 / M intensity per carbon atom

# name -> (ion mode, charge, m/z of the adduct ion minus the neutral mass M)
ADDUCTS = MappingProxyType({
    "[M+H]+": ("positive", 1, PROTON),
    "[M+Na]+": ("positive", 1, SODIUM - ELECTRON),
    "[M+NH4]+": ("positive", 1, 18.03437413 - ELECTRON),
    "[M-H]-": ("negative", -1, -PROTON),
})
POSITIVE_ADDUCT_WEIGHTS = MappingProxyType({"[M+H]+": 0.7, "[M+Na]+": 0.2, "[M+NH4]+": 0.1})
NEGATIVE_FRACTION = 0.2
COLLISION_ENERGIES = (10, 15, 20, 30, 40, 50, 60)
INSTRUMENT_TYPE = "LC-ESI-QTOF simulated"

# name -> (SMARTS of the group that gives it off, neutral mass)
NEUTRAL_LOSSES = MappingProxyType({
    "H2O": ("[OX2H1]", 18.01056468),
    "NH3": ("[NX3;H2;!$(NC=O)]", 17.02654911),
    "CO": ("[#6][CX3](=O)[#6,#1]", 27.99491462),
    "CO2": ("[CX3](=O)[OX2H1]", 43.98982924),
    "HCOOH": ("[CX3](=O)[OX2H1]", 46.00547931),
    "CH3OH": ("[CH3][OX2][#6]", 32.02621475),
    "HCl": ("[Cl]", 35.97667771),
    "HBr": ("[Br]", 79.92616269),
    "HF": ("[F]", 20.00623320),
    "HCN": ("[$([nX2]),$(C#N)]", 27.01089904),
    "C2H4": ("[CH2][CH3]", 28.03130013),
    "NO2": ("[N+](=O)[O-]", 45.99290356),
    "SO2": ("[SX4](=O)(=O)", 63.96190041),
})

# Which molecules of the NCI file qualify.
ALLOWED_ELEMENTS = ("B", "C", "N", "O", "F", "Si", "P", "S", "Cl", "Se", "Br", "I")
HEAVY_ATOM_RANGE = (5, 60)
MASS_RANGE = (80.0, 900.0)

# Library composition: groups of analogues (Morgan radius 2, a cheap stand-in for the
# label's path fingerprint) make pairs with high Tanimoto common enough.
ANALOGUE_THRESHOLD = 0.45
MAX_ANALOGUES = 15

# Fragmenter limits keep the cost per molecule bounded.
MAX_DOUBLE_CLEAVAGES = 16
MAX_RING_CLEAVAGES = 12
MIN_ION_MZ = 20.0
MERGE_TOLERANCE = 0.01
MAX_PEAKS = 120
RELATIVE_THRESHOLD = 0.005

# Random streams: (seed, stream, line) seeds one generator per purpose and molecule.
_SELECTION_STREAM = 1
_MOLECULE_STREAM = 2
_EDIT_STREAM = 3
_ORDER_STREAM = 4


def simulated_library_description():
    """Plain statement that the default library is simulated, and how to use real data.

    Returns
    -------
    str
        One paragraph for the README, ``competition.json`` and command output.

    Examples
    --------
    >>> simulated_library_description().startswith("SIMULATED")
    True
    """
    return SIMULATED_LIBRARY_DESCRIPTION


def nci_smiles_path():
    """Path of RDKit's NCI sample of 5,000 molecules (SMILES, then NCI number).

    Examples
    --------
    >>> nci_smiles_path().name
    'first_5K.smi'
    """
    from rdkit import RDConfig

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
    from rdkit import Chem
    from rdkit.Chem import GetPeriodicTable

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
    from rdkit import Chem, rdBase
    from rdkit.Chem import Descriptors
    from rdkit.Chem.MolStandardize import rdMolStandardize

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
    from rdkit import Chem, rdBase

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
    from rdkit import Chem, rdBase
    from rdkit.Chem import rdMolDescriptors

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
    from rdkit import Chem

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
    from rdkit import Chem

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
    from rdkit import Chem, rdBase

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
    from rdkit import Chem

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
    from rdkit import Chem, rdBase

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
    from rdkit import Chem

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


def hash_units(texts, n_values):
    """``n_values`` numbers in [0, 1) per text, the same on every machine and Python run.

    Each text's values are independent of each other and of every other text's, so
    one hash serves several purposes (hydrogen shift, intensity, ...).

    Examples
    --------
    >>> units = hash_units(["c1ccccc1", "CCO", "c1ccccc1"], 2)
    >>> units.shape, bool(np.all(units[0] == units[2])), bool(np.all((0 <= units) & (units < 1)))
    ((3, 2), True, True)
    """
    if n_values > 8:
        raise ValueError(f"hash_units gives at most 8 values per text, got n_values={n_values}")
    digests = b"".join(
        hashlib.blake2b(text.encode("utf-8"), digest_size=8 * n_values, person=b"specsim-kit").digest()
        for text in texts
    )
    words = np.frombuffer(digests, dtype=">u8").reshape(len(texts), n_values)
    # The top 53 bits fill a float64 mantissa exactly, so values stay below 1.
    return (words >> np.uint64(11)).astype(np.float64) / 2.0**53


def molecule_graph(mol):
    """What the fragmenter needs to know about ``mol``, read from RDKit once.

    Returns
    -------
    dict
        Per atom: ``mass`` (with its hydrogens, monoisotopic, Da), ``atomic_number``,
        ``aromatic``, ``neighbours`` and ``environment`` (element, aromaticity,
        hydrogens, ring, neighbours' elements); ``bonds`` (begin, end, order, in ring);
        ``carbon_mask`` (bit mask of the carbon atoms).

    Examples
    --------
    >>> from rdkit import Chem
    >>> graph = molecule_graph(Chem.MolFromSmiles("CO"))
    >>> round(float(graph["mass"].sum()), 4), graph["environment"]
    (32.0262, ['C3(O)', 'O1(C)'])
    """
    from rdkit import Chem

    table = Chem.GetPeriodicTable()
    atoms = list(mol.GetAtoms())
    masses, symbols, environment = [], [], []
    for atom in atoms:
        number, isotope = atom.GetAtomicNum(), atom.GetIsotope()
        if isotope:
            mass = table.GetMassForIsotope(number, isotope)
        else:
            mass = table.GetMostCommonIsotopeMass(number)
        masses.append(mass + atom.GetTotalNumHs() * HYDROGEN)
        symbols.append(atom.GetSymbol() + ("a" if atom.GetIsAromatic() else ""))
    neighbours = [[other.GetIdx() for other in atom.GetNeighbors()] for atom in atoms]
    for atom, symbol, near in zip(atoms, symbols, neighbours):
        ring = "R" if atom.IsInRing() else ""
        around = "".join(sorted(symbols[i] for i in near))
        environment.append(f"{symbol}{atom.GetTotalNumHs()}{ring}({around})")
    bonds = [
        (bond.GetBeginAtomIdx(), bond.GetEndAtomIdx(), bond.GetBondTypeAsDouble(), bond.IsInRing())
        for bond in mol.GetBonds()
    ]
    atomic_number = [atom.GetAtomicNum() for atom in atoms]
    return {
        "mass": np.asarray(masses, dtype=np.float64),
        "atomic_number": atomic_number,
        "aromatic": [atom.GetIsAromatic() for atom in atoms],
        "neighbours": neighbours,
        "environment": environment,
        "bonds": bonds,
        "carbon_mask": sum(1 << i for i, number in enumerate(atomic_number) if number == 6),
    }


def _component(neighbours, start, cut_edges):
    """Bit mask of the atoms reachable from ``start`` without crossing ``cut_edges``."""
    seen = 1 << start
    stack = [start]
    while stack:
        atom = stack.pop()
        for other in neighbours[atom]:
            if seen >> other & 1 or (atom, other) in cut_edges:
                continue
            seen |= 1 << other
            stack.append(other)
    return seen


def _bond_lability(graph, begin, end):
    """How readily a bond breaks in collision-induced dissociation (relative)."""
    factor = 1.0
    if graph["atomic_number"][begin] != 6 or graph["atomic_number"][end] != 6:
        factor *= 1.6  # bonds to heteroatoms (amides, esters, ethers) break first
    if graph["aromatic"][begin] and graph["aromatic"][end]:
        factor *= 0.5  # biaryl bonds hold
    return factor


def _cleavage_sides(graph):
    """``(bit mask of the begin atom's side, lability)`` of every acyclic single bond."""
    sides = []
    for begin, end, order, in_ring in graph["bonds"]:
        if in_ring or order != 1.0:
            continue
        mask = _component(graph["neighbours"], begin, {(begin, end), (end, begin)})
        sides.append((mask, _bond_lability(graph, begin, end)))
    return sides


def _middle_piece(full, mask_i, mask_j):
    """Atoms between two acyclic bonds, given one side of each.

    Each cut splits the molecule in two. The half of cut i that holds bond j and the
    half of cut j that holds bond i are the only pair of halves that together cover the
    molecule; their overlap is the piece between the two bonds.
    """
    for half_i in (mask_i, full & ~mask_i):
        for half_j in (mask_j, full & ~mask_j):
            if half_i | half_j == full:
                return half_i & half_j
    return 0


def acyclic_pieces(graph):
    """Pieces from cutting one acyclic single bond (both sides) or two (the piece between).

    Returns
    -------
    list of (int, float)
        ``(bit mask of the piece's atoms, weight)``; weights favour labile bonds and
        single cuts.

    Examples
    --------
    >>> from rdkit import Chem
    >>> pieces = acyclic_pieces(molecule_graph(Chem.MolFromSmiles("CCOC(=O)C")))
    >>> sorted({bin(mask).count("1") for mask, _ in pieces})
    [1, 2, 3, 4, 5]
    """
    full = (1 << len(graph["mass"])) - 1
    sides = _cleavage_sides(graph)
    pieces = []
    for mask, lability in sides:
        pieces += [(mask, lability), (full & ~mask, lability)]
    doubles = []
    for i, (mask_i, lability_i) in enumerate(sides):
        for mask_j, lability_j in sides[i + 1:]:
            doubles.append((_middle_piece(full, mask_i, mask_j), 0.35 * lability_i * lability_j))
    # Most labile pairs first; the stable sort keeps ties in bond order.
    doubles.sort(key=lambda item: -item[1])
    return pieces + doubles[:MAX_DOUBLE_CLEAVAGES]


def ring_pieces(graph, ring_bonds):
    """Pieces freed by cutting two non-adjacent bonds of one ring (the smaller side).

    Parameters
    ----------
    graph : dict
        Output of :func:`molecule_graph`.
    ring_bonds : sequence of sequence of int
        Bond indices of each ring (``mol.GetRingInfo().BondRings()``).

    Examples
    --------
    >>> from rdkit import Chem
    >>> mol = Chem.MolFromSmiles("c1ccc2ccccc2c1")
    >>> pieces = ring_pieces(molecule_graph(mol), mol.GetRingInfo().BondRings())
    >>> sorted({bin(mask).count("1") for mask, _ in pieces})
    [2, 3, 4]
    """
    full = (1 << len(graph["mass"])) - 1
    pieces, seen = [], set()
    for ring in ring_bonds:
        for i, bond_i in enumerate(ring):
            for bond_j in ring[i + 2:]:
                (a, b), (c, d) = graph["bonds"][bond_i][:2], graph["bonds"][bond_j][:2]
                if len({a, b, c, d}) < 4:
                    continue
                part = _component(graph["neighbours"], a, {(a, b), (b, a), (c, d), (d, c)})
                if part == full:
                    continue
                piece = min(part, full & ~part, key=int.bit_count)
                if piece not in seen:
                    seen.add(piece)
                    pieces.append((piece, 0.4))
                if len(pieces) >= MAX_RING_CLEAVAGES:
                    return pieces
    return pieces


def _cut_site(graph, mask):
    """The bonds that free a piece, seen from inside it: atoms, bond orders, neighbours."""
    cuts = []
    for begin, end, order, _ in graph["bonds"]:
        inside_begin, inside_end = mask >> begin & 1, mask >> end & 1
        if inside_begin != inside_end:
            inside, outside = (begin, end) if inside_begin else (end, begin)
            cuts.append(f"{graph['environment'][inside]}~{order:g}~{graph['environment'][outside]}")
    return ";".join(sorted(cuts))


def fragment_table(mol, graph=None):
    """Every candidate fragment of ``mol`` once, with what its peaks need.

    Parameters
    ----------
    mol : rdkit.Chem.Mol
    graph : dict, optional
        :func:`molecule_graph` of ``mol`` (computed here when not given).

    Returns
    -------
    dict
        ``keys`` (canonical SMILES with explicit hydrogens), ``sites`` (the cut bonds,
        see :func:`_cut_site`), and numpy arrays ``mass`` (neutral sum of the piece's
        atoms, Da), ``carbons`` and ``weight``. Pieces of one heavy atom are left out.

    Examples
    --------
    >>> from rdkit import Chem
    >>> table = fragment_table(Chem.MolFromSmiles("CCOC(=O)c1ccccc1"))
    >>> "[O]=[C][c]1[cH][cH][cH][cH][cH]1" in table["keys"]   # benzoyl, C7H5O
    True
    """
    from rdkit import Chem

    graph = graph or molecule_graph(mol)
    n_atoms = len(graph["mass"])
    full = (1 << n_atoms) - 1
    weights = {}
    for mask, weight in acyclic_pieces(graph) + ring_pieces(graph, mol.GetRingInfo().BondRings()):
        if mask.bit_count() >= 2 and mask != full:
            weights[mask] = max(weight, weights.get(mask, 0.0))
    rows, by_key = [], {}
    for mask in sorted(weights):
        atoms = [i for i in range(n_atoms) if mask >> i & 1]
        key = Chem.MolFragmentToSmiles(mol, atomsToUse=atoms, canonical=True, allHsExplicit=True)
        if key in by_key:
            # Symmetric molecules free one fragment several times; it counts once.
            row = rows[by_key[key]]
            row[4] = max(row[4], weights[mask])
            continue
        by_key[key] = len(rows)
        carbons = (mask & graph["carbon_mask"]).bit_count()
        mass = float(graph["mass"][atoms].sum())
        rows.append([key, _cut_site(graph, mask), mass, carbons, weights[mask]])
    columns = list(zip(*rows)) if rows else [(), (), (), (), ()]
    return {
        "keys": list(columns[0]),
        "sites": list(columns[1]),
        "mass": np.asarray(columns[2], dtype=np.float64),
        "carbons": np.asarray(columns[3], dtype=np.float64),
        "weight": np.asarray(columns[4], dtype=np.float64),
    }


def compile_loss_patterns():
    """SMARTS of :data:`NEUTRAL_LOSSES`, compiled once per library.

    Losses from the same group share one compiled pattern, which is how
    :func:`neutral_losses` tells that they come from the same group.
    """
    from rdkit import Chem

    compiled = {smarts: Chem.MolFromSmarts(smarts) for smarts, _ in NEUTRAL_LOSSES.values()}
    return {name: (compiled[smarts], mass) for name, (smarts, mass) in NEUTRAL_LOSSES.items()}


def neutral_losses(mol, patterns):
    """Neutral losses available to ``mol``: single losses and pairs of them.

    Returns
    -------
    names : list of str
    masses : numpy.ndarray

    Examples
    --------
    >>> from rdkit import Chem
    >>> names, _ = neutral_losses(Chem.MolFromSmiles("OCCc1ccccc1C(=O)O"), compile_loss_patterns())
    >>> "H2O" in names and "CO2" in names and "H2O+H2O" in names   # two OH groups
    True
    >>> names, _ = neutral_losses(Chem.MolFromSmiles("CCc1ccccc1C(=O)O"), compile_loss_patterns())
    >>> "H2O+H2O" in names, "CO2+HCOOH" in names, "H2O+CO2" in names
    (False, False, True)
    """
    found = {}  # name -> (mass, SMARTS pattern, number of groups)
    for name, (pattern, mass) in patterns.items():
        groups = len(mol.GetSubstructMatches(pattern, maxMatches=2))
        if groups:
            found[name] = (mass, pattern, groups)
    names = list(found)
    losses = [(name, found[name][0]) for name in names]
    for i, name_a in enumerate(names):
        for name_b in names[i:]:
            (mass_a, pattern_a, groups_a), (mass_b, pattern_b, _) = found[name_a], found[name_b]
            # Two losses from one group (H2O twice from one OH, CO2 and HCOOH from one
            # acid) need a second such group.
            if pattern_a is not pattern_b or groups_a > 1:
                losses.append((f"{name_a}+{name_b}", mass_a + mass_b))
    return [name for name, _ in losses], np.asarray([mass for _, mass in losses], dtype=np.float64)


def _ion_mz(mass, shift_unit, ionmode):
    """m/z of each fragment as a singly charged ion.

    The hydrogen shift (0, +1 or -1) comes from a hash of the cut bonds, so a piece
    freed by the same kind of cut shifts the same way in every molecule.
    """
    shift = np.where(shift_unit < 0.5, 0.0, np.where(shift_unit < 0.8, 1.0, -1.0))
    if ionmode == "positive":
        return mass + shift * HYDROGEN - ELECTRON
    return mass - shift * HYDROGEN + ELECTRON


def _skewed(unit):
    """Relative intensity from a uniform hash value: a few strong ions, many weak ones."""
    return 0.03 + unit**2


def describe_molecule(mol, loss_patterns):
    """Everything the spectra of ``mol`` share: mass, fragment ions, neutral losses.

    A fragment's intensity is (how the cut goes) x (what the piece is) x (how labile
    the cut bonds are): hashes of its cut site and of its SMILES, per ion mode.

    Examples
    --------
    >>> from rdkit import Chem
    >>> info = describe_molecule(Chem.MolFromSmiles("CCOC(=O)c1ccccc1"), compile_loss_patterns())
    >>> round(info["mass"], 4), info["ions"]["positive"]["mz"].size > 3
    (150.0681, True)
    """
    graph = molecule_graph(mol)
    table = fragment_table(mol, graph)
    loss_names, loss_mass = neutral_losses(mol, loss_patterns)
    # Columns: shift +, shift -, cut intensity +, cut intensity -, keeps sodium.
    site = hash_units(table["sites"], 5)
    piece = hash_units(table["keys"], 2)
    loss = hash_units(loss_names, 2)
    ions = {}
    for column, ionmode in enumerate(("positive", "negative")):
        ions[ionmode] = {
            "mz": _ion_mz(table["mass"], site[:, column], ionmode),
            "intensity": _skewed(site[:, 2 + column]) * (0.5 + piece[:, column]) * table["weight"],
            "loss_intensity": 0.4 * _skewed(loss[:, column]),
        }
    return {
        "mass": float(graph["mass"].sum()),
        "n_carbon": graph["carbon_mask"].bit_count(),
        "carbons": table["carbons"],
        # Whether the sodium of [M+Na]+ stays on the fragment depends on the cut.
        "keeps_sodium": site[:, 4] < 0.5,
        "ions": ions,
        "loss_mass": loss_mass,
    }


def _energy_profile(relative_mz, collision_energy):
    """How strongly each ion shows at a collision energy, from its m/z over the precursor's.

    Low energies favour ions near the precursor, high energies small ions.
    """
    centre = np.clip(1.0 - collision_energy / 70.0, 0.15, 0.9)
    return np.exp(-0.5 * ((relative_mz - centre) / 0.4) ** 2)


def _precursor_share(collision_energy, adduct):
    """Intensity of the precursor relative to the strongest fragment."""
    share = 1.5 * np.exp(-collision_energy / 12.0)
    return share * (2.0 if adduct == "[M+Na]+" else 1.0)


def _merge_close(mz, intensity, tolerance=MERGE_TOLERANCE):
    """Ions closer than ``tolerance`` show as one peak (summed, weighted mean m/z)."""
    order = np.argsort(mz, kind="stable")
    mz, intensity = mz[order], intensity[order]
    group = np.concatenate([[0], np.cumsum(np.diff(mz) > tolerance)])
    total = np.bincount(group, weights=intensity)
    centre = np.bincount(group, weights=mz * intensity) / np.where(total > 0, total, 1.0)
    first = np.concatenate([[True], np.diff(group) > 0])
    return np.where(total > 0, centre, mz[first]), total


def _add_isotopes(mz, intensity, carbons):
    """Append the M+1 (13C) peak of each monoisotopic ion."""
    return (
        np.concatenate([mz, mz + C13_SHIFT]),
        np.concatenate([intensity, intensity * C13_PER_CARBON * carbons]),
    )


def _add_noise(mz, intensity, precursor_mz, rng):
    """Jitter every intensity, move every m/z by a few ppm, and add a few noise peaks."""
    intensity = intensity * rng.lognormal(0.0, 0.25, size=intensity.size)
    mz = mz * (1.0 + rng.normal(0.0, 3e-6, size=mz.size))
    n_noise = int(rng.integers(2, 9))
    noise_mz = rng.uniform(max(MIN_ION_MZ, 0.1 * precursor_mz), precursor_mz, size=n_noise)
    noise_intensity = intensity.max() * rng.uniform(0.005, 0.03, size=n_noise)
    return np.concatenate([mz, noise_mz]), np.concatenate([intensity, noise_intensity])


def _finish_peaks(mz, intensity):
    """Scale to a maximum of 1000, drop weak and low peaks, keep the strongest, sort."""
    intensity = intensity / intensity.max() * 1000.0
    keep = (mz >= MIN_ION_MZ) & (intensity >= RELATIVE_THRESHOLD * 1000.0)
    mz, intensity = mz[keep], intensity[keep]
    if mz.size > MAX_PEAKS:
        strongest = np.argsort(-intensity, kind="stable")[:MAX_PEAKS]
        mz, intensity = mz[strongest], intensity[strongest]
    # Rounding keeps saved files short; a noise peak that rounds onto an ion adds to it.
    rounded, inverse = np.unique(np.round(mz, 5), return_inverse=True)
    return rounded.astype(np.float64), np.round(np.bincount(inverse, weights=intensity), 2)


def simulate_peaks(info, adduct, collision_energy, rng):
    """Peaks of one spectrum of a molecule described by :func:`describe_molecule`.

    Parameters
    ----------
    info : dict
        Output of :func:`describe_molecule`.
    adduct : str
        A key of :data:`ADDUCTS`.
    collision_energy : float
        In eV.
    rng : numpy.random.Generator
        Draws the noise peaks, jitter and m/z errors.

    Returns
    -------
    mz, intensities : numpy.ndarray
        float64, m/z strictly ascending, intensities scaled to a maximum of 1000.
    precursor_mz : float

    Examples
    --------
    >>> from rdkit import Chem
    >>> info = describe_molecule(Chem.MolFromSmiles("CCOC(=O)c1ccccc1"), compile_loss_patterns())
    >>> (mz, intensity), precursor = simulate_peaks(info, "[M+H]+", 20.0, np.random.default_rng(0))
    >>> round(precursor, 4), bool(np.all(np.diff(mz) > 0)), float(intensity.max())
    (151.0754, True, 1000.0)
    """
    ionmode, _, adduct_shift = ADDUCTS[adduct]
    precursor_mz = info["mass"] + adduct_shift
    ions = info["ions"][ionmode]
    fragment_mz, fragment_intensity = ions["mz"], ions["intensity"]
    if adduct == "[M+Na]+":
        # Sodiated ions fragment poorly; fragments that keep the sodium move with it.
        fragment_mz = np.where(info["keeps_sodium"], fragment_mz + SODIUM - HYDROGEN, fragment_mz)
        fragment_intensity = 0.6 * fragment_intensity
    mz = np.concatenate([fragment_mz, precursor_mz - info["loss_mass"]])
    intensity = np.concatenate([fragment_intensity, ions["loss_intensity"]])
    carbons = np.concatenate([info["carbons"], np.full(info["loss_mass"].size, info["n_carbon"])])
    intensity = intensity * _energy_profile(mz / precursor_mz, collision_energy)
    strongest = max(intensity.max(initial=0.0), 0.05)
    # The precursor, and for ammonium adducts the protonated molecule they turn into.
    extra_mz = [precursor_mz]
    extra_intensity = [strongest * _precursor_share(collision_energy, adduct)]
    if adduct == "[M+NH4]+":
        extra_mz.append(info["mass"] + PROTON)
        extra_intensity.append(0.8 * strongest)
    mz = np.concatenate([mz, extra_mz])
    intensity = np.concatenate([intensity, extra_intensity])
    carbons = np.concatenate([carbons, np.full(len(extra_mz), info["n_carbon"])])
    mz, intensity = _add_isotopes(mz, intensity, carbons)
    mz, intensity = _merge_close(mz, intensity)
    mz, intensity = _add_noise(mz, intensity, precursor_mz, rng)
    return _finish_peaks(mz, intensity), precursor_mz


def choose_acquisitions(n_spectra, rng):
    """Adduct and collision energy of each spectrum of one molecule.

    About 80% of spectra are positive mode; energies differ within a molecule as long
    as there are enough of them.

    Examples
    --------
    >>> plan = choose_acquisitions(3, np.random.default_rng(0))
    >>> len(plan), all(adduct in ADDUCTS for adduct, _ in plan)
    (3, True)
    """
    repeat = n_spectra > len(COLLISION_ENERGIES)
    energies = rng.choice(COLLISION_ENERGIES, size=n_spectra, replace=repeat)
    positive = list(POSITIVE_ADDUCT_WEIGHTS)
    weights = np.array(list(POSITIVE_ADDUCT_WEIGHTS.values()))
    plan = []
    for energy in energies:
        if rng.random() < NEGATIVE_FRACTION:
            adduct = "[M-H]-"
        else:
            adduct = positive[int(rng.choice(len(positive), p=weights / weights.sum()))]
        plan.append((adduct, float(energy)))
    return plan


def molecule_rng(seed, line_index, variant=0):
    """The random generator of one molecule, independent of every other molecule's.

    ``line_index`` is the line of the shipped molecule it was edited from, ``variant``
    its place among its siblings.

    Examples
    --------
    >>> molecule_rng(0, 5).random() == molecule_rng(0, 5).random() != molecule_rng(0, 5, 1).random()
    True
    """
    return np.random.default_rng((seed, _MOLECULE_STREAM, line_index, variant))


def simulate_molecule(mol, name, structure, spectra_range, rng, loss_patterns):
    """Peaks and metadata of every spectrum of one molecule (no ``spectrum_id`` yet).

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray, dict)
    """
    info = describe_molecule(mol, loss_patterns)
    n_spectra = int(rng.integers(spectra_range[0], spectra_range[1] + 1))
    spectra = []
    for adduct, energy in choose_acquisitions(n_spectra, rng):
        (mz, intensity), precursor_mz = simulate_peaks(info, adduct, energy, rng)
        ionmode, charge, _ = ADDUCTS[adduct]
        metadata = {
            "compound_name": name,
            **structure,
            "precursor_mz": round(float(precursor_mz), 5),
            "charge": charge,
            "ionmode": ionmode,
            "adduct": adduct,
            "collision_energy": f"{energy:g} eV",  # as MassBank writes it; survives a save
            "instrument_type": INSTRUMENT_TYPE,
            "license": "CC0",
            "comment": "simulated spectrum (in-silico fragmenter, not a measurement)",
        }
        spectra.append((mz, intensity, metadata))
    return spectra


def usable_molecules(records, progress=False):
    """Molecules of ``records`` that :func:`prepare_molecule` accepts, in file order.

    Returns
    -------
    list of (int, str, rdkit.Chem.Mol)
        ``(line index, name, molecule)``.
    """
    from kit.progress import progress as progress_bar

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
    from rdkit import DataStructs
    from rdkit.Chem import rdFingerprintGenerator

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


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_arguments(n_molecules, spectra_per_molecule, seed):
    """Validate the arguments of :func:`simulate_library`; return ``(low, high)``."""
    if not _is_int(n_molecules):
        raise TypeError(
            f"n_molecules must be an integer, got {type(n_molecules).__name__} {n_molecules!r}"
        )
    if n_molecules <= 0:
        raise ValueError(f"n_molecules must be a positive integer, got {n_molecules}")
    if not _is_int(seed):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    spectra = (spectra_per_molecule,) * 2 if _is_int(spectra_per_molecule) else spectra_per_molecule
    if not isinstance(spectra, (tuple, list)) or len(spectra) != 2 or not all(map(_is_int, spectra)):
        raise TypeError(
            "spectra_per_molecule must be an integer or a (low, high) pair of integers, "
            f"got {spectra_per_molecule!r}"
        )
    low, high = int(spectra[0]), int(spectra[1])
    if not 1 <= low <= high:
        raise ValueError(f"spectra_per_molecule must satisfy 1 <= low <= high, got ({low}, {high})")
    return low, high


def simulate_library(n_molecules=2000, spectra_per_molecule=(2, 5), seed=0, progress=True):
    """Simulate the embedded default library: MS/MS spectra of edited NCI molecules.

    The spectra are SIMULATED (see :data:`SIMULATED_LIBRARY_DESCRIPTION`): an in-silico
    fragmenter, not measurements. The molecules are seeded edits (:func:`edited_family`)
    of molecules drawn from RDKit's NCI sample in groups of close analogues, so that
    every Tanimoto bin of a competition built from the library gets pairs, and none of
    them is a shipped molecule.

    Parameters
    ----------
    n_molecules : int, default 2000
        How many distinct molecules (first InChIKey block); at most about 9,000, the
        families the usable molecules of the NCI sample give.
    spectra_per_molecule : int or (int, int), default (2, 5)
        Spectra per molecule, drawn uniformly from ``low..high`` inclusive.
    seed : int, default 0
        Seeds the choice of molecules, their edits and every other random step; the same
        seed gives the same molecules and spectra, byte for byte once saved. Keep it
        secret: whoever knows it can rebuild the library.
    progress : bool, default True
        Show progress bars on stderr.

    Returns
    -------
    list of matchms.Spectrum
        Grouped by molecule in an order drawn from ``seed``, ``spectrum_id``
        ``SIM000001`` onwards.
        Metadata: ``spectrum_id``, ``compound_name``, ``smiles``, ``inchi``,
        ``inchikey``, ``formula``, ``precursor_mz``, ``charge``, ``ionmode``, ``adduct``,
        ``collision_energy`` (text such as ``"20 eV"``, as in MassBank),
        ``instrument_type``, ``license`` and ``comment``.

    Raises
    ------
    TypeError
        When an argument has the wrong type.
    ValueError
        When ``n_molecules`` is not positive or exceeds the usable molecules,
        ``spectra_per_molecule`` is not ``1 <= low <= high``, or ``seed`` is negative.

    Examples
    --------
    >>> spectra = simulate_library(n_molecules=20, seed=1, progress=False)
    >>> spectra[0].get("spectrum_id"), spectra[0].get("license")
    ('SIM000001', 'CC0')
    >>> len({s.get("inchikey")[:14] for s in spectra})
    20
    """
    from kit.thirdparty import import_matchms

    import_matchms()
    from matchms import Spectrum
    from kit.progress import progress as progress_bar

    spectra_range = _check_arguments(n_molecules, spectra_per_molecule, seed)
    usable, shipped = shipped_molecules()
    if n_molecules > MAX_VARIANTS * len(usable):
        raise ValueError(
            f"n_molecules={n_molecules} exceeds what {len(usable)} usable molecules of RDKit's NCI "
            f"sample can give (at most {MAX_VARIANTS} each); ask for fewer, or use a real library "
            "(`kit prepare --library massbank` or `--library path/to/library.mgf`)"
        )
    chosen = choose_molecules(usable, n_molecules, seed, shipped)
    loss_patterns = compile_loss_patterns()
    spectra = []
    for line_index, variant, mol, structure in progress_bar(
        chosen, desc="simulating spectra", unit="mol", disable=not progress, file=sys.stderr
    ):
        rng = molecule_rng(seed, line_index, variant)
        name = f"simulated {structure['inchikey'][:14]}"
        peaks = simulate_molecule(mol, name, structure, spectra_range, rng, loss_patterns)
        for mz, intensity, metadata in peaks:
            metadata = {"spectrum_id": f"SIM{len(spectra) + 1:06d}", **metadata}
            # Keys and values are already in matchms' harmonised form; skipping its
            # harmonisation gives the same spectrum in a fraction of the time.
            spectra.append(
                Spectrum(mz=mz, intensities=intensity, metadata=metadata, metadata_harmonization=False)
            )
    return spectra
