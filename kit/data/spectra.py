"""Reading, cleaning and writing spectra through matchms.

Formats: MGF, MSP, mzML and JSON, each plain or gzip-compressed (``.gz``).
"""
import ast
import gzip
import inspect
import itertools
import json
import logging
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kit.constraints import Integral, Interval, check_param
from kit.errors import UserError, first_line
from kit.fileio import atomic_path
from kit.paths import StrPath
from kit.progress import progress as progress_bar
from kit.thirdparty import quiet_import

# matchms, and pyteomics' mzML reader, import psims, which warns about an optional codec
# the kit never uses: kit.thirdparty imports them with that one warning silenced. matchms
# brings its filtering, importing and exporting modules with it.
matchms = quiet_import("matchms")
mgf = quiet_import("pyteomics.mgf")
mzml = quiet_import("pyteomics.mzml")
# matchms.importing names functions after these modules, which hide them as attributes.
matchms_msp = quiet_import("matchms.importing.load_from_msp")
matchms_json = quiet_import("matchms.importing.load_from_json")

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
    steps = [
        matchms.filtering.make_charge_int,
        matchms.filtering.add_compound_name,
        matchms.filtering.interpret_pepmass,
        matchms.filtering.add_precursor_mz,
        require_finite_values,
        matchms.filtering.derive_ionmode,
        matchms.filtering.harmonize_undefined_inchikey,
        matchms.filtering.harmonize_undefined_inchi,
        matchms.filtering.harmonize_undefined_smiles,
        matchms.filtering.require_precursor_mz,
        (matchms.filtering.require_correct_ionmode, {"ion_mode_to_keep": ionmode}),
        matchms.filtering.normalize_intensities,
        (matchms.filtering.select_by_mz, {"mz_from": float(mz_range[0]), "mz_to": float(mz_range[1])}),
        (matchms.filtering.require_minimum_number_of_peaks, {"n_required": int(min_peaks)}),
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
    filters = default_filters() if filters is None else filters
    report = report if report is not None else CleaningReport(source="spectra")
    kept = []
    for spectrum in progress_bar(spectra, desc="cleaning", unit=" spectra", disable=not progress):
        spectrum = _clean_one(spectrum, filters, report)
        if spectrum is not None:
            kept.append(spectrum)
    report.kept += len(kept)
    return kept


def _clean_one(spectrum, filters, report):
    """``spectrum`` through ``filters``, or None with the step that dropped it counted in ``report``."""
    report.read += 1
    for name, step in filters:
        spectrum = step(spectrum)
        if spectrum is None:
            report.dropped[name] += 1
            return None
    return spectrum


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
    if path.exists() and not path.is_file():
        raise UserError(f"{path} is not a regular file (a pipe or a device?): expected a spectra file")
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
    except Exception as exc:  # noqa: BLE001 - the file is untrusted: whatever a reader trips on is a bad file
        if isinstance(exc, (gzip.BadGzipFile, EOFError, zlib.error)):
            raise UserError(f"{path}: corrupt gzip file ({type(exc).__name__}: {first_line(exc)})") from None
        raise _unreadable(path, fmt, type(exc).__name__, first_line(exc)) from None


def _unreadable(path, fmt, kind, line):
    """The :class:`UserError` for a file whose reading raised an error of type ``kind`` saying ``line``."""
    return UserError(f"{path}: unreadable {fmt} file ({kind}: {line}); expected {EXPECTED[fmt]}")


def _read(path, fmt, report):
    """The spectra of a file: its records (:func:`_records`), each made a Spectrum (or dropped, counted)."""
    build = _BUILDERS[fmt]
    for record in _records(path, fmt):
        spectrum = build(record, report)
        if spectrum is not None:
            yield spectrum


def _records(path, fmt):
    """The raw records of a file (the reader's dicts), before any becomes a matchms Spectrum."""
    logging.getLogger("matchms").setLevel(logging.ERROR)
    if path.name.lower().endswith(".gz"):
        if fmt == "mgf":
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
                yield from _RECORDS[fmt](handle)
            return
        with tempfile.TemporaryDirectory(prefix="kit-") as tmp:
            plain = Path(tmp) / path.name[:-3]
            with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            yield from _RECORDS[fmt](str(plain))
        return
    yield from _RECORDS[fmt](str(path))


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


def _mgf_records(source):

    with mgf.MGF(source, convert_arrays=1, encoding="utf-8") as reader:
        for number, record in enumerate(reader, 1):
            if record is None:  # pyteomics' answer to a record that never reaches END IONS
                raise ValueError(f"record {number:,} has no END IONS line (is the file cut short?)")
            yield record


def _mgf_spectrum(record, report, spectrum_type="pyteomics"):

    if _kept(record["m/z array"], record["intensity array"], report):
        return matchms.importing.parsing_utils.parse_spectrum_dict(
            spectrum=record, metadata_harmonization=True, spectrum_type=spectrum_type
        )
    return None


# A number in a peak line, NaN and infinities included (so that they can be counted and
# dropped rather than silently skipped), signs kept (so that negative intensities are seen).
_PEAK_NUMBER = re.compile(r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf(?:inity)?)", re.IGNORECASE)


def _parse_msp(source):
    """MSP records as matchms' MSP reader makes them, with line numbers in every error.

    matchms' own loop skips a peak it cannot read as a plain number, drops minus signs
    and ends a file silently in the middle of a record; here each of those is either
    kept for cleaning to judge or refused with the line where it happened.
    """
    params, masses, intensities, comments, expected = {}, [], [], {}, None
    with open(source, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            text = line.rstrip()
            if not text:
                continue
            if expected is None or matchms_msp.contains_metadata(text):
                if not matchms_msp.contains_metadata(text):
                    raise ValueError(f"line {number:,}: a peak line before 'Num Peaks:' ({text[:60]!r})")
                matchms_msp.parse_metadata(text, params)
                if "num peaks" in params and expected is None:
                    try:
                        expected = int(params["num peaks"])
                    except (TypeError, ValueError):
                        raise ValueError(f"line {number:,}: 'Num Peaks' is {params['num peaks']!r}, not a whole number") from None
                    if expected <= 0:
                        yield {"params": params, "m/z array": np.array([]), "intensity array": np.array([]), "peak comments": {}}
                        params, expected = {}, None
                continue
            comment, values = matchms_msp.get_peak_comment(text)
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


def _msp_spectrum(record, report):
    return _mgf_spectrum(record, report, spectrum_type="own")


def _mzml_records(source):

    with mzml.read(source, dtype=dict) as reader:
        for record in reader:
            if record.get("ms level") == 2:
                yield record


def _mzml_spectrum(record, report):

    mz = np.asarray(record["m/z array"], dtype=float)
    intensities = np.asarray(record["intensity array"], dtype=float)
    if not _kept(mz, intensities, report):
        return None
    mz, intensities = matchms.importing.parsing_utils.sort_by_mz(mz=mz, intensities=intensities)
    metadata = matchms.importing.parsing_utils.parse_mzml_mzxml_metadata(record)
    return matchms.Spectrum(mz=mz, intensities=intensities, metadata=metadata)


def _json_records(source):

    with open(source, "rb") as handle:
        records = json.load(handle)
    if not isinstance(records, list):
        raise ValueError(f"found a JSON {type(records).__name__}, not a list")
    for record in records:
        if not isinstance(record, dict):
            raise ValueError(f"found a list item of type {type(record).__name__}, not an object")
        yield record


def _json_spectrum(record, report):


    peaks = record.get("peaks_json")
    peaks = ast.literal_eval(peaks) if isinstance(peaks, str) else peaks
    if isinstance(peaks, list) and peaks:
        array = np.asarray(peaks, dtype=float)
        if array.ndim != 2 or array.shape[1] != 2:
            raise ValueError(f"found peaks of shape {array.shape}, not [m/z, intensity] pairs")
        if not _kept(array[:, 0], array[:, 1], report):
            return None
    return matchms_json.as_spectrum(record)


# Reading is two steps, so that the second can run in worker processes: a format's records
# (read in order, in one process) and the Spectrum made of each record (None: dropped).
_RECORDS = {"mgf": _mgf_records, "msp": _parse_msp, "mzml": _mzml_records, "json": _json_records}
_BUILDERS = {"mgf": _mgf_spectrum, "msp": _msp_spectrum, "mzml": _mzml_spectrum, "json": _json_spectrum}


def load_spectra(
    path: StrPath, clean: bool = True, ionmode: str = "both", mz_range: tuple[float, float] = MZ_RANGE,
    min_peaks: int = MIN_PEAKS, report: CleaningReport | None = None, progress: bool = False, jobs: int | None = 1,
    convert: Callable[[matchms.Spectrum], Any] | None = None,
) -> list[matchms.Spectrum]:
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
    jobs : int, optional
        Processes that make and clean the spectra when cleaning (``None``: one per CPU;
        never more than one per CPU, as each is a copy of this process).
        The file is read in this process and its records are handed out in chunks of
        :data:`CHUNK_RECORDS`; the results come back in the file's order, so the spectra
        and the report are those of ``jobs=1``. A file of one chunk is cleaned here.
    convert : callable, optional
        Applied to each cleaned spectrum (in the worker processes when ``jobs > 1``, which
        then send back only what it returns); a module-level function, so that it pickles.

    Returns
    -------
    list of matchms.Spectrum
        Or of what ``convert`` returns, when it is given.

    Examples
    --------
    >>> spectra = load_spectra("library.mgf.gz", jobs=2)   # doctest: +SKIP
    """
    report = report if report is not None else CleaningReport(source=str(path))
    jobs = check_jobs(jobs)
    if clean and jobs > 1:
        return _load_in_pool(path, (mz_range, min_peaks, ionmode), report, jobs, progress, convert)
    spectra = read_spectra(path, report=report)
    if not clean:
        out = list(spectra)
        report.read += len(out)
        report.kept += len(out)
    else:
        out = clean_spectra(spectra, default_filters(mz_range, min_peaks, ionmode), report=report, progress=progress)
    return out if convert is None else [convert(s) for s in out]


def save_records(records, path):
    """Write ``(metadata, mz, intensities)`` records to MGF, byte for byte as :func:`save_spectra`.

    :func:`save_spectra` goes through matchms's ``save_as_mgf`` (pyteomics' writer), which
    needs a matchms ``Spectrum`` per record and formats each peak in a Python loop; this
    writes the same text from plain dicts and arrays: keys in pyteomics' order, upper-cased,
    its formatters for ``CHARGE`` and ``PEPMASS``, one ``"m/z intensity "`` line per peak.
    ``metadata`` holds matchms keys (as ``Spectrum.metadata_dict()`` gives them).

    Examples
    --------
    >>> import numpy as np
    >>> save_records([({"spectrum_id": "s1"}, np.array([50.0]), np.array([1.0]))], "/tmp/x.mgf")  # doctest: +SKIP
    """
    path = Path(path)
    if spectrum_format(path) != "mgf" or path.name.lower().endswith(".gz"):
        raise UserError(f"{path}: expected a .mgf file name to write")
    with atomic_path(path, suffix=".mgf") as tmp:
        # The encoding and newlines of save_as_mgf (pyteomics opens the file in text mode).
        with open(tmp, "w", encoding="utf-8") as handle:
            for metadata, mz, intensities in records:
                handle.write(mgf_record(metadata, mz, intensities))
    return path


def mgf_record(metadata, mz, intensities):
    """One MGF record as pyteomics' ``mgf.write`` writes it (with matchms's ``save_as_mgf`` options).

    Examples
    --------
    >>> import numpy as np
    >>> print(mgf_record({"spectrum_id": "s1", "charge": 1}, np.array([50.0, 61.5]), np.array([1.0, 0.25])), end="")
    BEGIN IONS
    CHARGE=1+
    SPECTRUM_ID=s1
    50.0 1.0
    61.5 0.25
    END IONS
    <BLANKLINE>
    """
    # pyteomics' defaults for key order and value formatters (what mgf.write uses unless told otherwise).
    order, formatters, plain = mgf._default_key_order, mgf._default_value_formatters, mgf._default_repr
    lines = ["BEGIN IONS\n"]
    for key in dict.fromkeys([*(k for k in order if k in metadata), *metadata]):
        value = metadata[key]
        if key != "fingerprint" and value != None:  # noqa: E711 - pyteomics' test: a header value, None here
            lines.append(formatters.get(key, plain)(key, value) + "\n")
    if getattr(mz, "dtype", None) == np.float64 and getattr(intensities, "dtype", None) == np.float64:
        # repr of a Python float is str of a numpy float64 (shortest round trip), and much faster.
        lines += map("{!r} {!r} \n".format, mz.tolist(), intensities.tolist())
    else:
        lines += ["{} {} {}\n".format(m, i, "") for m, i in zip(mz, intensities)]
    lines.append("END IONS\n\n")
    return "".join(lines)


# Records per chunk handed to a worker process: large enough that sending a chunk costs
# little next to cleaning it, small enough that both workers start at once.
CHUNK_RECORDS = 2000


#: What ``jobs`` may be (``None`` aside): the same check for the API and ``kit prepare --jobs``.
JOBS = Interval(Integral, 1, None)


def check_jobs(jobs):
    """``jobs`` as a whole number of processes (``None``: one per CPU this process may use).

    Raises
    ------
    TypeError
        When ``jobs`` is not an integer (``True`` and ``1.5`` are not).
    kit.errors.UserError
        When it is below 1.

    Examples
    --------
    >>> check_jobs(2), check_jobs(None) >= 1
    (2, True)
    """
    if jobs is None:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    return check_param(jobs, "jobs", JOBS)


def _load_in_pool(path, filter_options, report, jobs, progress, convert):
    """:func:`load_spectra` with the records made into spectra and cleaned by ``jobs`` processes, in order."""


    # Each worker is a copy of this process: more of them than CPUs clean no faster and could exhaust the machine.
    jobs = min(jobs, check_jobs(None))
    path, fmt = _checked_file(path, None)
    chunks = _chunks(_reading(path, fmt, _records(path, fmt)), CHUNK_RECORDS)
    first = next(chunks, [])
    chunks = itertools.chain([first] if first else [], chunks)
    bar = progress_bar(itertools.repeat(None), desc="cleaning", unit=" spectra", disable=not progress)
    try:
        kept, read_error = _clean_in_pool(chunks, jobs if len(first) == CHUNK_RECORDS else 0, path, fmt,
                                          filter_options, convert, report, bar)
    except BrokenProcessPool:
        raise UserError(
            f"{path}: a worker process cleaning it stopped abruptly (killed, or out of memory?): "
            "try fewer --jobs, or --jobs 1"
        ) from None
    bar.close()
    if read_error is not None:
        raise read_error
    report.kept += len(kept)
    return kept


def _clean_in_pool(chunks, workers, path, fmt, filter_options, convert, report, bar):
    """The kept spectra of ``chunks`` cleaned by ``workers`` processes, and the reading error that ended them."""

    jobs = max(workers, 1)
    kept, pending, read_error = [], deque(), None
    with _Pool(workers) as pool:
        while read_error is None:
            try:
                chunk = next(chunks)
            except StopIteration:
                break
            except UserError as exc:
                # One process would meet the records before this one first: their errors come first.
                read_error = exc
                break
            pending.append(pool.submit(_clean_chunk, fmt, filter_options, convert, chunk))
            # At most two chunks a worker in flight: memory stays bounded by what is kept.
            while len(pending) > 2 * jobs or (pending and pending[0].done()):
                _merge(pending.popleft().result(), path, fmt, report, kept, bar)
        while pending:
            _merge(pending.popleft().result(), path, fmt, report, kept, bar)
    return kept, read_error


def _chunks(records, size):
    """Lists of ``size`` records; when reading fails, the records before the error come first."""
    chunk = []
    try:
        for record in records:
            chunk.append(record)
            if len(chunk) == size:
                yield chunk
                chunk = []
    except UserError:
        if chunk:
            yield chunk
        raise
    if chunk:
        yield chunk


def _merge(result, path, fmt, report, kept, bar):
    """Add one chunk's spectra and counts; raise the reading error that ended the chunk, if any."""
    spectra, chunk_report, error = result
    kept += spectra
    report.read += chunk_report.read
    for reason, n in chunk_report.dropped.items():  # in order: the report's ties stay those of one process
        report.dropped[reason] += n
    for _ in spectra:
        next(bar)
    if error is not None:
        raise _unreadable(path, fmt, *error)


