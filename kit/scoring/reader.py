"""Reading a submission file and checking it against the rules of the format.

This module is the one parser of submissions: ``kit score``, ``kit serve``, the inbox,
the Kaggle check and the Codabench scoring program (which ships a copy of this file,
written by ``kit export codabench``) all decide validity and values here. It needs the
standard library and NumPy only (and :mod:`kit.scoring.metrics`, which needs no more), never
pandas or the ``csv`` module, so a file is valid
on every host or on none, and every value is ``float()``'s correctly rounded value of
its text, whatever pandas version is installed.

The format:

- a regular file with one name (no link, pipe or device), UTF-8 text without a BOM,
  with no control character but tabs and line ends (``\\n``, ``\\r\\n`` or ``\\r``);
- the header ``id,similarity``, then one row per id of the competition, in any order;
  blank lines are skipped;
- a row is two fields separated by a comma; spaces and tabs around a field are ignored,
  and a field may be wrapped in double quotes;
- an id is ASCII digits with an optional sign (``7``, ``+7``, ``007``) within int64;
- a similarity is an ASCII decimal number (``0.5``, ``.5``, ``5.``, ``-2.5e-1``): no
  ``nan``, ``inf``, hexadecimal, ``_`` separators or other scripts' digits, all of which
  ``float()`` reads; finite and at most :data:`MAX_ABS_VALUE` in absolute value;
- a field (spaces and tabs around it dropped) holds at most :data:`MAX_FIELD_CHARS`
  characters.

Each broken rule is reported as one :class:`~kit.errors.SubmissionError` line: the rule,
what was expected, what was found and the first offending lines.

Speed: the file is read once as bytes (its size capped first). A file of plain rows
(``123,0.4567`` and line ends, what ``to_csv`` writes) is checked with NumPy and split
with ``bytes.split``; its numbers go through ``int`` and ``float`` in C loops. Any other
file is read line by line with the rules above. Every pattern matches in time linear in
its text (no two ways to match the same characters), and a field longer than
:data:`MAX_FIELD_CHARS` is refused by its length before any pattern sees it.
"""
import codecs
import hashlib
import math
import os
import re
import stat
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from kit.errors import SubmissionError
from kit.safetext import printable
from kit.scoring.metrics import SHOWN_DECIMALS

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
#: Longest field accepted, in characters: ``-0.12345678901234567890e-05`` is 27, and a
#: number written with every digit a float64 can hold is under 800 only with padding
#: no writer adds. A longer field is refused by its length, before it is parsed.
MAX_FIELD_CHARS = 400

_BOMS = (
    (codecs.BOM_UTF8, "a UTF-8 byte-order mark (BOM)"),
    (codecs.BOM_UTF32_LE, "a UTF-32 byte-order mark"),
    (codecs.BOM_UTF32_BE, "a UTF-32 byte-order mark"),
    (codecs.BOM_UTF16_LE, "a UTF-16 byte-order mark"),
    (codecs.BOM_UTF16_BE, "a UTF-16 byte-order mark"),
)
_LINE_END = re.compile(r"\r\n|\n|\r")
_LINE_END_BYTES = re.compile(rb"\r\n|\n|\r")
#: C0 controls but tab, LF and CR, and DEL: float() skips some of them (\x1c-\x1f count
#: as whitespace in Python), other readers do not.
_CONTROL = np.zeros(256, dtype=bool)
_CONTROL[[*range(0x20), 0x7F]] = True
_CONTROL[list(b"\t\n\r")] = False
_SPACE = " \t"
_QUOTED = re.compile(r'("[^"]*")')
_ID = re.compile(r"[+-]?([0-9]+)", re.ASCII)
# Unambiguous: digits before the point are read by one repeat only, so a long run of
# digits followed by a bad character fails in linear time (`[0-9]+\.?[0-9]*` split the
# run between two repeats in every possible way before failing: quadratic).
_VALUE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
#: A whole valid row: optional quotes around each field, spaces and tabs around them.
_ROW = re.compile(
    rf'[ \t]*(?P<q>"?)(?P<id>[+-]?[0-9]+)(?P=q)[ \t]*,[ \t]*(?P<r>"?)(?P<value>{_VALUE.pattern})(?P=r)[ \t]*', re.ASCII
)
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_INT64_MAX = np.iinfo(np.int64).max
#: Bytes of a plain row (digits, sign, point, exponent), and its two delimiters.
_PLAIN = np.zeros(256, dtype=bool)
_PLAIN[list(b"0123456789+-.eE,\n")] = True
_DELIMITER = np.zeros(256, dtype=bool)
_DELIMITER[list(b",\n")] = True
#: Bytes of plain rows converted at a time.
_BLOCK = 1 << 20
#: os.open flags: never follow a final link, never wait on a pipe (both absent on Windows).
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


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
    doc = _Document(path, data, _check_header(path, data))
    ids, values = _parse(doc)
    if ids.size == 0:
        want = f"{expected.size:,} rows" if expected is not None else "one row per test pair"
        raise SubmissionError(f"{path}: no rows: expected a header line then {want}, found the header only")
    _check_values(doc, values)
    submission = Submission(path=path, ids=ids, values=values, sha256=hashlib.sha256(data).hexdigest(),
                            size=len(data))
    if expected is not None:
        submission.order = _match_ids(doc, ids, expected)
    else:
        _check_unique(doc, ids)
    submission.warnings.extend(_range_warnings(values))
    return submission


