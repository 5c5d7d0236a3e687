"""The embedded default library: simulated MS/MS spectra of molecules that ship with RDKit.

``kit prepare`` without ``--library`` builds the ``practice`` competition from this
library, so the kit works offline and on a fresh machine. The molecules come from
RDKit's NCI sample (``RDConfig.RDDataDir/NCI/first_5K.smi``); their spectra come from a
small in-silico fragmenter in this module:

* every acyclic bond is cut once (both pieces may carry the charge), some pairs of
  acyclic bonds are cut together (the middle piece), and pairs of bonds in one ring
  are cut where that frees a piece (ring cleavage);
* the precursor loses small neutral molecules (H2O, NH3, CO, CO2, HCOOH, CH3OH, HCl,
  HCN ...) when it holds the group they come from;
* adducts ``[M+H]+``, ``[M+Na]+``, ``[M+NH4]+`` and ``[M-H]-``, several collision
  energies per molecule, M+1 isotope peaks, a few noise peaks and intensity jitter.

Structure shows in the spectra because a fragment's base intensity and hydrogen shift
are a hash of its canonical SMILES: the same substructure gives the same peak, with
the same relative intensity, in every molecule that contains it. The collision energy
moves intensity from the precursor and large fragments toward small fragments.

Every random step draws from :func:`numpy.random.default_rng` seeded with
``(seed, stream, molecule line)``, so a molecule's spectra do not depend on which other
molecules were chosen or in what order they were simulated.
"""
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

SIMULATED_LIBRARY_DESCRIPTION = (
    "SIMULATED library: these spectra come from the kit's own in-silico fragmenter "
    "(acyclic and ring bond cleavages, neutral losses, adducts, collision energies, "
    "noise), applied to molecules from RDKit's NCI sample; they are not real "
    "measurements. Scores on it show how a method behaves, not how it does on real "
    "MS/MS data. For real spectra use `kit prepare --library massbank` (MassBank) or "
    "`kit prepare --library path/to/library.mgf` (MGF, MSP, mzML or JSON, gzip allowed)."
)

# Monoisotopic masses (Da).
ELECTRON = 0.00054858
PROTON = 1.00727646
HYDROGEN = 1.00782503
C13_SHIFT = 1.00335484

# name -> (ion mode, charge, m/z of the adduct ion minus the neutral mass M)
ADDUCTS = {
    "[M+H]+": ("positive", 1, PROTON),
    "[M+Na]+": ("positive", 1, 22.98976928 - ELECTRON),
    "[M+NH4]+": ("positive", 1, 18.03437413 - ELECTRON),
    "[M-H]-": ("negative", -1, -PROTON),
}
POSITIVE_ADDUCT_WEIGHTS = {"[M+H]+": 0.7, "[M+Na]+": 0.2, "[M+NH4]+": 0.1}
NEGATIVE_FRACTION = 0.2
COLLISION_ENERGIES = (10, 15, 20, 30, 40, 50, 60)

# name -> (SMARTS of the group that gives it off, neutral mass)
NEUTRAL_LOSSES = {
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
}

# Which molecules from the NCI file qualify.
ALLOWED_ELEMENTS = frozenset({"C", "H", "N", "O", "S", "P", "F", "Cl", "Br", "I", "B", "Si", "Se"})
HEAVY_ATOM_RANGE = (5, 60)
MASS_RANGE = (80.0, 900.0)

# Library composition: analogue groups make pairs with high Tanimoto common enough.
ANALOGUE_THRESHOLD = 0.55
MAX_ANALOGUES = 6

# Fragmenter limits keep the cost per molecule bounded.
MAX_DOUBLE_CLEAVAGES = 30
MAX_RING_CLEAVAGES = 24
MIN_ION_MZ = 20.0
MAX_PEAKS = 120
RELATIVE_THRESHOLD = 0.005

# Random streams: (seed, stream, line) seeds one generator per purpose and molecule.
_SELECTION_STREAM = 1
_MOLECULE_STREAM = 2

_HASH_SCALE = float(2**64)


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

    Lines that are blank or start with ``#`` are skipped; the line index still counts
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


