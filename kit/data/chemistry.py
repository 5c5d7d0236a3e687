"""Molecules behind spectra: identity, representative structure, fingerprints, Tanimoto.

The competition's label (README, "A competition on disk"): Tanimoto (Jaccard) of RDKit path fingerprints
(maxPath 7, 2048 bits), one fingerprint per molecule, computed from the molecule's
representative SMILES. Molecule identity is the first block of the InChIKey.

Fingerprints are kept as a dense 0/1 ``uint8`` matrix so that intersections of whole
blocks of molecules are one matrix product; nothing here builds a spectra x spectra matrix.
"""
import contextlib
import contextvars
import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from rdkit import Chem, DataStructs, RDLogger
from rdkit.Chem import rdFingerprintGenerator

from kit.errors import UserError
from kit.progress import progress as progress_bar

FP_SIZE = 2048
MAX_PATH = 7
INCHIKEY14 = 14
LABEL_DEFINITION = (
    f"Tanimoto (Jaccard) similarity of RDKit path fingerprints (maxPath {MAX_PATH}, {FP_SIZE} bits, "
    "rdFingerprintGenerator.GetRDKitFPGenerator) of the two molecules' representative SMILES "
    "(the most frequent SMILES among a molecule's spectra, ties to the first seen); "
    "molecule identity is the first 14 characters of the InChIKey"
)
# Rows of molecules per block when a Tanimoto matrix is built piecewise (bounds memory).
BLOCK_ROWS = 2048


@dataclass
class MoleculeCache:
    """Per-SMILES work kept for one command: derived InChIKey blocks and fingerprints.

    Both are functions of the SMILES text alone, so a cache can only return what the
    work itself would; it lives while :func:`molecule_cache` is open (one ``kit demo`` or
    ``kit train``), so nothing outlives the command. ``computed`` counts the work done
    (``inchikeys``, ``fingerprints``: SMILES parsed for each), not the work saved.
    """

    inchikeys: dict = field(default_factory=dict)
    fingerprints: dict = field(default_factory=dict)
    computed: Counter = field(default_factory=Counter)


_ACTIVE_CACHE = contextvars.ContextVar("kit_molecule_cache", default=None)


@contextlib.contextmanager
def molecule_cache():
    """Keep InChIKeys and fingerprints computed inside the block for the rest of it.

    Inside a block already open, the open cache is used (and stays open).

    Examples
    --------
    >>> with molecule_cache() as cache:
    ...     first, again = fingerprints(["CCO", "c1ccccc1"]), fingerprints(["c1ccccc1", "CCO"])
    >>> bool((first[::-1] == again).all()), cache.computed["fingerprints"]
    (True, 2)
    """
    open_cache = _ACTIVE_CACHE.get()
    if open_cache is not None:
        yield open_cache
        return
    cache = MoleculeCache()
    token = _ACTIVE_CACHE.set(cache)
    try:
        yield cache
    finally:
        _ACTIVE_CACHE.reset(token)


def _rdkit():
    # RDKit's parse warnings would flood the terminal for a library with odd SMILES.
    RDLogger.DisableLog("rdApp.*")
    return Chem


def _undefined(value):
    return value is None or str(value).strip().lower() in ("", "n/a", "na", "none", "nan")


def fingerprint_generator():
    """The label's fingerprint generator (RDKit path fingerprint, maxPath 7, 2048 bits)."""
    return rdFingerprintGenerator.GetRDKitFPGenerator(maxPath=MAX_PATH, fpSize=FP_SIZE)


def fingerprints(smiles):
    """0/1 fingerprint matrix (``uint8``, one row per SMILES) of the label's fingerprint.

    Raises
    ------
    UserError
        When a SMILES does not parse.

    Examples
    --------
    >>> fingerprints(["CCO", "c1ccccc1"]).shape
    (2, 2048)
    """
    cache = _ACTIVE_CACHE.get()
    if cache is None:
        return _fingerprints(list(smiles))
    smiles = list(smiles)
    first_row = {}
    for row, text in enumerate(smiles):
        if text not in cache.fingerprints:
            first_row.setdefault(text, row)
    if first_row:
        new = _fingerprints(list(first_row), rows=list(first_row.values()))
        cache.computed["fingerprints"] += len(first_row)
        # Kept packed (256 bytes a molecule): a MassBank's molecules take a few MB.
        cache.fingerprints.update(zip(first_row, np.packbits(new, axis=1)))
    if not smiles:
        return np.zeros((0, FP_SIZE), dtype=np.uint8)
    packed = np.stack([cache.fingerprints[text] for text in smiles])
    return np.unpackbits(packed, axis=1, count=FP_SIZE)


