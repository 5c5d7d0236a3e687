"""The embedded default library: simulated MS/MS spectra of seeded edits of RDKit's molecules.

``kit prepare`` without ``--library`` builds the ``practice`` competition from this
library, so the kit works offline and on a fresh machine. Its molecules are seeded edits
of RDKit's NCI sample (:mod:`kit.data.simulated_molecules`: no list the kit or its
dependencies ship holds them), and their spectra come from a small in-silico fragmenter
(:mod:`kit.data.fragmenter`): bond and ring cleavages, neutral losses, adducts (about 80%
positive), several collision energies per molecule, isotope peaks and noise.

Every random step draws from :func:`numpy.random.default_rng`: the choice of shipped
molecules from one seeded with ``(seed, 1)``, the edits of a family from ``(seed, 3, its
line in the NCI file)``, each molecule's spectra from ``(seed, 2, line, place in the
family)`` and the library's order from ``(seed, 4)``, so a molecule and its spectra do not
depend on which other molecules were chosen or in what order they were simulated.
"""
import sys
from types import MappingProxyType

import numpy as np

from kit.constraints import Each, Integral, Interval, validate_params
from kit.data.fragmenter import (
    ADDUCTS,
    compile_loss_patterns,
    describe_molecule,
    simulate_peaks,
)
from kit.data.simulated_molecules import (
    MAX_VARIANTS,
    choose_molecules,
    shipped_molecules,
)
from kit.errors import UserError
from kit.progress import progress as progress_bar
from kit.thirdparty import import_matchms

Spectrum = import_matchms().Spectrum

__all__ = ["SIMULATED_LIBRARY_DESCRIPTION", "simulate_library", "simulated_library_description"]

SIMULATED_LIBRARY_DESCRIPTION = (
    "SIMULATED library: these spectra come from the kit's own in-silico fragmenter "
    "(acyclic and ring bond cleavages, neutral losses, adducts, collision energies, "
    "noise), applied to seeded edits of molecules of RDKit's NCI sample; they are not real "
    "measurements. Scores on it show how a method behaves, not how it does on real "
    "MS/MS data. For real spectra use `kit prepare --library massbank` (MassBank) or "
    "`kit prepare --library path/to/library.mgf` (MGF, MSP, mzML or JSON, gzip allowed)."
)

POSITIVE_ADDUCT_WEIGHTS = MappingProxyType({"[M+H]+": 0.7, "[M+Na]+": 0.2, "[M+NH4]+": 0.1})
NEGATIVE_FRACTION = 0.2
COLLISION_ENERGIES = (10, 15, 20, 30, 40, 50, 60)
INSTRUMENT_TYPE = "LC-ESI-QTOF simulated"

# Random stream of a molecule's spectra: (seed, 2, line, variant); see the module docstring.
_MOLECULE_STREAM = 2


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


_PARAMETER_CONSTRAINTS = {"n_molecules": Interval(Integral, 1, None), "seed": Interval(Integral, 0, None)}
_SPECTRA_RANGE = Each(Interval(Integral, 1, None), min_length=2, max_length=2)


def _check_arguments(n_molecules, spectra_per_molecule, seed):
    """Validate the arguments of :func:`simulate_library`; return ``(low, high)``."""
    validate_params(_PARAMETER_CONSTRAINTS, {"n_molecules": n_molecules, "seed": seed})
    one_number = _SPECTRA_RANGE.constraint.accepts_type(spectra_per_molecule)
    spectra = (spectra_per_molecule,) * 2 if one_number else spectra_per_molecule
    low, high = _SPECTRA_RANGE.check(spectra, "spectra_per_molecule")
    if low > high:
        raise UserError(f"spectra_per_molecule must be a (low, high) pair with low <= high, found ({low}, {high})")
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
