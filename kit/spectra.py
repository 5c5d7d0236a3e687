"""Reading, cleaning and writing spectra through matchms.

Formats: MGF, MSP, mzML and JSON, each plain or gzip-compressed (``.gz``).
"""
import gzip
import inspect
import logging
import os
import shutil
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from kit.errors import UserError
from kit.fileio import atomic_path

FORMATS = ("mgf", "msp", "mzml", "json")
MZ_RANGE = (10.0, 1000.0)
MIN_PEAKS = 5


def spectrum_format(path):
    """The format of a spectra file from its name (``.gz`` allowed).

    Examples
    --------
    >>> spectrum_format("library.mgf.gz")
    'mgf'
    >>> spectrum_format("run.mzML")
    'mzml'
    """
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = name.rsplit(".", 1)[-1] if "." in name else ""
    if suffix not in FORMATS:
        raise UserError(
            f"{path}: unknown spectra format {('.' + suffix) if suffix else '(no extension)'}; "
            f"expected one of {', '.join('.' + f for f in FORMATS)}, optionally with .gz"
        )
    return suffix


def default_filters(mz_range=MZ_RANGE, min_peaks=MIN_PEAKS, ionmode="both"):
    """The cleaning pipeline applied by :func:`load_spectra`: matchms filters in order.

    Harmonises metadata (charge, compound name, precursor m/z, ion mode, undefined
    structure fields), requires a precursor m/z and the wanted ion mode, normalises
    intensities to a maximum of 1, keeps peaks within ``mz_range`` and requires at least
    ``min_peaks`` peaks.

    Examples
    --------
    >>> [name for name, _ in default_filters()][:3]
    ['make_charge_int', 'add_compound_name', 'interpret_pepmass']
    """
    from matchms import filtering as mf

    steps = [
        mf.make_charge_int,
        mf.add_compound_name,
        mf.interpret_pepmass,
        mf.add_precursor_mz,
        mf.derive_ionmode,
        mf.harmonize_undefined_inchikey,
        mf.harmonize_undefined_inchi,
        mf.harmonize_undefined_smiles,
        mf.require_precursor_mz,
        (mf.require_correct_ionmode, {"ion_mode_to_keep": ionmode}),
        mf.normalize_intensities,
        (mf.select_by_mz, {"mz_from": float(mz_range[0]), "mz_to": float(mz_range[1])}),
        (mf.require_minimum_number_of_peaks, {"n_required": int(min_peaks)}),
    ]
    named = []
    for step in steps:
        func, kwargs = step if isinstance(step, tuple) else (step, {})
        if "clone" in inspect.signature(func).parameters:
            # Each filter would otherwise copy the spectrum: the loaded list is ours to change.
            kwargs = {**kwargs, "clone": False}
        named.append((func.__name__, _bind(func, kwargs)))
    return named


def _bind(func, kwargs):
    def step(spectrum):
        return func(spectrum, **kwargs)

    return step


@dataclass
class CleaningReport:
    """How many spectra went in, came out, and which step dropped the others."""

    source: str
    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)

    def lines(self):
        """Human-readable lines, one per step that dropped something."""
        out = [f"{self.source}: read {self.read:,} spectra, kept {self.kept:,}"]
        out += [f"  dropped {n:,} by {reason}" for reason, n in self.dropped.most_common()]
        return out

    def as_dict(self):
        return {"source": self.source, "read": self.read, "kept": self.kept, "dropped": dict(self.dropped.most_common())}