@dataclass
class _Document:
    """The file being checked: its bytes, where the rows start, and each row's line.

    ``row_lines`` holds the line number (1 = header) of each row, or None when row ``k``
    is on line ``k + 2`` (a file without blank lines read by the plain-row path).
    """

    path: Path
    data: bytes
    header_end: int
    row_lines: np.ndarray = None

    @cached_property
    def rows_text(self):
        """The rows as text (the file was checked to be UTF-8)."""
        return self.data[self.header_end :].decode("utf-8")

    def line_of(self, rows):
        """Line numbers of the given 0-based rows."""
        rows = np.asarray(rows, dtype=np.int64)
        return (rows + 2 if self.row_lines is None else self.row_lines[rows]).tolist()


# --- file level --------------------------------------------------------------------


def _read_bytes(path, limit):
    """The file's bytes, refusing what is not a regular, non-empty, plausibly sized file."""
    data = read_regular_file(path, limit)
    if not data:
        raise SubmissionError(f"{path} is empty: expected a header line 'id,similarity' and one row per test pair")
    if len(data) > limit:
        raise SubmissionError(
            f"{path} is too large: expected at most {limit:,} bytes for this competition, "
            f"found more (a submission is one short line per test pair)"
        )
    return data


def read_regular_file(path, limit, expected="a CSV file"):
    """At most ``limit + 1`` bytes of ``path``, a regular file with one name.

    The one way the kit opens a file a participant hands in (a submission, the manifest
    beside it): links are refused, not followed (a submission that is another name for a
    file, the solution or a key, would have that file's lines quoted back in the error
    messages), and a pipe or a device is refused without waiting on it or reading it.
    One byte past ``limit`` is read rather than trusting ``stat()``: the file may grow,
    and the caller tells a file of ``limit`` bytes from a larger one.

    Parameters
    ----------
    path : str or Path
    limit : int
        Bytes wanted at most.
    expected : str
        What the file should be, for the messages.

    Raises
    ------
    SubmissionError
        One line: missing, a link, a folder, a pipe, socket or device, another name of a
        file, or unreadable.

    Examples
    --------
    >>> from pathlib import Path
    >>> _ = Path("/tmp/kit-doc-regular.json").write_text("{}")
    >>> read_regular_file("/tmp/kit-doc-regular.json", 1, expected="a JSON file")
    b'{}'
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise SubmissionError(f"file not found: expected {expected} at {path}") from None
    except OSError as exc:
        raise SubmissionError(f"cannot read {path}: {exc.strerror or exc}") from None
    _check_file_kind(path, info, expected)
    try:
        with open(os.open(path, _OPEN_FLAGS), "rb") as stream:
            opened = os.fstat(stream.fileno())
            # The name may have been swapped (for a link, a pipe) between lstat and open.
            if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
                raise SubmissionError(f"{path} changed while it was opened: expected {expected} that stays put")
            _check_file_kind(path, opened, expected)
            return stream.read(limit + 1)
    except OSError as exc:
        raise SubmissionError(f"cannot read {path}: {exc.strerror or exc}") from None


def _check_file_kind(path, info, expected):
    """An error unless ``info`` (an lstat or fstat) is a regular file with one name."""
    if stat.S_ISLNK(info.st_mode):
        raise SubmissionError(f"{path} is a symbolic link: expected {expected} of its own (copy the file, not a link)")
    if stat.S_ISDIR(info.st_mode):
        raise SubmissionError(f"{path} is a folder: expected {expected}")
    if not stat.S_ISREG(info.st_mode):
        raise SubmissionError(f"{path} is not a regular file (a pipe, socket or device): expected {expected}")
    if info.st_nlink > 1:
        raise SubmissionError(f"{path} is a hard link (the file has other names): expected a file of its own "
                              "(copy the file, not a link)")


def _check_text(path, data):
    """A clear error for BOMs, binary data, control characters and encodings other than UTF-8."""
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
        raise SubmissionError(f"{path} is binary, not text: expected a CSV file, found a NUL byte on line {_line_at(data, nul)}")
    control = _CONTROL[np.frombuffer(data, dtype=np.uint8)]
    if control.any():
        at = int(control.argmax())
        raise SubmissionError(
            f"{path}: control character 0x{data[at]:02x} on line {_line_at(data, at)}: "
            "expected only numbers, commas, spaces, tabs and line ends"
        )
    if data.isascii():  # the usual case, checked without decoding a copy
        return
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionError(
            f"{path} is not UTF-8 text: expected a CSV of numbers, found byte 0x{data[exc.start]:02x} "
            f"on line {_line_at(data, exc.start)}"
        ) from None


def _line_at(data, offset):
    """The line number (1 = first) of byte ``offset``, counting every kind of line end."""
    head = data[:offset]
    return head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n") + 1


def _check_header(path, data):
    """Byte offset where the rows start; an error unless the first line is ``id,similarity``.

    The whole first line is read, however long: spaces and tabs around a header field are
    ignored as around any field, so ``id,similarity`` followed by thousands of spaces is
    the header, and the rows after it are read (the file's size is capped already).
    """
    match = _LINE_END_BYTES.search(data)
    end = match.start() if match else len(data)
    header_end = match.end() if match else len(data)
    first = data[:end].decode("utf-8", errors="replace")
    fields = _fields(first) if first.strip(_SPACE) else []
    if tuple(fields) == HEADER:
        return header_end
    shown = _show(first, 60)
    for separator, name in ((";", "';'"), ("\t", "a tab")):
        if separator in first and "," not in first:
            raise SubmissionError(
                f"{path} uses {name} as the separator: expected commas, header 'id,similarity', found {shown} "
                "(write the file with pandas' to_csv, which uses commas)"
            )
    if not fields:
        raise SubmissionError(f"{path}: first line is blank: expected the header 'id,similarity'")
    if _ID.fullmatch(fields[0]):
        raise SubmissionError(f"{path} has no header: expected first line 'id,similarity', found {shown}")
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
    raise SubmissionError(f"{path}: wrong header: expected exactly 'id,similarity', found {shown} ({detail})")


# --- rows ----------------------------------------------------------------------------


def _parse(doc):
    """ids and values of the rows: the plain-row path when it applies, else line by line.

    The plain-row path accepts a subset of what :func:`_parse_lines` accepts, with the
    same numbers: its bytes are digits, signs, points, ``e``/``E``, one comma and one
    line end per row, and on those bytes ``int`` and ``float`` accept exactly the
    spellings of :data:`_ID` and :data:`_VALUE`. Anything it does not take (spaces,
    quotes, blank lines, lone carriage returns, a bad field) goes to the line reader,
    which decides and explains.
    """
    rows = doc.data[doc.header_end :]
    if b"\r" in rows:
        rows = rows.replace(b"\r\n", b"\n")
    if rows and not rows.endswith(b"\n"):
        rows += b"\n"
    buffer = np.frombuffer(rows, dtype=np.uint8)
    if _PLAIN[buffer].all():
        delimiters = buffer[_DELIMITER[buffer]]
        if (delimiters[0::2] == ord(",")).all() and (delimiters[1::2] == ord("\n")).all() and delimiters.size % 2 == 0:
            try:
                return _convert_plain(rows, delimiters.size // 2)
            except (ValueError, OverflowError):
                pass  # an empty or malformed field, an id past int64: the line reader says which
    return _parse_lines(doc)


def _convert_plain(rows, count):
    """ids and values of ``count`` plain rows, converted a block of lines at a time.

    ``int`` and ``float`` do the conversion (``float`` is correctly rounded); blocks keep
    the Python objects of a million-row file from all living at once.
    """
    ids, values = np.empty(count, dtype=np.int64), np.empty(count, dtype=np.float64)
    start = done = 0
    while start < len(rows):
        end = rows.find(b"\n", start + _BLOCK)
        end = len(rows) if end < 0 else end + 1
        fields = rows[start:end].replace(b"\n", b",").split(b",")
        if max(map(len, fields)) > MAX_FIELD_CHARS:
            raise ValueError("a field too long")  # the line reader refuses it, quoting the line
        size = len(fields) // 2
        ids[done : done + size] = list(map(int, fields[0:-1:2]))
        values[done : done + size] = list(map(float, fields[1::2]))
        start, done = end, done + size
    return ids, values


def _parse_lines(doc):
    """ids and values read line by line; one error naming the first broken rule and its lines."""
    ids, values, lines = [], [], []
    rule, offenders, more = None, [], 0
    for index, line in enumerate(_LINE_END.split(doc.rows_text)):
        if not line.strip(_SPACE):
            continue  # a blank line
        parsed = _usual_row(line)
        problem = None
        if parsed is None:
            problem, parsed = _parse_row(line)
        if problem is None:
            if rule is None:
                ids.append(parsed[0])
                values.append(parsed[1])
                lines.append(index + 2)
            continue
        if rule is not None and problem[0] != rule:
            continue
        rule = problem[0]
        if len(offenders) < SHOWN:
            offenders.append(f"line {index + 2}: {problem[1]}")
        else:
            more += 1
            if more > 1000:
                break
    if rule is not None:
        raise SubmissionError(f"{doc.path}: {_RULES[rule]}: {_listing(offenders, more)}")
    doc.row_lines = np.array(lines, dtype=np.int64)
    return np.array(ids, dtype=np.int64), np.array(values, dtype=np.float64)


def _check_values(doc, values):
    """Every value finite and within :data:`MAX_ABS_VALUE` (NaN fails the comparison too)."""
    if not (np.abs(values) <= MAX_ABS_VALUE).all():
        _parse_lines(doc)  # raises, quoting the lines
        raise SubmissionError(
            f"{doc.path}: every similarity must be a finite number in {VALUE_RANGE}, "
            "found NaN, infinity or a larger value"
        )


_RULES = {
    "quote": "quotes must close on the line they open",
    "long": f"a field holds at most {MAX_FIELD_CHARS} characters (a number needs far fewer)",
    "fields": "every row must be 'id,similarity' (2 fields)",
    "id": "ids must be whole numbers as in test_pairs.csv",
    "value": "every similarity must be a finite number",
    "range": (
        f"every similarity must lie in {VALUE_RANGE} (Tanimoto lies in [0, 1]; "
        "larger values are no similarity and overflow the metric)"
    ),
}


def _usual_row(line):
    """``(id, value)`` of a valid row in one regular-expression match, else None.

    A shortcut for :func:`_parse_row` (which decides, and explains): what it returns,
    :func:`_parse_row` returns too; ids longer than 19 characters and lines that could
    hold a field longer than :data:`MAX_FIELD_CHARS` are left to it.
    """
    if len(line) > MAX_FIELD_CHARS:
        return None
    match = _ROW.fullmatch(line)
    if match is None or len(match["id"]) > 19:
        return None
    number, value = int(match["id"]), float(match["value"])
    if abs(number) > _INT64_MAX or not abs(value) <= MAX_ABS_VALUE:
        return None
    return number, value


def _parse_row(line):
    """``(None, (id, value))`` for a valid row, else ``((rule, description), None)``."""
    if line.count('"') % 2:
        return ("quote", f"a quote in {_show(line)} is not closed"), None
    fields = _fields(line)
    longest = max(fields, key=len)
    if len(longest) > MAX_FIELD_CHARS:
        return ("long", f"a field of {len(longest):,} characters starting {_show(longest)}"), None
    if len(fields) != 2:
        shown = f"{len(fields):,} field{'s' if len(fields) != 1 else ''} {_show(','.join(fields[:SHOWN * 4]))}"
        if len(fields) == 3 and all(_ID.fullmatch(f) for f in fields):
            shown += " (a decimal comma? write 0.25, not 0,25)"
        return ("fields", shown), None
    id_text, value_text = fields
    digits = _ID.fullmatch(id_text)
    if not digits:
        return ("id", f"id {_show(id_text)}{_hint(id_text)}"), None
    # int() refuses more than 4,300 digits, leading zeros included: convert without them.
    significant = digits[1].lstrip("0") or "0"
    if len(significant) > 19 or int(significant) > _INT64_MAX + id_text.startswith("-"):
        return ("id", f"id {_show(id_text)} is out of range"), None
    if not value_text:
        return ("value", "empty value"), None
    if _NON_FINITE.fullmatch(value_text):
        return ("value", f"{_show(value_text)}"), None
    if not _VALUE.fullmatch(value_text):
        return ("value", f"{_show(value_text)} is not a number{_hint(value_text)}"), None
    value = float(value_text)
    if not math.isfinite(value):
        return ("value", f"{_show(value_text)} overflows"), None
    if abs(value) > MAX_ABS_VALUE:
        return ("range", f"{_show(value_text)}"), None
    return None, (-int(significant) if id_text.startswith("-") else int(significant), value)


def _fields(line):
    """The comma-separated fields of one line, spaces and tabs around them dropped.

    Commas inside double quotes do not separate; a field wholly in quotes loses them.
    ``line`` holds an even number of quotes or none, so every quote found here closes.
    """
    if '"' not in line:
        pieces = line.split(",")
    else:
        pieces, current = [], ""
        for k, part in enumerate(_QUOTED.split(line)):
            if k % 2:  # a quoted part: its commas are text
                current += part
                continue
            head, *rest = part.split(",")
            current += head
            for piece in rest:
                pieces.append(current)
                current = piece
        pieces.append(current)
    fields = []
    for piece in pieces:
        piece = piece.strip(_SPACE)
        if len(piece) >= 2 and piece[0] == piece[-1] == '"' and '"' not in piece[1:-1]:
            piece = piece[1:-1]
        fields.append(piece)
    return fields


def _hint(text):
    """Why a spelling ``float()`` or ``int()`` would read is refused, else ''."""
    if not text.isascii():
        return " (only ASCII digits 0-9, '.', '+', '-' and 'e': other scripts' digits and spaces are refused)"
    if "_" in text:
        return " (no '_' between digits)"
    if text.lower().startswith(("0x", "-0x", "+0x")):
        return " (decimal numbers only)"
    return ""


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
        lines = doc.line_of(unknown[:SHOWN])
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
    if expected.size == 0:
        return np.full(ids.size, -1, dtype=np.int64)
    sorter = np.argsort(expected, kind="stable")
    found = sorter[np.minimum(np.searchsorted(expected, ids, sorter=sorter), expected.size - 1)]
    return np.where(expected[found] == ids, found, -1)


def _check_unique(doc, ids):
    unique, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    repeated = np.flatnonzero(counts > 1)
    if repeated.size:
        _raise_duplicates(doc, ids, inverse.ravel(), repeated)


def _raise_duplicates(doc, ids, position, repeated):
    """One line listing the first repeated ids and the lines they appear on."""
    first = set(repeated[:SHOWN].tolist())
    rows = [row for row in np.flatnonzero(np.isin(position, list(first)))[: 4 * SHOWN]]
    lines = dict(zip(rows, doc.line_of(rows)))
    by_id = {}
    for row in rows:
        by_id.setdefault(int(ids[row]), []).append(str(lines[row]))
    shown = [f"id {i} on lines {' and '.join(ls)}" for i, ls in list(by_id.items())[:SHOWN]]
    raise SubmissionError(
        f"{doc.path}: duplicate ids: expected each id once, found {repeated.size:,} repeated: "
        f"{_listing(shown, repeated.size - len(shown))}"
    )


# --- helpers -------------------------------------------------------------------------


def _range_warnings(values):
    """A warning for values outside [0, 1], its extremes rounded as every shown score is.

    Examples
    --------
    >>> _range_warnings(np.array([-1.23456e-05, 0.5, 1.000004]))[0][:64]
    '2 similarities are outside [0, 1] (min -0.00001, max 1.00000); s'
    """
    outside = (values < 0.0) | (values > 1.0)
    count = int(outside.sum())
    if not count:
        return []
    return [
        f"{count:,} similarit{'y is' if count == 1 else 'ies are'} outside [0, 1] "
        f"(min {values.min():.{SHOWN_DECIMALS}f}, max {values.max():.{SHOWN_DECIMALS}f}); "
        "scored as written, but Tanimoto lies in [0, 1]"
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