def _clean_chunk(fmt, filter_options, convert, records):
    """In a worker: make each record a Spectrum and clean it, as :func:`load_spectra` does in one process.

    Returns the kept spectra, the chunk's :class:`CleaningReport` and, when making a
    record failed, that error as ``(type name, first line)`` (the spectra before it are kept).
    """
    logging.getLogger("matchms").setLevel(logging.ERROR)
    filters = _worker_filters(*filter_options)
    build = _BUILDERS[fmt]
    report = CleaningReport(source="")
    kept = []
    for record in records:
        try:
            spectrum = build(record, report)
        except (UserError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - a bad record is a bad file, reported like one
            return kept, report, (type(exc).__name__, first_line(exc))
        if spectrum is not None:
            spectrum = _clean_one(spectrum, filters, report)
            if spectrum is not None:
                kept.append(spectrum if convert is None else convert(spectrum))
    return kept, report, None


_FILTERS = {}


def _worker_filters(mz_range, min_peaks, ionmode):
    key = (tuple(mz_range), min_peaks, ionmode)
    if key not in _FILTERS:
        _FILTERS[key] = default_filters(mz_range, min_peaks, ionmode)
    return _FILTERS[key]


def _ignore_interrupts():
    """In a worker: Ctrl-C is for the main process, which stops the pool (no traceback from each worker)."""

    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Pool:
    """A process pool, or, with 0 workers, one that runs each task here at once.

    On Linux the workers are forked: they start at once with what this process has
    imported, and a script that calls :func:`load_spectra` at its top level (without a
    ``__main__`` guard) is not run again in each of them, as a fresh interpreter would.
    """
    def __init__(self, workers):
        self.workers = workers
        self.executor = None

    def __enter__(self):
        if self.workers:
            context = multiprocessing.get_context("fork") if sys.platform.startswith("linux") else None
            self.executor = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_ignore_interrupts)
        return self

    def submit(self, func, *args):
        if self.executor is not None:
            return self.executor.submit(func, *args)
        future = Future()
        future.set_result(func(*args))
        return future

    def __exit__(self, *exc):
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)


def save_spectra(spectra: Iterable[matchms.Spectrum], path: StrPath) -> Path:
    """Write spectra to MGF (``.mgf``) atomically: a temporary file, then a rename.

    Examples
    --------
    >>> save_spectra([], "/tmp/kit-doc-example/empty.mgf")   # doctest: +SKIP
    """
    path = Path(path)
    if spectrum_format(path) != "mgf" or path.name.lower().endswith(".gz"):
        raise UserError(f"{path}: expected a .mgf file name to write")
    with atomic_path(path, suffix=".mgf") as tmp:
        # save_as_mgf appends to an existing file; the temporary file must start empty.
        os.unlink(tmp)
        matchms.exporting.save_as_mgf(list(spectra), str(tmp))
        if not tmp.exists():
            tmp.touch()
    return path
