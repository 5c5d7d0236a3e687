"""``kit prepare``: a spectral library becomes a competition folder (README, "A competition on disk").

The folder is built under a temporary name and renamed when complete, so it is written
completely or not at all. Random steps draw from independent streams of one seed, so the
same library, options and seed give byte-identical files, private ones included.

Nothing handed out names a library record: test spectra get neutral ids (``test_000001``
...) in a shuffled order, and the map back to the library's ids, the seed and the
library's sha256 stay in ``private/``, which is readable by its owner only. The simulated
practice library is simulated with a seed drawn from the competition's seed (the simulator
ships with the kit: a fixed seed would let anyone rebuild it and look the answers up).
"""
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kit.competition import folder as files
from kit._version import __version__
from kit.data.chemistry import FP_SIZE, LABEL_DEFINITION, MAX_PATH, fingerprints, group_indices, molecules_of
from kit.competition.folder import DEFAULT_DAILY_LIMIT
from kit.errors import UserError
from kit.fileio import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, atomic_dir, ensure_writable_dir, sha256_file
from kit.data.licences import check_exclusions, drop_licences
from kit.constraints import Interval, Options, Real, check_param
from kit.data.novelty import (BAND_LABELS, CLUSTER_SIMILARITY, NOVEL_SHARE, NOVELTY_THRESHOLD, novelty_bands,
                              novelty_split)
from kit.data.pair_types import CROSS, keep_cross_share, pair_types_of, parse_pair_types, typed_cells
from kit.data.pairs import split_molecules, split_test_pairs
from kit.paths import COMPETITION_FILE, COMPETITION_NAME, DEFAULT_COMPETITION, StrPath, data_dir
from kit.safetext import spreadsheet_cell
from kit.competition.folder import PRIVATE, PUBLIC
from kit.data import download, simulate
from kit.data.spectra import CleaningReport, check_jobs, clean_spectra, default_filters, load_spectra, save_records
from kit.data.tanimoto_bins import BIN_LABELS, N_BINS

# Fields a test spectrum keeps: measurement conditions a model may use, nothing that names
# or draws the molecule. The licence stays with the training spectra and is counted in
# competition.json: on a test spectrum it only narrows down which contributor's record it is.
PUBLIC_FIELDS = (
    "spectrum_id", "precursor_mz", "charge", "ionmode", "adduct",
    "instrument_type", "fragmentation", "collision_energy",
)
STRUCTURE_FIELDS = ("compound_name", "smiles", "inchi", "inchikey", "formula")
TRAIN_FIELDS = PUBLIC_FIELDS + ("license",) + STRUCTURE_FIELDS
TEST_ID_PREFIX = "test_"
IONMODES = ("both", "positive", "negative")
SPLITS = ("random", "novelty")
#: The settings of ``--split novelty``, each a Tanimoto or a share strictly between 0 and 1 (1 for the share).
NOVELTY_CONSTRAINTS = {
    "--cluster-similarity": Interval(Real, 0, 1, closed="neither"),
    "--novelty-threshold": Interval(Real, 0, 1, closed="neither"),
    "--novel-share": Interval(Real, 0, 1, closed="right"),
}
MAX_DAILY_SUBMISSIONS = DEFAULT_DAILY_LIMIT
SIMULATED = "simulated"
MASSBANK = "massbank"
# Keys of a library source that stay in private/manifest.json: a library file's hash, and
# the seed of the simulated library (either rebuilds the library, and with it the answers).
PRIVATE_SOURCE_KEYS = ("sha256", "simulation_seed")
SEED_ZERO_WARNING = (
    "note: seed 0 is the default: anyone can rebuild this competition's answers; "
    "use a secret --seed for a graded challenge"
)
_NEUTRAL_ID = re.compile(rf"{TEST_ID_PREFIX}\d+", re.IGNORECASE)
_NAME = COMPETITION_NAME


def check_options(test_fraction, pairs_per_bin, public_fraction, ionmode, seed):
    """Raise :class:`UserError` for an option outside its range.

    The Public/Private split is checked against the most test pairs the options allow
    (``pairs_per_bin`` in each of the ten bins), so a fraction that cannot give both a
    Public and a Private row is refused before the library is read.
    """
    for option, value in (("--test-fraction", test_fraction), ("--public-fraction", public_fraction)):
        if not 0.0 < _float(option, value) < 1.0:
            raise UserError(f"{option} must be between 0 and 1 (exclusive), found {value}")
    if _int("--pairs-per-bin", pairs_per_bin) < 1:
        raise UserError(f"--pairs-per-bin must be a positive whole number, found {pairs_per_bin}")
    if ionmode not in IONMODES:
        raise UserError(f"--ionmode must be one of {', '.join(IONMODES)}, found {ionmode!r}")
    if _int("--seed", seed) < 0:
        raise UserError(f"--seed must be a non-negative whole number, found {seed}")
    check_public_rows(int(pairs_per_bin) * N_BINS, float(public_fraction), at_most=True)