def prepare_molecule(smiles):
    """Parse, keep the largest fragment, neutralise, and check the size limits.

    Parameters
    ----------
    smiles : str

    Returns
    -------
    rdkit.Chem.Mol or None
        The molecule re-read from its canonical SMILES, or None when it does not parse,
        holds an element outside :data:`ALLOWED_ELEMENTS`, keeps a net charge, or falls
        outside :data:`HEAVY_ATOM_RANGE` or :data:`MASS_RANGE`.

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

    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            return None
        pieces = Chem.GetMolFrags(mol, asMols=True)
        mol = max(pieces, key=lambda piece: piece.GetNumHeavyAtoms())
        if any(atom.GetFormalCharge() for atom in mol.GetAtoms()):
            mol = rdMolStandardize.Uncharger().uncharge(mol)
        if Chem.GetFormalCharge(mol) != 0:
            return None
        if any(atom.GetSymbol() not in ALLOWED_ELEMENTS for atom in mol.GetAtoms()):
            return None
        if not any(atom.GetAtomicNum() == 6 for atom in mol.GetAtoms()):
            return None
        # Re-reading the canonical SMILES makes every later step see what a user sees.
        mol = Chem.MolFromSmiles(Chem.MolToSmiles(mol))
    if mol is None:
        return None
    if not HEAVY_ATOM_RANGE[0] <= mol.GetNumHeavyAtoms() <= HEAVY_ATOM_RANGE[1]:
        return None
    if not MASS_RANGE[0] <= Descriptors.ExactMolWt(mol) <= MASS_RANGE[1]:
        return None
    return mol


def structure_metadata(mol):
    """Canonical SMILES, InChI, InChIKey and formula of ``mol``.

    Examples
    --------
    >>> from rdkit import Chem
    >>> structure_metadata(Chem.MolFromSmiles("OC(=O)c1ccccc1"))["formula"]
    'C7H6O2'
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


def hash_unit(*parts):
    """Map strings to a float in [0, 1), the same on every machine and Python run.

    Examples
    --------
    >>> hash_unit("c1ccccc1") == hash_unit("c1ccccc1")
    True
    >>> 0.0 <= hash_unit("CCO", "positive") < 1.0
    True
    """
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _HASH_SCALE


def atom_masses(mol):
    """Monoisotopic mass of each heavy atom plus its hydrogens (Da).

    Their sum is the molecule's monoisotopic mass.

    Examples
    --------
    >>> from rdkit import Chem
    >>> round(float(atom_masses(Chem.MolFromSmiles("CO")).sum()), 4)
    32.0262
    """
    from rdkit import Chem

    table = Chem.GetPeriodicTable()
    masses = []
    for atom in mol.GetAtoms():
        number, isotope = atom.GetAtomicNum(), atom.GetIsotope()
        mass = table.GetMassForIsotope(number, isotope) if isotope else table.GetMostCommonIsotopeMass(number)
        masses.append(mass + atom.GetTotalNumHs() * HYDROGEN)
    return np.asarray(masses, dtype=np.float64)


def _adjacency(mol):
    return [[neighbour.GetIdx() for neighbour in atom.GetNeighbors()] for atom in mol.GetAtoms()]


def _component(adjacency, start, cut_edges):
    """Bit mask of the atoms reachable from ``start`` without crossing ``cut_edges``."""
    seen = 1 << start
    stack = [start]
    while stack:
        atom = stack.pop()
        for neighbour in adjacency[atom]:
            if seen >> neighbour & 1 or (atom, neighbour) in cut_edges:
                continue
            seen |= 1 << neighbour
            stack.append(neighbour)
    return seen


def _bond_lability(bond):
    """How readily a bond breaks in collision-induced dissociation (relative)."""
    begin, end = bond.GetBeginAtom(), bond.GetEndAtom()
    factor = 1.0
    if begin.GetAtomicNum() != 6 or end.GetAtomicNum() != 6:
        factor *= 1.6  # C-N, C-O, C-S bonds (amides, esters, ethers) break first
    if begin.GetIsAromatic() and end.GetIsAromatic():
        factor *= 0.5  # biaryl bonds hold
    if bond.GetBondTypeAsDouble() > 1.0:
        factor *= 0.3
    return factor


