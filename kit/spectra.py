"""Reading, cleaning and writing spectra through matchms.

Formats: MGF, MSP, mzML and JSON, each plain or gzip-compressed (``.gz``).
"""
import gzip
import inspect
import logging
import os
import re
import shutil
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kit.errors import UserError, first_line
from kit.fileio import atomic_path
from kit.thirdparty import import_matchms

FORMATS = ("mgf", "msp", "mzml", "json")
MZ_RANGE = (10.0, 1000.0)
MIN_PEAKS = 5
# The cleaning step (and report line) for NaN or infinite values, whether the reader or the filter finds them.
NON_FINITE = "require_finite_values"
# What each reader expects, for the message when a file does not parse.
EXPECTED = {
    "mgf": "BEGIN IONS ... END IONS records with one 'm/z intensity' pair per peak line",
    "msp": "records of 'Name:' and other 'key: value' lines, 'Num Peaks: N', then N 'm/z intensity' lines",
    "mzml": "an mzML (XML) document with MS2 spectra",
    "json": "a JSON list of spectrum objects with a 'peaks_json' list of [m/z, intensity] pairs",
}


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
    import_matchms()
    from matchms import filtering as mf

    steps = [
        mf.make_charge_int,
        mf.add_compound_name,
        mf.interpret_pepmass,
        mf.add_precursor_mz,
        require_finite_values,
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


def finite_peaks(mz, intensities):
    """True when every m/z and intensity is a finite number and no intensity is negative.

    Examples
    --------
    >>> finite_peaks([50.0, 60.0], [1.0, 0.5]), finite_peaks([50.0, float("nan")], [1.0, 0.5])
    (True, False)
    """
    mz, intensities = np.asarray(mz, dtype=float), np.asarray(intensities, dtype=float)
    return bool(np.isfinite(mz).all() and np.isfinite(intensities).all() and (intensities >= 0).all())


def require_finite_values(spectrum):
    """``spectrum`` unless a peak or its precursor m/z is NaN or infinite, or an intensity is negative.

    Broken values would otherwise reach the written files or turn into NaN when the
    intensities are normalised.

    Examples
    --------
    >>> from matchms import Spectrum
    >>> s = Spectrum(np.array([50.0, 60.0]), np.array([1.0, np.inf]), metadata={"precursor_mz": 100.0})
    >>> require_finite_values(s) is None
    True
    """
    if spectrum is None:
        return None
    precursor = spectrum.get("precursor_mz")
    if precursor is not None:
        try:
            if not np.isfinite(float(precursor)):
                return None
        except (TypeError, ValueError):
            return None
    return spectrum if finite_peaks(spectrum.peaks.mz, spectrum.peaks.intensities) else None


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
    from kit.progress import progress as progress_bar

    filters = default_filters() if filters is None else filters
    report = report if report is not None else CleaningReport(source="spectra")
    kept = []
    for spectrum in progress_bar(spectra, desc="cleaning", unit=" spectra", disable=not progress):
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


def read_spectra(path, report=None, fmt=None):
    """Read every spectrum of a file with matchms, without cleaning (a generator).

    Gzip files are decompressed on the fly (MGF) or to a temporary file (other formats,
    whose readers take a path). Records whose peaks hold NaN or infinite values are
    skipped and counted in ``report`` (matchms cannot hold them). A file that does not
    parse raises :class:`UserError` naming it. ``fmt`` gives the format of a file whose
    name does not say it (a download under a temporary name).

    Examples
    --------
    >>> spectra = list(read_spectra("library.mgf"))   # doctest: +SKIP
    """
    path, fmt = _checked_file(path, fmt)
    report = report if report is not None else CleaningReport(source=str(path))
    yield from _reading(path, fmt, _read(path, fmt, report))


def count_records(path, fmt=None):
    """How many records a spectra file holds, every one parsed (a :class:`UserError` if one does not).

    Plain MSP files (what MassBank publishes) are parsed record by record without
    building matchms spectra, several times faster than :func:`read_spectra`; other
    files are read in full.

    Examples
    --------
    >>> count_records("MassBank_NISTformat.msp")   # doctest: +SKIP
    """
    path, fmt = _checked_file(path, fmt)
    if fmt == "msp" and not path.name.lower().endswith(".gz"):
        records = _parse_msp(str(path))
    else:
        records = _read(path, fmt, CleaningReport(source=str(path)))
    return sum(1 for _ in _reading(path, fmt, records))


def _checked_file(path, fmt):
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder: expected a spectra file ({', '.join(FORMATS)})")
    if not path.is_file():
        raise UserError(f"spectra file not found: {path}")
    fmt = spectrum_format(path) if fmt is None else fmt
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, found {fmt!r}")
    return path, fmt


def _reading(path, fmt, records):
    """``records``, with whatever the reader trips on turned into one :class:`UserError` naming the file."""
    try:
        yield from records
    except (UserError, MemoryError):
        raise
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise UserError(f"{path}: corrupt gzip file ({type(exc).__name__}: {first_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - the file is untrusted: whatever a reader trips on is a bad file
        raise UserError(
            f"{path}: unreadable {fmt} file ({type(exc).__name__}: {first_line(exc)}); expected {EXPECTED[fmt]}"
        ) from None


def _read(path, fmt, report):
    logging.getLogger("matchms").setLevel(logging.ERROR)
    if path.name.lower().endswith(".gz"):
        if fmt == "mgf":
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
                yield from _READERS[fmt](handle, report)
            return
        with tempfile.TemporaryDirectory(prefix="kit-") as tmp:
            plain = Path(tmp) / path.name[:-3]
            with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            yield from _READERS[fmt](str(plain), report)
        return
    yield from _READERS[fmt](str(path), report)


def _kept(mz, intensities, report):
    """Whether a record's peaks can become a Spectrum; broken ones are counted as read and dropped."""
    try:
        ok = finite_peaks(mz, intensities)
    except (TypeError, ValueError):
        return True  # not numbers at all: the reader's own error names the problem
    if not ok:
        report.read += 1
        report.dropped[NON_FINITE] += 1
    return ok


def _read_mgf(source, report):
    import_matchms()
    from matchms.importing.parsing_utils import parse_spectrum_dict
    from pyteomics.mgf import MGF

    with MGF(source, convert_arrays=1, encoding="utf-8") as reader:
        for number, record in enumerate(reader, 1):
            if record is None:  # pyteomics' answer to a record that never reaches END IONS
                raise ValueError(f"record {number:,} has no END IONS line (is the file cut short?)")
            if _kept(record["m/z array"], record["intensity array"], report):
                yield parse_spectrum_dict(spectrum=record, metadata_harmonization=True)


# A number in a peak line, NaN and infinities included (so that they can be counted and
# dropped rather than silently skipped), signs kept (so that negative intensities are seen).
_PEAK_NUMBER = re.compile(r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf(?:inity)?)", re.IGNORECASE)


def _parse_msp(source):
    """MSP records as matchms' MSP reader makes them, with line numbers in every error.

    matchms' own loop skips a peak it cannot read as a plain number, drops minus signs
    and ends a file silently in the middle of a record; here each of those is either
    kept for cleaning to judge or refused with the line where it happened.
    """
    import_matchms()
    from matchms.importing.load_from_msp import contains_metadata, get_peak_comment, parse_metadata

    params, masses, intensities, comments, expected = {}, [], [], {}, None
    with open(source, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            text = line.rstrip()
            if not text:
                continue
            if expected is None or contains_metadata(text):
                if not contains_metadata(text):
                    raise ValueError(f"line {number:,}: a peak line before 'Num Peaks:' ({text[:60]!r})")
                parse_metadata(text, params)
                if "num peaks" in params and expected is None:
                    try:
                        expected = int(params["num peaks"])
                    except (TypeError, ValueError):
                        raise ValueError(f"line {number:,}: 'Num Peaks' is {params['num peaks']!r}, not a whole number") from None
                    if expected <= 0:
                        yield {"params": params, "m/z array": np.array([]), "intensity array": np.array([]), "peak comments": {}}
                        params, expected = {}, None
                continue
            comment, values = get_peak_comment(text)
            tokens = _PEAK_NUMBER.findall(values)
            if not tokens or len(tokens) % 2:
                raise ValueError(f"line {number:,}: expected 'm/z intensity' pairs, found {text[:60]!r}")
            masses += [float(t) for t in tokens[0::2]]
            intensities += [float(t) for t in tokens[1::2]]
            if comment is not None:
                comments[masses[-1]] = comment
            if len(masses) >= expected:
                yield {
                    "params": params, "m/z array": np.array(masses), "intensity array": np.array(intensities),
                    "peak comments": comments,
                }
                params, masses, intensities, comments, expected = {}, [], [], {}, None
    if expected is not None:
        raise ValueError(f"the last record ends after {len(masses):,} of its {expected:,} peaks (is the file cut short?)")


def _read_msp(source, report):
    import_matchms()
    from matchms.importing.parsing_utils import parse_spectrum_dict

    for record in _parse_msp(source):
        if _kept(record["m/z array"], record["intensity array"], report):
            yield parse_spectrum_dict(spectrum=record, metadata_harmonization=True, spectrum_type="own")


def _read_mzml(source, report):
    import_matchms()
    from matchms import Spectrum
    from matchms.importing.parsing_utils import parse_mzml_mzxml_metadata, sort_by_mz
    from pyteomics.mzml import read

    with read(source, dtype=dict) as reader:
        for record in reader:
            if record.get("ms level") != 2:
                continue
            mz = np.asarray(record["m/z array"], dtype=float)
            intensities = np.asarray(record["intensity array"], dtype=float)
            if _kept(mz, intensities, report):
                mz, intensities = sort_by_mz(mz=mz, intensities=intensities)
                yield Spectrum(mz=mz, intensities=intensities, metadata=parse_mzml_mzxml_metadata(record))


def _read_json(source, report):
    import ast
    import json

    import_matchms()
    from matchms.importing.load_from_json import as_spectrum

    with open(source, "rb") as handle:
        records = json.load(handle)
    if not isinstance(records, list):
        raise ValueError(f"found a JSON {type(records).__name__}, not a list")
    for record in records:
        if not isinstance(record, dict):
            raise ValueError(f"found a list item of type {type(record).__name__}, not an object")
        peaks = record.get("peaks_json")
        peaks = ast.literal_eval(peaks) if isinstance(peaks, str) else peaks
        if isinstance(peaks, list) and peaks:
            array = np.asarray(peaks, dtype=float)
            if array.ndim != 2 or array.shape[1] != 2:
                raise ValueError(f"found peaks of shape {array.shape}, not [m/z, intensity] pairs")
            if not _kept(array[:, 0], array[:, 1], report):
                continue
        spectrum = as_spectrum(record)
        if spectrum is not None:
            yield spectrum


_READERS = {"mgf": _read_mgf, "msp": _read_msp, "mzml": _read_mzml, "json": _read_json}


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
    spectra = read_spectra(path, report=report)
    if not clean:
        out = list(spectra)
        report.read += len(out)
        report.kept += len(out)
        return out
    return clean_spectra(spectra, default_filters(mz_range, min_peaks, ionmode), report=report, progress=progress)


def save_spectra(spectra, path):
    """Write spectra to MGF (``.mgf``) atomically: a temporary file, then a rename.

    Examples
    --------
    >>> save_spectra([], "/tmp/kit-doc-example/empty.mgf")   # doctest: +SKIP
    """
    import_matchms()
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
