"""Reading a submission file and checking it against the rules of the format.

A valid submission has the header ``id,similarity``, one row per id of the competition,
in any order, and a finite number in every row. Each broken rule is reported as one
:class:`~kit.errors.SubmissionError` line: the rule, what was expected, what was found
and the first offending lines.

Speed: the file is read once as bytes (its size capped first), parsed by pandas' C
reader with fixed dtypes, and checked with NumPy. Only when something is wrong does a
slower line-by-line pass run, to find and quote the offending lines.
"""
import codecs
import csv
import io
import math
import re
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from kit.errors import SubmissionError
from kit.safetext import printable

HEADER = ("id", "similarity")
#: How many offending lines a message quotes.
SHOWN = 5
#: Generous bytes per row: ``123456,0.12345678901234567`` is 26; quotes and spaces fit.
BYTES_PER_ROW = 100
#: Size allowed whatever the row count (small competitions, hand-made files).
BASE_BYTES = 1 << 20
#: Cap when the expected rows are unknown (checking a file for Kaggle).
UNKNOWN_ROWS_MAX_BYTES = 512 << 20
#: Largest similarity accepted, in absolute value. Tanimoto lies in [0, 1]; values a
#: little outside are scored as written (with a warning), but 1e308 is no similarity and
#: its squared error overflows to infinity. Below 1e6 every diagnostic stays finite for
#: any number of rows a competition can have (squares below 1e13 per row).
MAX_ABS_VALUE = 1e6
VALUE_RANGE = "[-{0}, {0}]".format(f"{MAX_ABS_VALUE:.0e}".replace("e+0", "e"))

_BOMS = (
    (codecs.BOM_UTF8, "a UTF-8 byte-order mark (BOM)"),
    (codecs.BOM_UTF32_LE, "a UTF-32 byte-order mark"),
    (codecs.BOM_UTF32_BE, "a UTF-32 byte-order mark"),
    (codecs.BOM_UTF16_LE, "a UTF-16 byte-order mark"),
    (codecs.BOM_UTF16_BE, "a UTF-16 byte-order mark"),
)
_LINE_END = re.compile(r"\r\n|\n|\r")
_LINE_END_BYTES = re.compile(rb"\r\n|\n|\r")
#: 10, 100, ... 10**18: digits of an id = 1 + how many of these it reaches.
_POWERS_OF_TEN = 10 ** np.arange(1, 19, dtype=np.int64)
_INT_RE = re.compile(r"\s*[+-]?\d+\s*\Z", re.ASCII)  # pandas reads ASCII digits only
_INT64_MAX = np.iinfo(np.int64).max
# Bytes that can only reach an id field through a float spelling such as 1.0 or 1e3.
_FLOAT_ONLY = np.zeros(256, dtype=bool)
_FLOAT_ONLY[[ord("."), ord("e"), ord("E")]] = True
_DELIMITER = np.zeros(256, dtype=bool)
_DELIMITER[[ord(","), ord("\n"), ord("\r")]] = True


@dataclass
class Submission:
    """A parsed, valid submission.

    Attributes
    ----------
    ids, values : numpy.ndarray
        In file order (int64 and float64).
    order : numpy.ndarray or None
        When checked against expected ids: for each expected id, the row holding it.
    sha256 : str
        Hash of the file's bytes.
    warnings : list of str
        Problems that do not invalidate the file (values outside [0, 1]).
    """

    path: Path
    ids: np.ndarray
    values: np.ndarray
    sha256: str
    size: int
    order: np.ndarray = None
    warnings: list = field(default_factory=list)

    @property
    def rows(self):
        return int(self.ids.size)

    def aligned_values(self):
        """Values in the order of the expected ids (requires ``order``)."""
        return self.values[self.order]