def cleavage_sides(mol):
    """One side of every acyclic bond, with the bond's lability.

    Returns
    -------
    list of (int, int, float)
        ``(bond index, bit mask of the atoms on the begin atom's side, lability)``.
    """
    adjacency = _adjacency(mol)
    sides = []
    for bond in mol.GetBonds():
        if bond.IsInRing():
            continue
        begin, end = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        mask = _component(adjacency, begin, {(begin, end), (end, begin)})
        sides.append((bond.GetIdx(), mask, _bond_lability(bond)))
    return sides


def acyclic_fragments(mol):
    """Pieces from cutting one acyclic bond (both sides) or two (the middle piece).

    Returns
    -------
    list of (int, float)
        ``(bit mask of the piece's atoms, weight)``; weights favour labile bonds and
        single cuts.
    """
    full = (1 << mol.GetNumAtoms()) - 1
    sides = cleavage_sides(mol)
    pieces = []
    for _, mask, lability in sides:
        pieces.append((mask, lability))
        pieces.append((full & ~mask, lability))
    doubles = []
    for i, (_, mask_i, lab_i) in enumerate(sides):
        for _, mask_j, lab_j in sides[i + 1:]:
            middle = _middle_piece(full, mask_i, mask_j)
            if middle:
                doubles.append((middle, 0.35 * lab_i * lab_j))
    doubles.sort(key=lambda item: -item[1])
    return pieces + doubles[:MAX_DOUBLE_CLEAVAGES]


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


def ring_fragments(mol):
    """Pieces freed by cutting two non-adjacent bonds of the same ring.

    Returns
    -------
    list of (int, float)
        ``(bit mask of the piece's atoms, weight)``; the smaller piece of each split.
    """
    ring_bonds = mol.GetRingInfo().BondRings()
    if not ring_bonds:
        return []
    adjacency = _adjacency(mol)
    full = (1 << mol.GetNumAtoms()) - 1
    ends = [(bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()) for bond in mol.GetBonds()]
    pieces, seen = [], set()
    for ring in ring_bonds:
        for i, bond_i in enumerate(ring):
            for bond_j in ring[i + 2:]:
                (a, b), (c, d) = ends[bond_i], ends[bond_j]
                if len({a, b, c, d}) < 4:
                    continue
                cut = {(a, b), (b, a), (c, d), (d, c)}
                part = _component(adjacency, a, cut)
                if part == full:
                    continue
                piece = min(part, full & ~part, key=int.bit_count)
                if piece not in seen:
                    seen.add(piece)
                    pieces.append((piece, 0.4))
                if len(pieces) >= MAX_RING_CLEAVAGES:
                    return pieces
    return pieces


def fragment_table(mol):
    """Every candidate fragment of ``mol`` once, with what its peaks need.

    Returns
    -------
    dict
        ``keys`` (canonical SMILES with explicit hydrogens, one per fragment), and
        numpy arrays ``mass`` (neutral sum of the piece's atoms, Da), ``carbons``
        and ``weight``. Pieces with fewer than two heavy atoms are left out.

    Examples
    --------
    >>> from rdkit import Chem
    >>> table = fragment_table(Chem.MolFromSmiles("CCOC(=O)c1ccccc1"))
    >>> "[cH]1[cH][cH]c([CH]=O)[cH][cH]1" in table["keys"] or len(table["keys"]) > 3
    True
    """
    from rdkit import Chem

    masses = atom_masses(mol)
    n_atoms = mol.GetNumAtoms()
    carbon_mask = sum(1 << atom.GetIdx() for atom in mol.GetAtoms() if atom.GetAtomicNum() == 6)
    full = (1 << n_atoms) - 1
    best = {}
    for mask, weight in acyclic_fragments(mol) + ring_fragments(mol):
        if mask.bit_count() < 2 or mask == full:
            continue
        if mask in best:
            best[mask] = max(best[mask], weight)
        else:
            best[mask] = weight
    keys, mass, carbons, weights, seen_keys = [], [], [], [], {}
    for mask in sorted(best):
        atoms = [i for i in range(n_atoms) if mask >> i & 1]
        key = Chem.MolFragmentToSmiles(mol, atomsToUse=atoms, canonical=True, allHsExplicit=True)
        if key in seen_keys:
            # Symmetric molecules give one fragment several times; it counts once.
            position = seen_keys[key]
            weights[position] = max(weights[position], best[mask])
            continue
        seen_keys[key] = len(keys)
        keys.append(key)
        mass.append(float(masses[atoms].sum()))
        carbons.append((mask & carbon_mask).bit_count())
        weights.append(best[mask])
    return {
        "keys": keys,
        "mass": np.asarray(mass, dtype=np.float64),
        "carbons": np.asarray(carbons, dtype=np.float64),
        "weight": np.asarray(weights, dtype=np.float64),
    }