def check_novelty(split, cluster_similarity=None, novelty_threshold=None, novel_share=None):
    """The settings of a novelty split (a dict with defaults filled in), or None for a random split.

    Raises
    ------
    kit.errors.UserError
        For an unknown split, a setting out of range, or a setting given with ``--split random``.

    Examples
    --------
    >>> check_novelty("novelty", novel_share=0.8)
    {'cluster_similarity': 0.7, 'novelty_threshold': 0.6, 'novel_share': 0.8}
    >>> check_novelty("random") is None
    True
    """
    check_param(split, "--split", Options(*SPLITS))
    given = dict(zip(NOVELTY_CONSTRAINTS, (cluster_similarity, novelty_threshold, novel_share)))
    if split == "random":
        named = [option for option, value in given.items() if value is not None]
        if named:
            raise UserError(f"{named[0]} applies to --split novelty only, found it with --split random")
        return None
    defaults = dict(zip(NOVELTY_CONSTRAINTS, (CLUSTER_SIMILARITY, NOVELTY_THRESHOLD, NOVEL_SHARE)))
    settings = {}
    for option, constraint in NOVELTY_CONSTRAINTS.items():
        value = defaults[option] if given[option] is None else given[option]
        try:
            settings[option[2:].replace("-", "_")] = check_param(value, option, constraint)
        except TypeError as exc:
            raise UserError(str(exc)) from None
    return settings


def _float(option, value):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UserError(f"{option} must be a number, found {value!r}") from None