def max_bytes_for(n_rows):
    """The largest submission accepted for ``n_rows`` expected rows.

    Examples
    --------
    >>> max_bytes_for(1000) == (1 << 20) + 100_000
    True
    """
    if n_rows is None:
        return UNKNOWN_ROWS_MAX_BYTES
    return BASE_BYTES + BYTES_PER_ROW * int(n_rows)


def read_submission(path, expected_ids=None):
    """Read and check a submission file.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    expected_ids : array-like of int, optional
        The ids of the competition (test_pairs.csv or the solution). Without them only
        the file's shape is checked: header, whole-number unique ids, finite values.

    Returns
    -------
    Submission

    Raises
    ------
    SubmissionError
        One line naming the rule broken and the first offending lines.

    Examples
    --------
    >>> from pathlib import Path
    >>> _ = Path("/tmp/kit-doc-sub.csv").write_text("id,similarity\\n1,0.5\\n0,0.25\\n")
    >>> sub = read_submission("/tmp/kit-doc-sub.csv", expected_ids=[0, 1])
    >>> sub.aligned_values().tolist()
    [0.25, 0.5]
    """
    try:
        return _read_submission(Path(path), expected_ids)
    except SubmissionError as exc:
        # The path and quoted lines come from the participant: one printable line, so
        # that no control character (ANSI escape, bidi override, newline) reaches a terminal.
        raise SubmissionError(printable(exc)) from None


def _read_submission(path, expected_ids):
    expected = None if expected_ids is None else np.asarray(expected_ids, dtype=np.int64)
    data = _read_bytes(path, max_bytes_for(None if expected is None else expected.size))
    _check_text(path, data)
    header_end = _check_header(path, data)
    digest = _sha256(data)
    if b"\t" in data:
        # A tab is whitespace like a space; pandas only skips spaces before a quoted field.
        data = data.replace(b"\t", b" ")
    doc = _Document(path, data, header_end)
    ids, values = _parse(doc)
    if ids.size == 0:
        want = f"{expected.size:,} rows" if expected is not None else "one row per test pair"
        raise SubmissionError(f"{path}: no rows: expected a header line then {want}, found the header only")
    _check_field_count(doc, ids)
    _check_id_spelling(doc, ids)
    _check_values(doc, values)
    submission = Submission(path=path, ids=ids, values=values, sha256=digest, size=len(data))
    if expected is not None:
        submission.order = _match_ids(doc, ids, expected)
    else:
        _check_unique(doc, ids)
    submission.warnings.extend(_range_warnings(values))
    return submission


@dataclass
class _Document:
    """The file being checked: its bytes and the byte offset where the rows start."""

    path: Path
    data: bytes
    header_end: int

    @cached_property
    def rows_text(self):
        """The rows as text, decoded only when a message needs to quote them."""
        return self.data[self.header_end :].decode("utf-8", errors="replace")

    def records(self):
        """``(line number, fields)`` of each non-blank row, read the way pandas reads it."""
        consumed = []

        def lines():
            for line in io.StringIO(self.rows_text, newline=""):
                consumed.append(line)
                yield line

        reader = csv.reader(lines(), skipinitialspace=True)
        previous = 0
        for record in reader:
            # A record may span lines (an open quote): report the line where it starts.
            start, previous = previous + 1, reader.line_num
            text = "".join(consumed)
            consumed.clear()
            if not text.strip():
                continue  # a blank line, which pandas skips too; a lone `"` is a row with one empty field
            yield 1 + start, record  # line 1 is the header


# --- file level --------------------------------------------------------------------


def _read_bytes(path, limit):
    """The file's bytes, refusing what is not a regular, non-empty, plausibly sized file."""
    try:
        if path.is_dir():
            raise SubmissionError(f"{path} is a folder: expected a CSV file")
        if not path.exists():
            raise SubmissionError(f"file not found: expected a CSV file at {path}")
        if not path.is_file():
            raise SubmissionError(f"{path} is not a regular file: expected a CSV file")
        with open(path, "rb") as handle:
            # Read one byte past the limit rather than trusting stat(): the file may grow.
            data = handle.read(limit + 1)
    except OSError as exc:
        raise SubmissionError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not data:
        raise SubmissionError(f"{path} is empty: expected a header line `id,similarity` and one row per test pair")
    if len(data) > limit:
        raise SubmissionError(
            f"{path} is too large: expected at most {limit:,} bytes for this competition, "
            f"found more (a submission is one short line per test pair)"
        )
    return data