def compile_loss_patterns():
    """SMARTS of :data:`NEUTRAL_LOSSES`, compiled once per library."""
    from rdkit import Chem

    return {name: (Chem.MolFromSmarts(smarts), mass) for name, (smarts, mass) in NEUTRAL_LOSSES.items()}


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
    >>> "H2O" in names and "CO2" in names and "H2O+CO" in names
    True
    """
    single = [(name, mass) for name, (pattern, mass) in patterns.items() if mol.HasSubstructMatch(pattern)]
    pairs = [
        (f"{a}+{b}", mass_a + mass_b)
        for i, (a, mass_a) in enumerate(single)
        for b, mass_b in single[i:]
        if a != b or a == "H2O"
    ]
    if any(name == "H2O" for name, _ in single) and any(name == "CO" for name, _ in single):
        pairs.append(("H2O+CO", NEUTRAL_LOSSES["H2O"][1] + NEUTRAL_LOSSES["CO"][1]))
    names = [name for name, _ in single + pairs]
    return names, np.asarray([mass for _, mass in single + pairs], dtype=np.float64)


def fragment_ion_mz(table, ionmode):
    """m/z of each fragment as a singly charged ion, with a hashed hydrogen shift.

    The shift (-1, 0 or +1 hydrogen) depends only on the fragment and the ion mode,
    so a substructure gives the same peak in every molecule that holds it.
    """
    units = np.array([hash_unit("h", key, ionmode) for key in table["keys"]], dtype=np.float64)
    shift = np.where(units < 0.5, 0.0, np.where(units < 0.8, 1.0, -1.0))
    if ionmode == "positive":
        return table["mass"] + shift * HYDROGEN - ELECTRON
    return table["mass"] - shift * HYDROGEN + ELECTRON


def base_intensities(keys, ionmode):
    """Relative intensity of each fragment or loss, from a hash of its name.

    Skewed toward low values, as in real spectra where a few ions dominate.
    """
    units = np.array([hash_unit("i", key, ionmode) for key in keys], dtype=np.float64)
    return 0.03 + units**2


def energy_profile(relative_mz, collision_energy):
    """How strongly each ion shows at a collision energy, from its m/z over the precursor's.

    Low energies favour ions near the precursor, high energies small ions.
    """
    centre = np.clip(1.0 - collision_energy / 60.0, 0.1, 0.9)
    return np.exp(-0.5 * ((relative_mz - centre) / 0.3) ** 2)


def precursor_share(collision_energy, adduct):
    """Intensity of the precursor relative to the strongest fragment."""
    share = 2.5 * np.exp(-collision_energy / 12.0)
    return share * (4.0 if adduct == "[M+Na]+" else 1.0)


def simulate_peaks(molecule, adduct, collision_energy, rng):
    """Peaks of one spectrum of a prepared molecule.

    Parameters
    ----------
    molecule : dict
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
        float64, m/z ascending, intensities scaled to a maximum of 1000.
    precursor_mz : float
    """
    ionmode, _, shift = ADDUCTS[adduct]
    precursor_mz = molecule["mass"] + shift
    ions = molecule["ions"][ionmode]
    frag_mz, frag_int = ions["mz"], ions["intensity"] * molecule["table"]["weight"]
    if adduct == "[M+Na]+":
        # Sodiated ions fragment poorly; the fragments that keep the sodium move with it.
        keeps_sodium = ions["sodium"]
        frag_mz = np.where(keeps_sodium, frag_mz + ADDUCTS["[M+Na]+"][2] - PROTON, frag_mz)
        frag_int = frag_int * 0.35
    loss_mz = precursor_mz - molecule["loss_mass"]
    loss_int = molecule["loss_intensity"][ionmode]
    mz = np.concatenate([frag_mz, loss_mz])
    intensity = np.concatenate([frag_int, loss_int]) * energy_profile(mz / precursor_mz, collision_energy)
    if adduct == "[M+NH4]+":
        # Ammonium adducts shed NH3 first: the protonated molecule shows strongly.
        mz = np.append(mz, molecule["mass"] + PROTON)
        intensity = np.append(intensity, 0.8 * max(intensity.max(initial=0.0), 0.2))
    carbons = np.concatenate([molecule["table"]["carbons"], molecule["loss_carbons"]])
    mz, intensity = _add_isotopes(mz, intensity, carbons, len(frag_mz) + len(loss_mz))
    top = intensity.max(initial=0.0) if intensity.size else 0.0
    mz = np.append(mz, precursor_mz)
    intensity = np.append(intensity, max(top, 0.1) * precursor_share(collision_energy, adduct))
    mz, intensity = _add_noise(mz, intensity, precursor_mz, rng)
    return _finish_peaks(mz, intensity), precursor_mz


def _add_isotopes(mz, intensity, carbons, n_monoisotopic):
    """Append the M+1 (13C) peak of each monoisotopic ion."""
    ratio = 0.0107 * carbons[:n_monoisotopic] / (1.0 - 0.0107)
    return (
        np.concatenate([mz, mz[:n_monoisotopic] + C13_SHIFT]),
        np.concatenate([intensity, intensity[:n_monoisotopic] * ratio]),
    )


def _add_noise(mz, intensity, precursor_mz, rng):
    """Jitter every intensity, shift every m/z by a few ppm, and add a few noise peaks."""
    intensity = intensity * rng.lognormal(0.0, 0.25, size=intensity.size)
    mz = mz * (1.0 + rng.normal(0.0, 3e-6, size=mz.size))
    n_noise = int(rng.integers(2, 9))
    noise_mz = rng.uniform(max(MIN_ION_MZ, 0.1 * precursor_mz), precursor_mz, size=n_noise)
    noise_int = intensity.max() * rng.uniform(0.005, 0.03, size=n_noise)
    return np.concatenate([mz, noise_mz]), np.concatenate([intensity, noise_int])


def _finish_peaks(mz, intensity):
    """Drop weak and out-of-range peaks, merge equal m/z, keep the strongest, sort."""
    keep = (mz >= MIN_ION_MZ) & (intensity > 0)
    mz, intensity = mz[keep], intensity[keep]
    # Ions that land on the same m/z (isomeric pieces) add up into one peak.
    rounded, inverse = np.unique(np.round(mz, 4), return_inverse=True)
    intensity = np.bincount(inverse, weights=intensity)
    mz = rounded
    intensity = intensity / intensity.max() * 1000.0
    keep = intensity >= RELATIVE_THRESHOLD * 1000.0
    mz, intensity = mz[keep], intensity[keep]
    if mz.size > MAX_PEAKS:
        strongest = np.sort(np.argsort(-intensity, kind="stable")[:MAX_PEAKS])
        mz, intensity = mz[strongest], intensity[strongest]
    return np.round(mz, 5).astype(np.float64), np.round(intensity, 2).astype(np.float64)


def describe_molecule(mol, loss_patterns):
    """Everything about ``mol`` that its spectra share: mass, fragments, ions, losses.

    Examples
    --------
    >>> from rdkit import Chem
    >>> info = describe_molecule(Chem.MolFromSmiles("CCOC(=O)c1ccccc1"), compile_loss_patterns())
    >>> round(info["mass"], 4), len(info["table"]["keys"]) > 3
    (150.0681, True)
    """
    table = fragment_table(mol)
    loss_names, loss_mass = neutral_losses(mol, loss_patterns)
    ions = {}
    loss_intensity = {}
    for ionmode in ("positive", "negative"):
        ions[ionmode] = {
            "mz": fragment_ion_mz(table, ionmode),
            "intensity": base_intensities(table["keys"], ionmode),
            "sodium": np.array([hash_unit("na", key) < 0.5 for key in table["keys"]], dtype=bool),
        }
        loss_intensity[ionmode] = 0.6 * base_intensities(loss_names, ionmode)
    mass = float(atom_masses(mol).sum())
    n_carbon = sum(atom.GetAtomicNum() == 6 for atom in mol.GetAtoms())
    # A loss keeps (nearly) all the carbons; the isotope peak follows the precursor's.
    loss_carbons = np.full(len(loss_names), float(n_carbon))
    return {
        "mass": mass,
        "table": table,
        "ions": ions,
        "loss_mass": loss_mass,
        "loss_intensity": loss_intensity,
        "loss_carbons": loss_carbons,
    }


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
    energies = rng.choice(COLLISION_ENERGIES, size=n_spectra, replace=n_spectra > len(COLLISION_ENERGIES))
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


def simulate_molecule_spectra(mol, name, spectra_range, rng, loss_patterns):
    """Peaks and metadata of every spectrum of one molecule (no ``spectrum_id`` yet).

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray, dict)
    """
    info = describe_molecule(mol, loss_patterns)
    structure = structure_metadata(mol)
    n_spectra = int(rng.integers(spectra_range[0], spectra_range[1] + 1))
    spectra = []
    for adduct, energy in choose_acquisitions(n_spectra, rng):
        (mz, intensity), precursor_mz = simulate_peaks(info, adduct, energy, rng)
        ionmode, charge, _ = ADDUCTS[adduct]
        metadata = {
            "compound_name": f"NCI {name}",
            **structure,
            "precursor_mz": round(float(precursor_mz), 5),
            "charge": charge,
            "ionmode": ionmode,
            "adduct": adduct,
            "collision_energy": energy,
            "instrument_type": "LC-ESI-QTOF simulated",
            "license": "CC0",
            "comment": "simulated spectrum (in-silico fragmenter, not a measurement)",
        }
        spectra.append((mz, intensity, metadata))
    return spectra


def molecule_rng(seed, line_index):
    """The random generator of one molecule, independent of every other molecule's.

    Examples
    --------
    >>> molecule_rng(0, 5).random() == molecule_rng(0, 5).random()
    True
    """
    return np.random.default_rng((seed, _MOLECULE_STREAM, line_index))


def usable_molecules(records, progress=False):
    """Prepared molecules of ``records``, skipping those :func:`prepare_molecule` rejects.

    Returns
    -------
    list of (int, str, rdkit.Chem.Mol)
        ``(line index, name, molecule)`` in file order.
    """
    from tqdm.auto import tqdm

    usable = []
    for line_index, smiles, name in tqdm(
        records, desc="reading molecules", unit="mol", disable=not progress, file=sys.stderr, leave=False
    ):
        mol = prepare_molecule(smiles)
        if mol is not None:
            usable.append((line_index, name, mol))
    return usable


def select_molecules(mols, n_molecules, seed):
    """Pick ``n_molecules`` indices into ``mols``, in groups of close analogues.

    Seeds are drawn in a seeded random order; each brings up to :data:`MAX_ANALOGUES`
    not yet chosen molecules with Tanimoto >= :data:`ANALOGUE_THRESHOLD` (RDKit path
    fingerprint, as the competition's label). A plain random sample would hold too few
    similar pairs for the upper Tanimoto bins.

    Returns
    -------
    list of int
        Sorted indices.
    """
    from rdkit import DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetRDKitFPGenerator(maxPath=7, fpSize=2048)
    fingerprints = [generator.GetFingerprint(mol) for mol in mols]
    order = np.random.default_rng((seed, _SELECTION_STREAM)).permutation(len(mols))
    chosen = np.zeros(len(mols), dtype=bool)
    n_chosen = 0
    for index in order:
        if n_chosen >= n_molecules:
            break
        if chosen[index]:
            continue
        similarity = np.asarray(DataStructs.BulkTanimotoSimilarity(fingerprints[index], fingerprints))
        candidates = np.flatnonzero((similarity >= ANALOGUE_THRESHOLD) & ~chosen)
        candidates = candidates[candidates != index]
        # Most similar first; ties to the earlier line so the choice is reproducible.
        candidates = candidates[np.lexsort((candidates, -similarity[candidates]))][:MAX_ANALOGUES]
        group = np.concatenate([[index], candidates])[: n_molecules - n_chosen]
        chosen[group] = True
        n_chosen += len(group)
    return np.flatnonzero(chosen).tolist()


def _check_arguments(n_molecules, spectra_per_molecule, seed):
    """Validate the arguments of :func:`simulate_library`; return ``(low, high)`` spectra."""
    if isinstance(n_molecules, bool) or not isinstance(n_molecules, (int, np.integer)):
        raise TypeError(f"n_molecules must be an integer, got {type(n_molecules).__name__} {n_molecules!r}")
    if n_molecules <= 0:
        raise ValueError(f"n_molecules must be a positive integer, got {n_molecules}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    spectra = spectra_per_molecule
    if isinstance(spectra, (int, np.integer)) and not isinstance(spectra, bool):
        spectra = (spectra, spectra)
    if (
        not isinstance(spectra, (tuple, list))
        or len(spectra) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in spectra)
    ):
        raise TypeError(
            "spectra_per_molecule must be an integer or a (low, high) pair of integers, "
            f"got {spectra_per_molecule!r}"
        )
    low, high = int(spectra[0]), int(spectra[1])
    if not 1 <= low <= high:
        raise ValueError(
            f"spectra_per_molecule must satisfy 1 <= low <= high, got ({low}, {high})"
        )
    return low, high


def simulate_library(n_molecules=2000, spectra_per_molecule=(2, 5), seed=0, progress=True):
    """Simulate the embedded default library: MS/MS spectra of RDKit's NCI molecules.

    The spectra are SIMULATED (see :data:`SIMULATED_LIBRARY_DESCRIPTION`). Molecules are
    drawn from RDKit's NCI sample in groups of close analogues, so that every Tanimoto
    bin of a competition built from the library gets pairs.

    Parameters
    ----------
    n_molecules : int, default 2000
        How many distinct molecules; at most the number of usable molecules in the NCI
        sample (about 4,700).
    spectra_per_molecule : int or (int, int), default (2, 5)
        Spectra per molecule, drawn uniformly from ``low..high`` inclusive.
    seed : int, default 0
        Seeds the choice of molecules and every random step; the same seed gives the
        same spectra, byte for byte once saved.
    progress : bool, default True
        Show progress bars on stderr.

    Returns
    -------
    list of matchms.Spectrum
        Ordered by molecule (NCI file order), ``spectrum_id`` ``SIM000001`` onwards. Each
        has ``compound_name``, ``smiles``, ``inchi``, ``inchikey``, ``formula``,
        ``precursor_mz``, ``charge``, ``ionmode``, ``adduct``, ``collision_energy``,
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
    >>> len({s.get("inchikey") for s in spectra})
    20
    """
    from matchms import Spectrum
    from tqdm.auto import tqdm

    spectra_range = _check_arguments(n_molecules, spectra_per_molecule, seed)
    records = read_smiles_records(nci_smiles_path())
    usable = usable_molecules(records, progress=progress)
    if n_molecules > len(usable):
        raise ValueError(
            f"n_molecules={n_molecules} exceeds the {len(usable)} usable molecules of RDKit's NCI "
            f"sample; ask for at most {len(usable)}, or use a real library "
            "(`kit prepare --library massbank` or `--library path/to/library.mgf`)"
        )
    selected = select_molecules([mol for _, _, mol in usable], n_molecules, seed)
    loss_patterns = compile_loss_patterns()
    spectra = []
    for index in tqdm(
        selected, desc="simulating spectra", unit="mol", disable=not progress, file=sys.stderr
    ):
        line_index, name, mol = usable[index]
        rng = molecule_rng(seed, line_index)
        for mz, intensity, metadata in simulate_molecule_spectra(mol, name, spectra_range, rng, loss_patterns):
            metadata = {"spectrum_id": f"SIM{len(spectra) + 1:06d}", **metadata}
            spectra.append(Spectrum(mz=mz, intensities=intensity, metadata=metadata))
    return spectra