def _int(option, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UserError(f"{option} must be a whole number, found {value!r}")
    return int(value)


def public_count(n_rows, public_fraction):
    """How many of ``n_rows`` rows are Public for ``public_fraction`` (rounded).

    Examples
    --------
    >>> public_count(10, 0.3), public_count(3, 0.1)
    (3, 0)
    """
    return int(round(float(public_fraction) * int(n_rows)))


def check_public_rows(n_rows, public_fraction, at_most=False):
    """Raise :class:`UserError` unless ``public_fraction`` of ``n_rows`` leaves both usages.

    ``at_most`` says that ``n_rows`` is an upper bound (before the pairs are drawn).

    Examples
    --------
    >>> check_public_rows(100, 0.3)
    >>> check_public_rows(10, 0.01)
    Traceback (most recent call last):
    ...
    kit.errors.UserError: --public-fraction 0.01 leaves no Public row among 10 test pairs: expected a fraction between 0.1 and 0.9 for 10 pairs (or more pairs: raise --pairs-per-bin)
    """
    count = f"{'at most ' if at_most else ''}{n_rows:,} test pairs"
    if n_rows < 2:
        raise UserError(
            f"only {count}: expected at least 2 to have both a Public and a Private row "
            "(raise --pairs-per-bin, or use a library with more molecules)"
        )
    n_public = public_count(n_rows, public_fraction)
    if 0 < n_public < n_rows:
        return
    missing = "Public" if n_public == 0 else "Private"
    raise UserError(
        f"--public-fraction {public_fraction:g} leaves no {missing} row among {count}: expected a fraction "
        f"between {1 / n_rows:.3g} and {1 - 1 / n_rows:.{len(str(n_rows))}g} for {n_rows:,} pairs (or more pairs: raise --pairs-per-bin)"
    )


def competition_name(name, libraries):
    """The competition's name: given, else ``practice`` or the first library's file stem."""
    if name is None:
        if not libraries:
            name = DEFAULT_COMPETITION
        else:
            first = str(libraries[0])
            stem = Path(first).name.split(".")[0] if first != MASSBANK else MASSBANK
            name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "competition"
    if not _NAME.match(name):
        raise UserError(
            f"competition name {name!r} is not allowed: expected letters, digits, '.', '_' or '-' "
            "(up to 64, starting with a letter or digit)"
        )
    return name


def load_library(libraries, ionmode, cache_dir, progress, simulation_seed=0, jobs=1):
    """Cleaned spectra of the given libraries (or the simulated one), with a report.

    Returns the spectra (as :class:`LibrarySpectrum`), the
    :class:`~kit.data.spectra.CleaningReport` and one entry per source: its file name, which
    may be handed out, and its sha256 (or, for the simulated library, the seed it was
    simulated with), which stay private. ``jobs`` processes clean a library file
    (:func:`kit.data.spectra.load_spectra`); the spectra are the same for any ``jobs``.

    ``simulation_seed`` seeds the simulated library. The kit ships the simulator, so
    anyone can rebuild a library from a known seed and look every test spectrum up by its
    peaks: :func:`prepare_competition` derives it from the competition's secret seed.
    """
    if not libraries:
        report = CleaningReport(source=SIMULATED)
        spectra = clean_spectra(
            simulate.simulate_library(seed=int(simulation_seed), progress=progress), default_filters(ionmode=ionmode),
            report=report, progress=progress,
        )
        spectra = [LibrarySpectrum.of(s) for s in spectra]
        source = {
            "source": SIMULATED,
            "generator": "kit.data.simulate.simulate_library, seeded from the competition's secret seed",
            "note": simulate.SIMULATED_LIBRARY_DESCRIPTION,
            "simulation_seed": int(simulation_seed),
        }
        return spectra, report, [source]
    spectra, sources = [], []
    # File names only: the report is handed out, and a path would tell where the teacher keeps the library.
    report = CleaningReport(source=", ".join(MASSBANK if str(x) == MASSBANK else Path(x).name for x in libraries))
    for library in libraries:
        cached = str(library) == MASSBANK
        if cached:
            library = download.fetch_massbank(cache_dir, progress=progress)
        before = report.read
        try:
            spectra += load_spectra(
                library, ionmode=ionmode, report=report, progress=progress, jobs=jobs, convert=LibrarySpectrum.of
            )
            if report.read == before:
                raise UserError(f"{library}: no spectra found: expected a spectral library in the format its name says")
        except UserError as exc:
            if not cached:
                raise
            raise UserError(f"{exc} ({download.clear_hint(library)})") from None
        sources.append({"source": Path(library).name, "sha256": sha256_file(library)})
    if not spectra:
        raise UserError(
            f"no spectra left after cleaning {report.source} (read {report.read:,}): expected MS/MS "
            f"spectra with a precursor m/z, ion mode {ionmode}, and at least 5 peaks in m/z 10-1000"
        )
    return spectra, report, sources


def simulation_seed_of(seed_sequence):
    """The simulated library's seed, drawn from its own stream of the competition's seed.

    A 63-bit whole number: knowing it rebuilds the library, so it stays private; without
    it, the library the kit ships cannot be regenerated to look test spectra up.

    Examples
    --------
    >>> import numpy as np
    >>> child = np.random.SeedSequence(1).spawn(5)[4]
    >>> simulation_seed_of(child) == simulation_seed_of(child) > 0
    True
    """
    return int(seed_sequence.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def unique_ids(spectra):
    """One unique, CSV-safe spectrum id per spectrum (``SPECTRUM_ID`` where present).

    Repeated ids get ``-2``, ``-3`` ... (never an id already taken). An id shaped like a
    neutral test id gets a ``library_`` prefix, so that no training spectrum can share
    an id with a test spectrum.

    Examples
    --------
    >>> from matchms import Spectrum
    >>> import numpy as np
    >>> make = lambda i: Spectrum(np.array([50.0]), np.array([1.0]), {"spectrum_id": i}, metadata_harmonization=False)
    >>> unique_ids([make("A"), make("A"), make("A-2"), make("test_000001"), make(None)])
    ['A', 'A-2', 'A-2-2', 'library_test_000001', 'SPEC0000004']
    """
    ids, used, next_suffix = [], set(), {}
    for index, spectrum in enumerate(spectra):
        raw = spectrum.get("spectrum_id")
        base = re.sub(r"[\s,\"]+", "_", str(raw).strip()) if raw not in (None, "") else f"SPEC{index:07d}"
        if _NEUTRAL_ID.fullmatch(base):
            base = f"library_{base}"
        k = next_suffix.get(base, 1)
        candidate = base if k == 1 else f"{base}-{k}"
        while candidate in used:
            k += 1
            candidate = f"{base}-{k}"
        next_suffix[base] = k + 1
        used.add(candidate)
        ids.append(candidate)
    return ids


def neutral_ids(n, prefix=TEST_ID_PREFIX):
    """``n`` ids that say nothing about the spectra: ``test_000001`` onwards.

    Examples
    --------
    >>> neutral_ids(2)
    ['test_000001', 'test_000002']
    """
    width = max(6, len(str(n)))
    return [f"{prefix}{k:0{width}d}" for k in range(1, n + 1)]


def license_counts(spectra):
    """How many spectra carry each licence (``unknown`` where none is given), most frequent first."""
    counts = Counter(str(s.get("license") or "unknown") for s in spectra)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


class LibrarySpectrum:
    """A cleaned library spectrum reduced to what a competition writes: its peaks and the
    metadata fields of :data:`TRAIN_FIELDS` it has.

    Its ``get`` is a matchms ``Spectrum``'s for those fields, without the copy of the
    whole metadata that each ``Spectrum.get`` makes; it pickles small (worker processes
    send it back) and holds a fraction of a Spectrum's memory.

    Examples
    --------
    >>> from matchms import Spectrum
    >>> import numpy as np
    >>> s = Spectrum(np.array([50.0]), np.array([1.0]), {"smiles": "CCO", "comment": "x"}, metadata_harmonization=False)
    >>> kept = LibrarySpectrum.of(s)
    >>> kept.get("smiles"), kept.get("comment"), kept.mz.tolist()
    ('CCO', None, [50.0])
    """

    __slots__ = ("fields", "mz", "intensities")

    def __init__(self, fields, mz, intensities):
        self.fields, self.mz, self.intensities = fields, mz, intensities

    @classmethod
    def of(cls, spectrum):
        """The :class:`LibrarySpectrum` of a matchms ``Spectrum``."""
        metadata = spectrum.metadata_dict()
        peaks = spectrum.peaks
        return cls({k: metadata[k] for k in TRAIN_FIELDS if k in metadata}, peaks.mz, peaks.intensities)

    def get(self, key, default=None):
        return self.fields.get(key, default)


def strip_spectrum(spectrum, spectrum_id, keep):
    """``(metadata, mz, intensities)`` of ``spectrum`` with only the metadata fields in ``keep``.

    What :func:`kit.data.spectra.save_records` writes: the same MGF as a matchms ``Spectrum``
    of that metadata (without harmonisation) through :func:`kit.data.spectra.save_spectra`.
    """
    metadata = {"spectrum_id": spectrum_id}
    for key in keep:
        value = spectrum.get(key)
        if key != "spectrum_id" and value not in (None, ""):
            metadata[key] = value
    return metadata, spectrum.mz, spectrum.intensities


def prepare_competition(
    library: StrPath | Iterable[StrPath] | None = None,
    name: str | None = None,
    out: StrPath | None = None,
    seed: int = 0,
    test_fraction: float = 0.1,
    pairs_per_bin: int = 1000,
    public_fraction: float = 0.3,
    ionmode: str = "both",
    force: bool = False,
    progress: bool = True,
    echo: Callable[[str], object] = print,
    jobs: int | None = None,
    exclude_licences: Iterable[str] = (),
    pair_types: str | Iterable[str] | None = None,
    split: str = "random",
    cluster_similarity: float | None = None,
    novelty_threshold: float | None = None,
    novel_share: float | None = None,
) -> files.Competition:
    """Build a competition folder from a spectral library; return the :class:`Competition`.

    Parameters
    ----------
    library : str, Path or list, optional
        Spectra files (MGF, MSP, mzML, JSON; ``.gz`` allowed) or ``"massbank"``.
        ``None`` builds the simulated practice library.
    name : str, optional
        Folder name under ``out`` (default ``practice`` or the library's file stem).
    out : str or Path, optional
        Folder holding competitions (default ``./data``).
    seed, test_fraction, pairs_per_bin, public_fraction, ionmode, force :
        As the options of ``kit prepare``.
    jobs : int, optional
        Processes that clean the library (default: one per CPU). The files written are the
        same for any number.
    exclude_licences : list of str, optional
        Leave out the records under these licences (:func:`drop_licences`); recorded in
        competition.json's ``options`` with the count each one dropped.
    pair_types : str or list, optional
        ``"same"``, ``"cross"`` or both (``"same,cross"``): test pairs of each ion-mode pair
        type (positive-positive and negative-negative; cross-mode), each balanced over the
        bins, cross-mode rows at least a quarter (:mod:`kit.data.pair_types`). Default: pairs of
        any two test spectra, as before the option.
    split : {"random", "novelty"}
        ``"novelty"`` makes the test molecules whole clusters of similar molecules, a
        ``novel_share`` of them below ``novelty_threshold`` Tanimoto to every training
        molecule (:func:`kit.data.novelty.novelty_split`, Butina clusters at ``cluster_similarity``).
    cluster_similarity, novelty_threshold, novel_share : float, optional
        Settings of ``split="novelty"`` (defaults 0.7, 0.6 and 0.5); refused with ``"random"``.

    Examples
    --------
    >>> comp = prepare_competition(name="practice", seed=0)   # doctest: +SKIP
    >>> comp.test_pairs.shape                                  # doctest: +SKIP
    """
    check_options(test_fraction, pairs_per_bin, public_fraction, ionmode, seed)
    words = None if pair_types is None else parse_pair_types(pair_types)
    novelty = check_novelty(split, cluster_similarity, novelty_threshold, novel_share)
    jobs = check_jobs(jobs)
    exclusions = check_exclusions(exclude_licences)
    libraries = [] if library is None else [library] if isinstance(library, (str, Path)) else list(library)
    name = competition_name(name, libraries)
    root = ensure_writable_dir(data_dir(out))
    target = root / name
    if target.exists() and not force:
        raise UserError(f"{target} already exists: expected a new competition name (use --force to replace it)")
    streams = _Streams.from_seed(seed)
    spectra, report, sources = load_library(libraries, ionmode, root / "cache", progress, streams.simulation_seed, jobs)
    spectra, excluded = drop_licences(spectra, exclusions, report, echo)
    if not spectra:
        raise UserError(f"no spectra left after --exclude-licence {' '.join(exclusions)}: expected a library "
                        "with records under other licences")
    spectra, molecules = molecules_of(spectra, report=report, progress=progress)
    report.kept = len(spectra)
    types = None if words is None else _pair_types(words, spectra)
    split = _split(molecules, test_fraction, streams.split, novelty)
    pairs = _test_pairs(molecules, split, pairs_per_bin, public_fraction, streams, progress, echo,
                        _ionmodes(spectra, split) if types else None, types)
    test_ids = _TestIds.draw(len(split.test_idx), streams.order)
    options = {
        "test_fraction": float(test_fraction), "pairs_per_bin": int(pairs_per_bin),
        "public_fraction": float(public_fraction), "ionmode": ionmode,
    }
    # Only a new kind of competition records the new options: a default one stays byte-identical.
    if words is not None:
        options["pair_types"] = list(words)
    if novelty is not None:
        options |= {"split": "novelty", **novelty}
    meta = _metadata(name, options, sources, report, spectra, split, pairs, test_ids)
    if exclusions:  # with what each one dropped, so that the run can be repeated and checked
        meta["options"]["exclude_licences"] = exclusions
        meta["library"]["excluded_licences"] = excluded
    with atomic_dir(target, force=force) as tmp:
        _write_competition(tmp, spectra, unique_ids(spectra), split, pairs, test_ids, meta)
        _write_private_manifest(tmp, name, seed, sources, pairs)
    _tell(echo, report, target, split, pairs, seed, libraries)
    return files.load_competition(target)


@dataclass(frozen=True)
class _Streams:
    """The independent random streams of one seed, one per random step.

    Streams 0-3 are those of earlier versions, so a seed still gives the same split and
    test ids (``spawn(n)``'s first children do not depend on ``n``). ``usage`` now draws
    the Public group of test molecules and ``pairs`` draws within each group, so the test
    pairs and their Usage differ from those of kits before the groups.
    """

    split: np.random.Generator
    pairs: np.random.Generator
    usage: np.random.Generator
    order: np.random.Generator
    simulation_seed: int

    @classmethod
    def from_seed(cls, seed):
        children = np.random.SeedSequence(int(seed)).spawn(5)
        return cls(*(np.random.default_rng(c) for c in children[:4]), simulation_seed_of(children[4]))


@dataclass(frozen=True)
class _Split:
    """Which molecules and spectra are test, and the test spectra's molecules re-indexed among the test ones."""

    is_test_molecule: np.ndarray
    test_idx: np.ndarray
    train_idx: np.ndarray
    test_mols: np.ndarray
    test_spectrum_mol: np.ndarray
    #: A novelty split's maximum Tanimoto of each test molecule to the training ones; None for a random split.
    familiarity: np.ndarray = None


def _split(molecules, test_fraction, rng, novelty=None):
    """Split by molecule: every spectrum of a molecule on the same side (whole clusters for a novelty split)."""
    familiarity = None
    if novelty is None:
        is_test_molecule = split_molecules(molecules.keys, float(test_fraction), rng, option="--test-fraction")
    else:
        # Molecules in the order of their keys, so the split does not depend on the library's order.
        order = np.argsort(np.asarray(molecules.keys, dtype=str), kind="stable")
        is_test_sorted, familiar_sorted = novelty_split(molecules.fingerprints()[order], float(test_fraction), rng,
                                                        **novelty)
        is_test_molecule, familiarity = np.empty_like(is_test_sorted), np.empty_like(familiar_sorted)
        is_test_molecule[order], familiarity[order] = is_test_sorted, familiar_sorted
    is_test = is_test_molecule[molecules.spectrum_molecule]
    test_idx, train_idx = np.flatnonzero(is_test), np.flatnonzero(~is_test)
    test_mols = np.flatnonzero(is_test_molecule)
    local = np.full(len(molecules), -1)
    local[test_mols] = np.arange(len(test_mols))
    return _Split(is_test_molecule, test_idx, train_idx, test_mols, local[molecules.spectrum_molecule[test_idx]],
                  None if familiarity is None else familiarity[test_mols])


def _pair_types(words, spectra):
    """The pair types of ``words`` that the kept spectra's ion modes allow (a UserError for cross without both)."""
    modes = {s.get("ionmode") for s in spectra}
    return pair_types_of(words, "positive" in modes, "negative" in modes)


def _ionmodes(spectra, split):
    """Whether each test spectrum (by its position in the test set) is of positive mode."""
    return np.array([spectra[i].get("ionmode") == "positive" for i in split.test_idx], dtype=bool)


@dataclass(frozen=True)
class _Pairs:
    """The test pairs (positions in the test set), in their shuffled order, with truth and Usage.

    ``public_molecules`` marks the test molecules (re-indexed among the test ones) of the
    Public group; ``public_per_bin`` counts the Public rows of each bin.
    """

    pairs: np.ndarray
    similarity: np.ndarray
    per_bin: np.ndarray
    usage: np.ndarray
    public_molecules: np.ndarray
    public_per_bin: np.ndarray
    #: Pair type of each row (names of :data:`kit.data.pair_types.PAIR_TYPES`) and rows per type and bin, or None.
    pair_type: np.ndarray = None
    per_type_bin: dict = None


def _test_pairs(molecules, split, pairs_per_bin, public_fraction, streams, progress, echo, is_positive=None,
                types=None):
    """Pairs of test spectra balanced over the Tanimoto bins (and pair types, when given), drawn
    within a Public and a Private group of test molecules, shuffled, each pair's order a coin flip."""
    if progress:
        echo(f"{len(molecules):,} molecules; fingerprints and test pairs of the {len(split.test_mols):,} "
             "test molecules, in a Public and a Private group")
    fps = fingerprints([molecules.smiles[m] for m in split.test_mols])
    spectra_of = group_indices(split.test_spectrum_mol, len(split.test_mols))
    balance = None if types is None else keep_cross_share(types)
    drawn = split_test_pairs(fps, spectra_of, int(pairs_per_bin), float(public_fraction), streams.pairs, streams.usage,
                             draw=None if types is None else typed_cells(types, is_positive), balance=balance)
    if types is not None:
        _check_cross_rows(types, drawn, balance, echo)
    for usage, rows, group in ((PUBLIC, drawn.public_per_bin, drawn.public_molecules),
                               (PRIVATE, drawn.private_per_bin, ~drawn.public_molecules)):
        if not rows.sum():
            raise UserError(
                f"the {usage} group's {int(group.sum()):,} test molecules give no test pair: expected at least one "
                f"pair on each side (raise --test-fraction, or set --public-fraction nearer 0.5)"
            )
    pairs, similarity, is_public = drawn.pairs, drawn.similarity, drawn.is_public
    order = streams.pairs.permutation(len(pairs))
    pairs, similarity, is_public = pairs[order], similarity[order], is_public[order]
    swap = streams.pairs.random(len(pairs)) < 0.5
    pairs[swap] = pairs[swap][:, ::-1]
    usage = np.where(is_public, PUBLIC, PRIVATE).astype(object)
    pair_type = per_type_bin = None
    if types is not None:
        pair_type = np.array(types, dtype=object)[drawn.cell[order] // N_BINS]
        cells = (drawn.public_per_cell + drawn.private_per_cell).reshape(len(types), N_BINS)
        per_type_bin = {t: [int(x) for x in row] for t, row in zip(types, cells)}
    return _Pairs(pairs, similarity, drawn.per_bin, usage, drawn.public_molecules, drawn.public_per_bin, pair_type,
                  per_type_bin)


def _check_cross_rows(types, drawn, balance, echo):
    """Refuse a Usage without a cross-mode row; say how many same-mode rows made room for a quarter cross-mode."""
    if CROSS not in types:
        return
    start = types.index(CROSS) * N_BINS
    for usage, cells in ((PUBLIC, drawn.public_per_cell), (PRIVATE, drawn.private_per_cell)):
        if not cells[start : start + N_BINS].sum():
            raise UserError(
                f"the {usage} group's test molecules give no cross-mode pair: expected molecules measured in "
                "positive and in negative mode on each side (raise --test-fraction, or add negative spectra)"
            )
    if balance.left_out and len(types) > 1:
        echo(f"note: {balance.left_out:,} same-mode pairs left out so that cross-mode pairs are at least a quarter "
             f"of each Usage's rows (the library has few cross-mode pairs in some bins)")


@dataclass(frozen=True)
class _TestIds:
    """Neutral test ids in a shuffled order: neither an id nor a position in test.mgf
    leads back to a library record or to the library's order.

    ``neutral[p]`` is the id of the spectrum written at position ``p`` of test.mgf, which
    is test spectrum ``shuffled[p]``; ``of_test[k]`` is the id of test spectrum ``k``.
    """

    shuffled: np.ndarray
    neutral: np.ndarray
    of_test: np.ndarray

    @classmethod
    def draw(cls, n, rng):
        order = rng.permutation(n)
        neutral = np.array(neutral_ids(n), dtype=object)
        of_test = np.empty(n, dtype=object)
        of_test[order] = neutral
        return cls(order, neutral, of_test)


def _metadata(name, options, sources, report, spectra, split, pairs, test_ids):
    """competition.json without its file hashes (what participants may read)."""
    first = test_ids.neutral[0] if len(test_ids.neutral) else TEST_ID_PREFIX + "..."
    return {
        "name": name,
        "kit_version": __version__,
        "created_by": "kit prepare",
        "metric": {"name": "rmse", "direction": "minimize", "decimals": 5, "target": "similarity"},
        "label": {"definition": LABEL_DEFINITION, "fingerprint": "rdkit", "max_path": MAX_PATH, "fp_size": FP_SIZE,
                  "identity": "inchikey14"},
        "library": {
            "sources": [{k: v for k, v in source.items() if k not in PRIVATE_SOURCE_KEYS} for source in sources],
            "ionmode": options["ionmode"], "cleaning": report.as_dict(), "licenses": license_counts(spectra),
        },
        "options": options,
        "split": {
            "train_spectra": int(len(split.train_idx)), "test_spectra": int(len(split.test_idx)),
            "train_molecules": int((~split.is_test_molecule).sum()),
            "test_molecules": int(split.is_test_molecule.sum()),
            # Public and Private rows come from separate groups of test molecules (molecules
            # with identical fingerprints in one group): no spectrum or molecule is in both.
            "public_test_molecules": int(pairs.public_molecules.sum()),
            "private_test_molecules": int((~pairs.public_molecules).sum()),
        },
        "test_ids": f"neutral ({first} onwards), in a shuffled order",
        "pairs": {"bins": BIN_LABELS, "per_bin": [int(x) for x in pairs.per_bin], "total": int(len(pairs.pairs)),
                  "n_bins": N_BINS},
        "public_fraction": options["public_fraction"],
        "public_rows": int((pairs.usage == PUBLIC).sum()),
        "private_rows": int((pairs.usage == PRIVATE).sum()),
        "max_daily_submissions": MAX_DAILY_SUBMISSIONS,
    } | _new_kinds(split, pairs)


def _new_kinds(split, pairs):
    """What competition.json adds for pair types and a novelty split (nothing for a default competition)."""
    out = {}
    if pairs.pair_type is not None:
        out["pair_types"] = {"types": list(pairs.per_type_bin), "per_bin": pairs.per_type_bin,
                             "rows": {t: int((pairs.pair_type == t).sum()) for t in pairs.per_type_bin}}
    if split.familiarity is not None:
        band = _novelty_band(split, pairs)
        out["novelty"] = {
            "bands": list(BAND_LABELS),
            "band_of_a_pair": "maximum Tanimoto to the training molecules of the pair's less familiar molecule",
            "rows": {label: int((band == label).sum()) for label in BAND_LABELS},
            "test_molecules_per_band": {label: int(k) for label, k in zip(
                BAND_LABELS, np.bincount(novelty_bands(split.familiarity), minlength=len(BAND_LABELS)))},
        }
    return out


def _novelty_band(split, pairs):
    """Novelty band label of each test pair (its less familiar molecule's)."""
    mol = split.test_spectrum_mol[pairs.pairs]
    least = np.minimum(split.familiarity[mol[:, 0]], split.familiarity[mol[:, 1]])
    return np.array(BAND_LABELS, dtype=object)[novelty_bands(least)]


def _write_competition(tmp, spectra, ids, split, pairs, test_ids, meta):
    """Every file of the competition folder ``tmp`` but the private manifest; adds the hashes to ``meta``."""
    # Owner only whatever the umask: the answers must not be readable by other users of a shared machine.
    private_dir = tmp / files.PRIVATE_DIR
    private_dir.mkdir(mode=PRIVATE_DIR_MODE)
    private_dir.chmod(PRIVATE_DIR_MODE)
    save_records((strip_spectrum(spectra[i], ids[i], TRAIN_FIELDS) for i in split.train_idx), tmp / files.TRAIN_FILE)
    save_records(
        (strip_spectrum(spectra[split.test_idx[k]], test_ids.neutral[p], PUBLIC_FIELDS)
         for p, k in enumerate(test_ids.shuffled)),
        tmp / files.TEST_FILE,
    )
    rows = np.arange(len(pairs.pairs))
    _csv(tmp / files.PAIRS_FILE, {"id": rows, "spectrum_id_a": test_ids.of_test[pairs.pairs[:, 0]],
                                  "spectrum_id_b": test_ids.of_test[pairs.pairs[:, 1]]})
    _csv(tmp / files.SAMPLE_FILE, {"id": rows, "similarity": 0.5})
    _csv(tmp / files.SOLUTION_FILE, {"id": rows, "similarity": pairs.similarity, "Usage": pairs.usage})
    # Library ids are the library author's text: a teacher opens this file in a spreadsheet.
    source_ids = [spreadsheet_cell(ids[split.test_idx[k]]) for k in test_ids.shuffled]
    _csv(tmp / files.TEST_IDS_FILE, {"spectrum_id": test_ids.neutral, "source_spectrum_id": source_ids})
    # Same-molecule pairs share their precursor m/z, which the metric alone hides: the scorer
    # reports them apart. Private, and beside solution.csv, whose columns stay those Codabench reads.
    mol = split.test_spectrum_mol
    same = mol[pairs.pairs[:, 0]] == mol[pairs.pairs[:, 1]]
    details = {"id": rows, "same_molecule": same.astype(np.int64)}
    if pairs.pair_type is not None:
        details["pair_type"] = pairs.pair_type
    if split.familiarity is not None:
        details["novelty_band"] = _novelty_band(split, pairs)
    _csv(tmp / files.PAIR_DETAILS_FILE, details)
    meta["files"] = {f: sha256_file(tmp / f) for f in files.PUBLIC_FILES}
    (tmp / COMPETITION_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _csv(path, columns):
    pd.DataFrame(columns).to_csv(path, index=False, lineterminator="\n")


def _write_private_manifest(tmp, name, seed, sources, pairs):
    """private/manifest.json: the seed, the library's hashes, the rows of each Usage per bin and
    every file's hash; then owner-only modes."""
    private = {
        "name": name,
        "kit_version": __version__,
        "seed": int(seed),
        "library": {"sources": sources},
        "usage": {
            "public_per_bin": [int(x) for x in pairs.public_per_bin],
            "private_per_bin": [int(x) for x in pairs.per_bin - pairs.public_per_bin],
        },
        "files": {
            f: sha256_file(tmp / f)
            for f in (*files.PUBLIC_FILES, COMPETITION_FILE, *files.PRIVATE_FILES, files.PAIR_DETAILS_FILE)
        },
    }
    (tmp / files.MANIFEST_FILE).write_text(json.dumps(private, indent=2) + "\n", encoding="utf-8")
    for path in (tmp / files.PRIVATE_DIR).rglob("*"):
        path.chmod(PRIVATE_DIR_MODE if path.is_dir() else PRIVATE_FILE_MODE)


def _tell(echo, report, target, split, pairs, seed, libraries):
    """What was built, and the notes a teacher needs (seed 0, MassBank is public)."""
    for line in report.lines():
        echo(line)
    echo(
        f"wrote {target}: {len(split.train_idx):,} train / {len(split.test_idx):,} test spectra, "
        f"{int((~split.is_test_molecule).sum()):,} / {int(split.is_test_molecule.sum()):,} molecules, "
        f"{len(pairs.pairs):,} test pairs"
    )
    echo("pairs per Tanimoto bin: " + ", ".join(f"{label} {n}" for label, n in zip(BIN_LABELS, pairs.per_bin)))
    if pairs.pair_type is not None:
        echo("pairs per type: " + ", ".join(f"{t} {int((pairs.pair_type == t).sum()):,} "
                                            f"({(pairs.pair_type == t).mean():.1%})" for t in pairs.per_type_bin))
    if split.familiarity is not None:
        bands = np.bincount(novelty_bands(split.familiarity), minlength=len(BAND_LABELS))
        echo("test molecules by maximum Tanimoto to training: "
             + ", ".join(f"{label} {int(k):,}" for label, k in zip(BAND_LABELS, bands)))
    n_public = int((pairs.usage == PUBLIC).sum())
    echo(
        f"Public / Private: {n_public:,} / {len(pairs.usage) - n_public:,} rows "
        f"({n_public / max(1, len(pairs.usage)):.1%} Public), from {int(pairs.public_molecules.sum()):,} / "
        f"{int((~pairs.public_molecules).sum()):,} test molecules: no molecule on both sides"
    )
    if int(seed) == 0:
        echo(SEED_ZERO_WARNING)
    if any(str(x) == MASSBANK for x in libraries):
        echo(
            "note: MassBank is public: participants can find the test spectra in it by spectral search; "
            "fine for practice, see 'Integrity' in docs/teachers.md before grading on it"
        )