def _check_text(path, data):
    """A clear error for BOMs, binary data and encodings other than UTF-8."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            hint = (
                "spreadsheets add one when saving as 'CSV UTF-8'; save as plain CSV, or write the file with pandas' to_csv"
                if bom == codecs.BOM_UTF8
                else "save the file as UTF-8"
            )
            raise SubmissionError(f"{path} starts with {name}: expected plain UTF-8 text without a BOM ({hint})")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise SubmissionError(f"{path} is binary, not text: expected a CSV file, found a NUL byte on line {line}")
    if data.isascii():  # the usual case, checked without decoding a copy
        return
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SubmissionError(
            f"{path} is not UTF-8 text: expected a CSV of numbers, found byte 0x{data[exc.start]:02x} on line {line}"
        ) from None


def _check_header(path, data):
    """Byte offset where the rows start; an error unless the first line is ``id,similarity``."""
    match = _LINE_END_BYTES.search(data, 0, 4096)
    end = match.start() if match else min(len(data), 4096)
    header_end = match.end() if match else len(data)
    first = data[:end].decode("utf-8", errors="replace")
    try:
        fields = [f.strip() for f in next(csv.reader([first]), [])] if first.strip() else []
    except csv.Error:
        fields = [first]
    if tuple(fields) == HEADER:
        return header_end
    shown = _show(first, 60)
    for separator, name in ((";", "';'"), ("\t", "a tab")):
        if separator in first and "," not in first:
            raise SubmissionError(
                f"{path} uses {name} as the separator: expected commas, header `id,similarity`, found {shown} "
                "(write the file with pandas' to_csv, which uses commas)"
            )
    if not fields:
        raise SubmissionError(f"{path}: first line is blank: expected the header `id,similarity`")
    if _INT_RE.match(fields[0]):
        raise SubmissionError(f"{path} has no header: expected first line `id,similarity`, found {shown}")
    lowered = [f.lower() for f in fields]
    if tuple(lowered) == HEADER:
        detail = "column names are case-sensitive"
    elif len(fields) > 2 and tuple(lowered[:2]) == HEADER:
        detail = f"extra column(s) {', '.join(map(repr, fields[2:]))}; keep only id and similarity"
    elif "" in fields or "unnamed: 0" in lowered:
        detail = "an unnamed column, usually a saved index; write with to_csv(index=False)"
    else:
        missing = [h for h in HEADER if h not in lowered]
        detail = f"missing column(s) {', '.join(missing)}" if missing else "columns in the wrong order"
    raise SubmissionError(f"{path}: wrong header: expected exactly `id,similarity`, found {shown} ({detail})")


# --- rows ----------------------------------------------------------------------------


def _parse(doc):
    """ids and values with pandas' C reader; any failure is explained line by line.

    Without pandas (the Codabench scoring program inlines this module and runs on NumPy
    alone) the rows are read by :func:`_parse_plain`, which accepts exactly the rows
    :func:`_row_problem` accepts; the tests check both readers give the same ids, values
    and messages.
    """
    try:
        import pandas as pd
    except ImportError:
        return _parse_plain(doc)
    try:
        with warnings.catch_warnings():
            # pandas warns (and keeps going) when the first row has extra fields: refuse.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.BytesIO(doc.data),
                names=list(HEADER),  # the header was checked; spaces around names are fine
                header=0,
                dtype={"id": np.int64, "similarity": np.float64},
                index_col=False,
                skipinitialspace=True,
                engine="c",
                encoding="utf-8",
            )
    except (ValueError, TypeError, OverflowError, pd.errors.ParserWarning):
        # pandas.errors.ParserError is a ValueError; all of them mean "some line is wrong".
        _explain_rows(doc)
        raise SubmissionError(f"{doc.path}: cannot read the rows as `id,similarity` numbers") from None
    return frame["id"].to_numpy(), frame["similarity"].to_numpy()


#: A file of plain rows (``123,0.4567``, newline-ended): read with NumPy in one pass.
_PLAIN_ROWS = re.compile(rb"(?:[0-9]{1,18},[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?\n)*")


def _parse_plain(doc):
    """ids and values with the csv module alone: the reader used where pandas is absent.

    Files whose every row is plain digits (what ``to_csv`` writes) are split and converted
    by NumPy at once; any other file is read row by row with :func:`_row_problem`'s rules.
    """
    rows = doc.data[doc.header_end :]
    if rows and not rows.endswith(b"\n"):
        rows += b"\n"
    if _PLAIN_ROWS.fullmatch(rows):
        fields = rows.replace(b"\n", b",").split(b",")[:-1]
        return np.array(fields[0::2], dtype=np.int64), np.array(fields[1::2], dtype=np.float64)
    ids, values = [], []
    try:
        for _, record in doc.records():
            if _row_problem(record) is not None:
                _explain_rows(doc)  # raises, quoting this row and the others like it
            ids.append(int(record[0]))
            values.append(float(record[1].strip()))
    except csv.Error as exc:
        raise SubmissionError(f"{doc.path}: not a readable CSV: {_show(exc, 80)}") from None
    if doc.rows_text.count('"') % 2:
        # A quote still open at the end of the file: the csv module closes it there, pandas
        # refuses the file. No valid field holds a quote, so an odd count means exactly that.
        raise SubmissionError(f"{doc.path}: cannot read the rows as `id,similarity` numbers")
    return np.array(ids, dtype=np.int64), np.array(values, dtype=np.float64)


def _check_id_spelling(doc, ids):
    """Refuse float spellings of ids (``1.0``, ``1e3``), which pandas quietly accepts."""
    if _ids_written_plainly(doc, ids):
        return
    # Spaces, quotes, blank lines or a real problem: look at every id field.
    buffer = np.frombuffer(doc.data, dtype=np.uint8)[doc.header_end :]
    suspects = np.flatnonzero(_FLOAT_ONLY[buffer])
    if suspects.size == 0:
        return
    # A ".", "e" or "E" lies in an id field when the delimiter before it ends a line.
    delimiters = np.flatnonzero(_DELIMITER[buffer])
    before = np.searchsorted(delimiters, suspects) - 1
    in_id = before < 0
    in_id[~in_id] = buffer[delimiters[before[~in_id]]] != ord(",")
    if in_id.any():
        _explain_rows(doc)
        raise SubmissionError(f"{doc.path}: ids must be whole numbers as in test_pairs.csv, found a decimal point or exponent")


def _ids_written_plainly(doc, ids):
    """True when every line is ``<id as plain digits>,...``: the fast check for usual files.

    Each line's id field must be exactly as long as the id's decimal digits and end in its
    last digit; that rules out ``1.0``, ``1e2``, ``+7``, ``007``, quotes and spaces. Files
    that fail (for example ones with spaces) get the slower, exact check.
    """
    if ids.size == 0 or ids.min() < 0:
        return False
    buffer = np.frombuffer(doc.data, dtype=np.uint8)
    ends = np.flatnonzero(buffer[doc.header_end :] == ord("\n")) + doc.header_end
    starts = np.concatenate(([doc.header_end], ends + 1))
    starts = starts[starts < buffer.size]
    if starts.size != ids.size:  # blank lines or lone carriage returns
        return False
    commas = starts + 1 + np.searchsorted(_POWERS_OF_TEN, ids, side="right")
    if commas.max() >= buffer.size:
        return False
    return bool((buffer[commas] == ord(",")).all() and (buffer[commas - 1] == ord("0") + ids % 10).all())


def _check_field_count(doc, ids):
    """Refuse extra fields that pandas drops quietly, such as the empty one in ``1,0.5,``.

    A valid row has exactly one comma (a quoted comma cannot be part of a number), so
    the rows hold as many commas as there are ids.
    """
    if doc.data.count(b",", doc.header_end) != ids.size:
        _explain_rows(doc)
        raise SubmissionError(f"{doc.path}: every row must be `id,similarity` (2 fields), found extra commas")


def _check_values(doc, values):
    """Every value finite and within :data:`MAX_ABS_VALUE` (NaN fails the comparison too)."""
    if not (np.abs(values) <= MAX_ABS_VALUE).all():
        _explain_rows(doc)
        raise SubmissionError(
            f"{doc.path}: every similarity must be a finite number in {VALUE_RANGE}, "
            "found NaN, infinity or a larger value"
        )


def _explain_rows(doc):
    """Raise the message for the first broken per-line rule (field count, id, value).

    Runs only when the fast path found a problem, so it may be slow; it stops scanning
    once it has quoted enough lines.
    """
    rule, offenders, more = None, [], 0
    records = doc.records()
    try:
        for line, record in records:
            problem = _row_problem(record)
            if problem is None or (rule is not None and problem[0] != rule):
                continue
            rule = problem[0]
            if len(offenders) < SHOWN:
                offenders.append(f"line {line}: {problem[1]}")
            else:
                more += 1
                if more > 1000:
                    break
    except csv.Error as exc:
        raise SubmissionError(f"{doc.path}: not a readable CSV: {_show(exc, 80)}") from None
    if rule is not None:
        raise SubmissionError(f"{doc.path}: {_RULES[rule]}: {_listing(offenders, more)}")


_RULES = {
    "quote": "quotes must close on the line they open",
    "fields": "every row must be `id,similarity` (2 fields)",
    "id": "ids must be whole numbers as in test_pairs.csv",
    "value": "every similarity must be a finite number",
    "range": (
        f"every similarity must lie in {VALUE_RANGE} (Tanimoto lies in [0, 1]; "
        "larger values are no similarity and overflow the metric)"
    ),
}


def _row_problem(record):
    """``(rule, description)`` for the first thing wrong with one CSV record, else None."""
    for text in record:
        if "\n" in text or "\r" in text:
            return "quote", f"a quote opens before {_show(_LINE_END.split(text, 1)[0])} and is not closed"
    if len(record) != 2:
        shown = f"{len(record)} field{'s' if len(record) != 1 else ''} {_show(','.join(record))}"
        if len(record) == 3 and all(_INT_RE.match(f) for f in record):
            shown += " (a decimal comma? write 0.25, not 0,25)"
        return "fields", shown
    id_text, value_text = record
    if not _INT_RE.match(id_text):
        return "id", f"id {_show(id_text)}"
    if abs(int(id_text)) > _INT64_MAX:
        return "id", f"id {_show(id_text)} is out of range"
    try:
        if "_" in value_text or not value_text.isascii():
            raise ValueError("Python reads 1_0 as 10 and other scripts' digits as numbers; CSV readers do not")
        value = float(value_text.strip())
    except ValueError:
        return "value", f"{_show(value_text)} is not a number" if value_text.strip() else "empty value"
    if not math.isfinite(value):
        return "value", f"{_show(value_text)}"
    if abs(value) > MAX_ABS_VALUE:
        return "range", f"{_show(value_text)}"
    return None


# --- ids -----------------------------------------------------------------------------


def _match_ids(doc, ids, expected):
    """For each expected id, the row holding it; errors for unknown, repeated or missing ids."""
    n = expected.size
    if n and expected[0] == 0 and expected[-1] == n - 1 and np.array_equal(expected, np.arange(n)):
        # The usual case (ids 0..n-1): positions without building a hash table.
        position = np.where((ids >= 0) & (ids < n), ids, -1)
    else:
        position = _positions(expected, ids)
    unknown = np.flatnonzero(position < 0)
    if unknown.size:
        lines = _data_lines(doc, unknown[:SHOWN])
        shown = [f"line {line}: id {ids[row]}" for row, line in zip(unknown[:SHOWN], lines)]
        raise SubmissionError(
            f"{doc.path}: unknown ids: expected only ids of test_pairs.csv, found {unknown.size:,} other(s): "
            f"{_listing(shown, unknown.size - len(shown))}"
        )
    counts = np.bincount(position, minlength=n)
    repeated = np.flatnonzero(counts > 1)
    if repeated.size:
        _raise_duplicates(doc, ids, position, repeated)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        sample = ", ".join(str(expected[i]) for i in missing[:SHOWN])
        raise SubmissionError(
            f"{doc.path}: missing ids: expected one row per id of test_pairs.csv ({n:,} rows), "
            f"found {ids.size:,} rows; {missing.size:,} id(s) missing, e.g. {sample}"
        )
    order = np.empty(n, dtype=np.int64)
    order[position] = np.arange(ids.size)
    return order


def _positions(expected, ids):
    """For each id, its index in the unique ``expected`` ids, -1 when absent."""
    try:
        import pandas as pd
    except ImportError:  # NumPy alone: a sorted search instead of a hash table
        if expected.size == 0:
            return np.full(ids.size, -1, dtype=np.int64)
        sorter = np.argsort(expected, kind="stable")
        found = sorter[np.minimum(np.searchsorted(expected, ids, sorter=sorter), expected.size - 1)]
        return np.where(expected[found] == ids, found, -1)
    return pd.Index(expected).get_indexer(ids)


def _check_unique(doc, ids):
    unique, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    repeated = np.flatnonzero(counts > 1)
    if repeated.size:
        _raise_duplicates(doc, ids, inverse.ravel(), repeated)


def _raise_duplicates(doc, ids, position, repeated):
    """One line listing the first repeated ids and the lines they appear on."""
    first = set(repeated[:SHOWN].tolist())
    rows = [row for row in np.flatnonzero(np.isin(position, list(first)))[: 4 * SHOWN]]
    lines = dict(zip(rows, _data_lines(doc, rows)))
    by_id = {}
    for row in rows:
        by_id.setdefault(int(ids[row]), []).append(str(lines[row]))
    shown = [f"id {i} on lines {' and '.join(ls)}" for i, ls in list(by_id.items())[:SHOWN]]
    raise SubmissionError(
        f"{doc.path}: duplicate ids: expected each id once, found {repeated.size:,} repeated: "
        f"{_listing(shown, repeated.size - len(shown))}"
    )


def _data_lines(doc, rows):
    """Physical line numbers (1 = header) of the given 0-based data rows."""
    wanted = set(int(r) for r in rows)
    found = {}
    for index, (line, _) in enumerate(doc.records()):
        if index in wanted:
            found[index] = line
            if len(found) == len(wanted):
                break
    return [found.get(int(r), int(r) + 2) for r in rows]


# --- helpers -------------------------------------------------------------------------


def _sha256(data):
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _range_warnings(values):
    outside = (values < 0.0) | (values > 1.0)
    count = int(outside.sum())
    if not count:
        return []
    return [
        f"{count:,} similarit{'y is' if count == 1 else 'ies are'} outside [0, 1] "
        f"(min {values.min():.5g}, max {values.max():.5g}); scored as written, but Tanimoto lies in [0, 1]"
    ]


def _show(value, width=24):
    """A short, one-line, quoted rendering of user text for a message."""
    value = str(value)
    if len(value) > width:
        value = value[: width - 3] + "..."
    return repr(value)


def _listing(items, more):
    text = "; ".join(items)
    return f"{text}; and {more:,} more" if more > 0 else text