def _fingerprints(smiles, rows=None):
    """The fingerprints of ``smiles`` (a list); ``rows`` numbers them in messages (default 0, 1, ...)."""
    chem = _rdkit()
    mols = []
    for row, text in zip(range(len(smiles)) if rows is None else rows, smiles):
        mol = chem.MolFromSmiles(text)
        if mol is None:
            raise UserError(f"SMILES {text!r} (row {row}) does not parse: expected a valid SMILES")
        mols.append(mol)
    # RDKit computes them in its own threads (the path enumeration dominates the cost).
    out = np.zeros((len(mols), FP_SIZE), dtype=np.uint8)
    for row, fp in enumerate(fingerprint_generator().GetFingerprints(mols, numThreads=os.cpu_count() or 1)):
        DataStructs.ConvertToNumpyArray(fp, out[row])
    return out


def tanimoto_counts(fps_a, fps_b):
    """Intersection counts and union sizes of every pair (row of a, row of b).

    Both come back as ``float32`` arrays holding whole numbers: float32 represents every
    integer up to 2**24 exactly, and a 2048-bit fingerprint never comes close, so the
    matrix product stays exact while running at BLAS speed. The Tanimoto of a pair is
    ``inter / union`` (0 where both fingerprints are empty, as in RDKit).
    """
    a = np.asarray(fps_a, dtype=np.float32)
    b = np.asarray(fps_b, dtype=np.float32)
    inter = a @ b.T
    union = a.sum(axis=1)[:, None] + b.sum(axis=1)[None, :]
    union -= inter
    return inter, union


def tanimoto_from_counts(inter, union):
    """Tanimoto values from counts, divided in float64 exactly as RDKit divides."""
    inter = np.asarray(inter, dtype=np.float64)
    union = np.asarray(union, dtype=np.float64)
    out = np.zeros(np.broadcast(inter, union).shape)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def bins_from_counts(inter, union, n_bins=10):
    """Tanimoto bin (0..n_bins-1) of each pair, exact without float64.

    ``floor(n_bins * inter / union)`` in float32 is exact here: when the true quotient is
    below a whole number it is below by at least ``1 / union >= 1 / 4096``, far more than
    float32's rounding error near 10.
    """
    top = np.multiply(inter, n_bins, dtype=np.float32)
    np.divide(top, np.maximum(union, 1, dtype=np.float32), out=top)
    np.floor(top, out=top)
    np.minimum(top, n_bins - 1, out=top)
    return top.astype(np.int8)


def tanimoto_matrix(fps_a, fps_b=None):
    """Tanimoto of every row of ``fps_a`` with every row of ``fps_b`` (float64).

    Built in blocks of rows; the result is ``len(a) x len(b)``, so call it on blocks of
    molecules, never on all spectra.

    Examples
    --------
    >>> fps = fingerprints(["CCO", "CCCO", "c1ccccc1"])
    >>> m = tanimoto_matrix(fps)
    >>> bool(m[0, 0] == 1.0), bool(m[0, 1] > m[0, 2])
    (True, True)
    """
    fps_b = fps_a if fps_b is None else fps_b
    out = np.empty((len(fps_a), len(fps_b)))
    for start in range(0, len(fps_a), BLOCK_ROWS):
        inter, union = tanimoto_counts(fps_a[start : start + BLOCK_ROWS], fps_b)
        out[start : start + BLOCK_ROWS] = tanimoto_from_counts(inter, union)
    return out


def tanimoto_rows(fps_a, fps_b):
    """Row-wise Tanimoto of two equally long fingerprint matrices (one value per row).

    Examples
    --------
    >>> fps = fingerprints(["CCO", "CCCO"])
    >>> tanimoto_rows(fps, fps).tolist()
    [1.0, 1.0]
    """
    a = np.asarray(fps_a, dtype=np.int32)
    b = np.asarray(fps_b, dtype=np.int32)
    inter = np.einsum("ij,ij->i", a, b)
    union = a.sum(axis=1) + b.sum(axis=1) - inter
    return tanimoto_from_counts(inter, union)


@dataclass
class Molecules:
    """Spectra grouped by molecule.

    Attributes
    ----------
    keys : numpy.ndarray of str
        InChIKey first blocks, one per molecule, in order of first appearance.
    smiles : list of str
        Representative SMILES of each molecule.
    spectrum_molecule : numpy.ndarray of int
        Molecule index of each spectrum (same order as the spectra given).
    """

    keys: np.ndarray
    smiles: list
    spectrum_molecule: np.ndarray

    def __len__(self):
        return len(self.keys)

    def fingerprints(self):
        """0/1 fingerprint matrix, one row per molecule."""
        return fingerprints(self.smiles)

    def spectra_of(self):
        """List of spectrum index arrays, one per molecule."""
        return group_indices(self.spectrum_molecule, len(self.keys))