def clean_spectra(spectra, filters=None, report=None, progress=False):
    """Apply a list of ``(name, filter)`` steps; count what each step drops.

    Parameters
    ----------
    spectra : iterable of matchms.Spectrum
    filters : list of (str, callable), optional
        Defaults to :func:`default_filters`.
    report : CleaningReport, optional
        Updated in place.
    progress : bool
        Show a progress bar.

    Returns
    -------
    list of matchms.Spectrum

    Examples
    --------
    >>> import numpy as np
    >>> from matchms import Spectrum
    >>> s = Spectrum(np.array([50.0, 60, 70, 80, 90]), np.array([1.0, 2, 3, 4, 5]),
    ...              metadata={"precursor_mz": 100.0, "ionmode": "positive"})
    >>> len(clean_spectra([s]))
    1
    """
    from tqdm import tqdm

    filters = default_filters() if filters is None else filters
    report = report if report is not None else CleaningReport(source="spectra")
    kept = []
    for spectrum in tqdm(spectra, desc="cleaning", unit=" spectra", disable=not progress, mininterval=0.5):
        report.read += 1
        for name, step in filters:
            spectrum = step(spectrum)
            if spectrum is None:
                report.dropped[name] += 1
                break
        else:
            kept.append(spectrum)
    report.kept += len(kept)
    return kept


def read_spectra(path):
    """Read every spectrum of a file with matchms, without cleaning (a generator).

    Gzip files are decompressed on the fly (MGF) or to a temporary file (other formats,
    whose matchms readers take a path). Unreadable files raise :class:`UserError`.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder: expected a spectra file ({', '.join(FORMATS)})")
    if not path.is_file():
        raise UserError(f"spectra file not found: {path}")
    fmt = spectrum_format(path)
    try:
        yield from _read(path, fmt)
    except UserError:
        raise
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError, KeyError) as exc:
        kind = "corrupt gzip file" if isinstance(exc, (gzip.BadGzipFile, EOFError, zlib.error)) else f"unreadable {fmt} file"
        raise UserError(f"{path}: {kind} ({type(exc).__name__}: {_first_line(exc)})") from None


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "no details"


def _read(path, fmt):
    from matchms import importing

    logging.getLogger("matchms").setLevel(logging.ERROR)
    gz = path.name.lower().endswith(".gz")
    if fmt == "mgf":
        if gz:
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
                yield from importing.load_from_mgf(handle)
        else:
            yield from importing.load_from_mgf(str(path))
        return
    loader = {"msp": importing.load_from_msp, "mzml": importing.load_from_mzml, "json": importing.load_from_json}[fmt]
    if not gz:
        yield from loader(str(path))
        return
    with tempfile.TemporaryDirectory(prefix="kit-") as tmp:
        plain = Path(tmp) / path.name[:-3]
        with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        yield from loader(str(plain))


def load_spectra(path, clean=True, ionmode="both", mz_range=MZ_RANGE, min_peaks=MIN_PEAKS, report=None, progress=False):
    """Load spectra from an MGF, MSP, mzML or JSON file (``.gz`` allowed), cleaned.

    Parameters
    ----------
    path : str or Path
    clean : bool
        Apply :func:`default_filters` (True) or return spectra as read (False).
    ionmode : {"both", "positive", "negative"}
        Ion mode to keep when cleaning.
    mz_range, min_peaks :
        Peak window and minimum number of peaks when cleaning.
    report : CleaningReport, optional
        Filled with the counts of what each step dropped.
    progress : bool
        Show a progress bar.

    Returns
    -------
    list of matchms.Spectrum

    Examples
    --------
    >>> spectra = load_spectra("library.mgf.gz")   # doctest: +SKIP
    """
    report = report if report is not None else CleaningReport(source=str(path))
    spectra = read_spectra(path)
    if not clean:
        out = list(spectra)
        report.read = report.kept = len(out)
        return out
    return clean_spectra(spectra, default_filters(mz_range, min_peaks, ionmode), report=report, progress=progress)


def save_spectra(spectra, path):
    """Write spectra to MGF (``.mgf``) atomically: a temporary file, then a rename.

    Examples
    --------
    >>> save_spectra([], "/tmp/kit-doc-example/empty.mgf")   # doctest: +SKIP
    """
    from matchms.exporting import save_as_mgf

    path = Path(path)
    if spectrum_format(path) != "mgf" or path.name.lower().endswith(".gz"):
        raise UserError(f"{path}: expected a .mgf file name to write")
    with atomic_path(path, suffix=".mgf") as tmp:
        # save_as_mgf appends to an existing file; the temporary file must start empty.
        os.unlink(tmp)
        save_as_mgf(list(spectra), str(tmp))
        if not tmp.exists():
            tmp.touch()
    return path
