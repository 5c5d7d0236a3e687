"""The in-silico fragmenter of the embedded default library: the peaks of one molecule.

* every acyclic single bond is cut once (either piece may keep the charge), pairs of
  them are cut together (the piece between them), and pairs of bonds of one ring are
  cut where that frees a piece (ring cleavage);
* the precursor loses small neutral molecules (H2O, NH3, CO, CO2, HCOOH, CH3OH, HCl,
  HCN ...) when it holds the group they come from;
* adducts ``[M+H]+``, ``[M+Na]+``, ``[M+NH4]+`` and ``[M-H]-``, 13C isotope peaks, a few
  noise peaks, intensity jitter and m/z errors of a few ppm.

Structure shows in the spectra because everything about a fragment is a function of its
structure: its intensity is a hash of its canonical SMILES times a hash of the bonds cut
to free it (their atoms and neighbours), and the hydrogen shift of its ion is a hash of
those bonds. The same substructure gives the same peak, with the same relative intensity,
in every molecule that holds it; an analogue that differs elsewhere keeps the peak, and
one that differs inside the piece keeps the cut and so a similar peak, moved by the mass
difference (which the modified cosine matches). The collision energy moves intensity
from the precursor and large fragments toward small fragments.
"""
import hashlib
from types import MappingProxyType

import numpy as np
from rdkit import Chem

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

# Fragmenter limits keep the cost per molecule bounded.
MAX_DOUBLE_CLEAVAGES = 16
MAX_RING_CLEAVAGES = 12
MIN_ION_MZ = 20.0
MERGE_TOLERANCE = 0.01
MAX_PEAKS = 120
RELATIVE_THRESHOLD = 0.005


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