def group_indices(labels, n_groups):
    """Positions of each label ``0 .. n_groups - 1``, in order, with one sort.

    Examples
    --------
    >>> [g.tolist() for g in group_indices(np.array([1, 0, 1]), 3)]
    [[1], [0, 2], []]
    """
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_groups + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(n_groups)]


def inchikey14(inchikey):
    """First block of an InChIKey, or None when it is not a well-formed InChIKey.

    Examples
    --------
    >>> inchikey14("LFQSCWFLJHTTHZ-UHFFFAOYSA-N")
    'LFQSCWFLJHTTHZ'
    >>> inchikey14("not a key") is None
    True
    """
    if _undefined(inchikey):
        return None
    text = str(inchikey).strip().upper()
    parts = text.split("-")
    if len(parts) != 3 or len(parts[0]) != INCHIKEY14 or not parts[0].isalpha():
        return None
    return parts[0]


def structure_keys(spectra, report=None, progress=False):
    """Molecule key (InChIKey first block) and SMILES of each spectrum with a usable structure.

    A spectrum needs a SMILES that RDKit parses; its InChIKey is taken from the metadata
    when well-formed, else derived from the SMILES. Each distinct SMILES is parsed once.

    Returns
    -------
    kept : list of int
        Indices of the spectra with a usable structure.
    keys, smiles : list of str
        Molecule key and SMILES of each kept spectrum.
    """
    chem = _rdkit()
    cache = _ACTIVE_CACHE.get()
    # SMILES -> derived InChIKey block, or None when it does not parse; the command's
    # cache where one is open, so each SMILES is parsed once per command.
    parsed = {} if cache is None else cache.inchikeys
    kept, keys, smiles_out = [], [], []
    for index, spectrum in enumerate(progress_bar(spectra, desc="structures", unit=" spectra", disable=not progress)):
        smiles = spectrum.get("smiles")
        if _undefined(smiles):
            _count(report, "no SMILES")
            continue
        smiles = str(smiles).strip()
        if smiles not in parsed:
            mol = chem.MolFromSmiles(smiles)
            parsed[smiles] = None if mol is None else (inchikey14(chem.MolToInchiKey(mol)) or "")
            if cache is not None:
                cache.computed["inchikeys"] += 1
        derived = parsed[smiles]
        if derived is None:
            _count(report, "SMILES that RDKit cannot parse")
            continue
        key = inchikey14(spectrum.get("inchikey")) or derived
        if not key:
            _count(report, "no InChIKey and none derivable from the SMILES")
            continue
        kept.append(index)
        keys.append(key)
        smiles_out.append(smiles)
    return kept, keys, smiles_out


def _count(report, reason):
    if report is not None:
        report.dropped[reason] += 1


def group_molecules(keys, smiles):
    """Group spectra (given their molecule key and SMILES) into :class:`Molecules`.

    The representative SMILES of a molecule is its most frequent SMILES, ties to the
    first seen.

    Examples
    --------
    >>> m = group_molecules(["A", "B", "A", "A"], ["C", "CC", "OC", "OC"])
    >>> list(m.keys), m.smiles, m.spectrum_molecule.tolist()
    (['A', 'B'], ['OC', 'CC'], [0, 1, 0, 0])
    """
    if len(keys) != len(smiles):
        raise ValueError(f"expected as many keys as SMILES, found {len(keys)} and {len(smiles)}")
    index = {}
    counts = []
    spectrum_molecule = np.empty(len(keys), dtype=np.int64)
    for row, (key, smi) in enumerate(zip(keys, smiles)):
        if key not in index:
            index[key] = len(index)
            counts.append(Counter())
        mol = index[key]
        spectrum_molecule[row] = mol
        # Counter keeps insertion order, and most_common is stable: ties go to the first seen.
        counts[mol][smi] += 1
    representative = [c.most_common(1)[0][0] for c in counts]
    return Molecules(keys=np.array(list(index), dtype=object), smiles=representative, spectrum_molecule=spectrum_molecule)


def molecules_of(spectra, report=None, progress=False):
    """Keep spectra with a usable structure and group them by molecule.

    Returns
    -------
    spectra : list of matchms.Spectrum
        The spectra kept (others are counted in ``report``).
    molecules : Molecules
    """
    kept, keys, smiles = structure_keys(spectra, report=report, progress=progress)
    if not kept:
        raise UserError(
            f"no spectrum with a usable structure among {len(spectra):,}: expected SMILES that RDKit "
            "parses (and ideally an InChIKey) in each spectrum's metadata"
        )
    return [spectra[i] for i in kept], group_molecules(keys, smiles)
