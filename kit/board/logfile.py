"""The leaderboard log: ``leaderboard/<competition>.csv``, one CSV row per scored submission, written and read.

Rows are written whole (one locked append, or the whole file renamed into place) and
read line by line: a torn or hand-damaged line is skipped, and counted. Text a
participant chose is neutralised for spreadsheets; scores stay numbers.
"""
import csv
import io
import json
import math
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from filelock import FileLock, Timeout

from kit.board.identity import canonical_participants, default_participant, participant_key, sanitize_participant
from kit.competition.folder import PRIVATE, PUBLIC
from kit.errors import UserError
from kit.fileio import append_line, ensure_writable_dir
from kit.paths import leaderboard_dir
from kit.safetext import from_spreadsheet_cell, one_line, printable, spreadsheet_cell
from kit.scoring.metrics import breakdown_cells, shown_scores

LOG_COLUMNS = [
    "time",
    "participant",
    "file",
    "sha256",
    "model",
    "public",
    "private",
    "validation",
    "rows",
    "per_bin_public",
    "per_bin_private",
]
_NUMERIC = ("public", "private", "validation")
#: Columns holding text a participant chose: neutralised for spreadsheets in the file.
_TEXT = ("participant", "file", "model")
#: Longest model or file name kept in the log.
MAX_TEXT = 120
#: Seconds a writer waits for the log's lock (another export, a killed writer's lock file) before giving up.
LOCK_TIMEOUT = 60


def log_path(competition, leaderboard=None):
    """``leaderboard/<competition>.csv`` for a competition name (or object with ``.name``)."""
    name = getattr(competition, "name", competition)
    safe = sanitize_participant(name).replace(" ", "_")  # a file name without spaces, as before
    return leaderboard_dir(leaderboard) / f"{safe}.csv"


def make_entry(result, participant=None, time=None, file=None):
    """A log row (dict of strings) for a :class:`~kit.scoring.scorer.ScoreResult`.

    Parameters
    ----------
    result : ScoreResult
    participant : str, optional
        Defaults to the manifest's participant, else ``$USER``, else ``you``.
    time : datetime, optional
        Submission time (default now, UTC).
    file : str, optional
        Name to record (default the submission's file name).
    """
    manifest = result.manifest or {}
    participant = sanitize_participant(participant or manifest.get("participant") or default_participant())
    time = (time or datetime.now(timezone.utc)).astimezone(timezone.utc)
    details = result.details
    return {
        "time": time.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "participant": participant,
        "file": one_line(file or Path(result.path).name, MAX_TEXT),
        "sha256": result.sha256,
        "model": one_line(result.model, MAX_TEXT),
        "public": _number(result.public),
        "private": _number(result.private),
        "validation": _number(result.validation),
        "rows": str(result.rows),
        "per_bin_public": json.dumps(per_bin_for_log(details.get(PUBLIC)), separators=(",", ":")),
        "per_bin_private": json.dumps(per_bin_for_log(details.get(PRIVATE)), separators=(",", ":")),
    }


def append_entry(path, entry):
    """Append one row to the log: locked, one write, flushed and fsynced.

    A previous writer killed mid-line leaves a line without its newline; this writer
    ends that line first, so the damage stays on one line that readers skip.

    Examples
    --------
    >>> append_entry("/tmp/kit-doc-lb/x.csv", {"participant": "ann", "public": "0.2"})  # doctest: +SKIP
    """
    path = Path(path)
    line = _log_line(entry)
    with locked_log(path):
        try:
            append_line(path, line, header=_csv_line(LOG_COLUMNS))
        except OSError as exc:
            raise UserError(f"cannot append to {path}: {exc.strerror or exc}") from None
    return path


@contextmanager
def locked_log(path):
    """Hold ``<log>.lock``, the lock every writer of the log takes; a UserError after :data:`LOCK_TIMEOUT` s.

    Examples
    --------
    >>> with locked_log("/tmp/kit-doc-lb/x.csv"):   # doctest: +SKIP
    ...     pass
    """
    path = Path(path)
    ensure_writable_dir(path.parent)
    lock = FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT)
    try:
        lock.acquire()
    except Timeout:
        raise UserError(f"{path} is locked by another program (lock file {path}.lock): try again") from None
    try:
        yield path
    finally:
        lock.release()


def logged_entry(log, sha256, participant):
    """The earliest row of ``log`` for this file content and participant, or None.

    A file scored twice for the same participant is one submission, not two.

    Examples
    --------
    >>> logged_entry(read_log("/nonexistent/practice.csv"), "ab12", "ann") is None
    True
    """
    key = participant_key(sanitize_participant(participant))  # Bob and BOB are one person
    same = (log["sha256"] == sha256) & (log["participant"].map(participant_key) == key)
    return None if not same.any() else log[same].iloc[0]


def read_log(path):
    """The log as a DataFrame; lines that do not parse are skipped (and counted).

    The result has ``attrs["skipped_lines"]`` (damaged lines) and
    ``attrs["skipped_nonfinite"]`` (rows whose scores are NaN or infinite, which only a
    hand edit can leave: they would rank first or break the plots). ``time`` is a UTC
    timestamp, scores are floats (NaN when missing), ``per_bin_*`` are dicts.

    Examples
    --------
    >>> read_log("/nonexistent/practice.csv").empty
    True
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raw = b""
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    rows, skipped, nonfinite = [], 0, 0
    # Line by line, so that a torn row with an open quote cannot swallow the rows after it.
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines()):
        if not line.strip():
            continue
        row = _parse_line(line)
        if row is _NONFINITE:
            nonfinite += 1
            continue
        if row is None:
            if not (number == 0 and line.startswith("time")):
                skipped += 1
            continue
        rows.append(row)
    frame = pd.DataFrame(rows, columns=LOG_COLUMNS + ["order"])
    frame["participant"] = canonical_participants(frame["participant"])  # Bob and BOB are one person
    frame["time"] = _log_times(frame["time"])
    for column in _NUMERIC:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["rows"] = pd.to_numeric(frame["rows"], errors="coerce").fillna(0).astype(int)
    frame["order"] = range(len(frame))
    frame.attrs["skipped_lines"] = skipped
    frame.attrs["skipped_nonfinite"] = nonfinite
    return frame


#: What :func:`_parse_line` returns for a well-formed row with a NaN or infinite score.
_NONFINITE = object()


def _log_times(values):
    """UTC times of log rows; NaT for a time the kit cannot have written.

    Only a hand edit or a broken clock gives a time before 2000 or from 2200 on (year 1,
    year 9999): such a row keeps its scores, shows no time and loses ties, so it can
    neither win a tie nor break the ranking, the pages or their time axis.
    """
    times = pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
    plausible = (times >= pd.Timestamp("2000-01-01", tz="UTC")) & (times < pd.Timestamp("2200-01-01", tz="UTC"))
    return times.where(plausible)


def _parse_line(line):
    """One log row as a dict, or None when the line is a header or damaged."""
    try:
        fields = next(csv.reader([line], strict=True))
    except (csv.Error, StopIteration):
        return None
    if len(fields) != len(LOG_COLUMNS) or fields == LOG_COLUMNS:
        return None
    row = dict(zip(LOG_COLUMNS, fields))
    try:
        datetime.fromisoformat(row["time"].replace("Z", "+00:00"))
        float(row["public"])
        # Always written as JSON objects: an empty last field means the line was cut short.
        row["per_bin_public"] = json.loads(row["per_bin_public"])
        row["per_bin_private"] = json.loads(row["per_bin_private"])
    except (ValueError, TypeError):
        return None
    if not isinstance(row["per_bin_public"], dict) or not isinstance(row["per_bin_private"], dict):
        return None
    if not _finite_scores(row):
        return _NONFINITE
    for column in _TEXT:
        row[column] = from_spreadsheet_cell(row[column])
    row["participant"] = sanitize_participant(row["participant"])
    row["order"] = 0
    return row


def entries_frame(entries):
    """Log rows (from :func:`kit.board.exports.store_entries`) as the frame :func:`read_log` returns.

    Examples
    --------
    >>> entries_frame([]).empty
    True
    """
    frame = pd.DataFrame(list(entries), columns=LOG_COLUMNS)
    frame["time"] = _log_times(frame["time"])
    for column in _NUMERIC:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["rows"] = pd.to_numeric(frame["rows"], errors="coerce").fillna(0).astype(int)
    frame["order"] = range(len(frame))
    frame.attrs["skipped_lines"] = 0
    frame.attrs["skipped_nonfinite"] = 0
    return frame


def skipped_notes(log, path):
    """Notes on the lines :func:`read_log` skipped in ``path``."""
    notes = []
    if log.attrs.get("skipped_lines"):
        notes.append(f"{log.attrs['skipped_lines']} damaged line(s) in {path} were skipped")
    if log.attrs.get("skipped_nonfinite"):
        notes.append(
            f"{log.attrs['skipped_nonfinite']} row(s) of {path} with a NaN or infinite score were skipped "
            "(scores are finite numbers; the log was edited by hand)"
        )
    return notes


def shown_frame(log):
    """A log frame with every score rounded as participants see it (:func:`kit.scoring.metrics.shown_scores`).

    Examples
    --------
    >>> shown_frame(read_log("/nonexistent/practice.csv")).empty
    True
    """
    shown = log.copy()
    for column in _NUMERIC:
        shown[column] = shown[column].map(shown_scores).astype(float)
    for column in ("per_bin_public", "per_bin_private"):
        shown[column] = shown[column].map(shown_scores)
    shown.attrs.update(log.attrs)
    return shown


def _csv_line(values):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _number(value, decimals=None):
    """A score for the log: its repr (fixed ``decimals`` when given), or empty when missing or not finite.

    Examples
    --------
    >>> _number(1e-05), _number(1e-05, 5), _number(0.123456, 5)
    ('1e-05', '0.00001', '0.12346')
    """
    if value is None or not math.isfinite(float(value)):
        return ""
    if decimals is not None:
        return f"{float(value):.{decimals}f}"
    return repr(float(value))


def _per_bin_json(values, decimals=None):
    """Per-bin scores as a JSON object; numbers with fixed ``decimals`` when given (``0.00001``, not ``1e-05``)."""
    if decimals is None:
        return json.dumps(values, separators=(",", ":"))
    items = (f"{json.dumps(str(label))}:{_number(value, decimals) if _is_finite(value) else 'null'}"
             for label, value in values.items())
    return "{" + ",".join(items) + "}"


def _is_finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def log_text(entries, decimals=None):
    """The whole log file for ``entries``: header, then one line each (numbers and dicts written as text)."""
    return _csv_line(LOG_COLUMNS) + "".join(_log_line(_as_text(entry, decimals)) for entry in entries)


def _as_text(entry, decimals=None):
    """A log row with its scores as text (:func:`_number`) and its per-bin dicts as JSON."""
    out = dict(entry)
    for column in _NUMERIC:
        if not isinstance(out.get(column, ""), str):
            out[column] = _number(out[column], decimals)
    for column in ("per_bin_public", "per_bin_private"):
        if isinstance(out.get(column), dict):
            out[column] = _per_bin_json(out[column], decimals)
    out["rows"] = str(out.get("rows", ""))
    return out


def _log_line(entry):
    """One CSV line of the log for ``entry``; a UserError when a score is not finite.

    Text a participant chose has its control characters shown as escapes (a raw CR
    would split the row for line readers) and is neutralised for spreadsheets
    (:mod:`kit.safetext`); numbers are not, so a negative score stays a number.
    """
    _check_scores(entry)
    return _csv_line([
        spreadsheet_cell(printable(entry.get(column, ""))) if column in _TEXT else entry.get(column, "")
        for column in LOG_COLUMNS
    ])


def _check_scores(entry):
    """Refuse a row whose score columns are not finite numbers (empty is allowed, except Public)."""
    for column in _NUMERIC:
        value = entry.get(column, "")
        if value in ("", None) and column != "public":
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise UserError(
                f"refusing to log a {column} score of {value!r}: expected a finite number "
                "(the submission could not be scored finitely)"
            )


def _finite_scores(row):
    """True when the row's scores and per-bin values are finite (or absent, except Public)."""
    for column in _NUMERIC:
        text = row[column].strip()
        if not text and column != "public":
            continue
        try:
            if not math.isfinite(float(text)):
                return False
        except ValueError:
            return column != "public"  # not a number at all: read later as missing
    for column in ("per_bin_public", "per_bin_private"):
        for value in row[column].values():
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
                return False
    return True


def per_bin_for_log(details):
    """Per-bin RMSE for the log, with the top bin's same- and different-molecule halves when scored,
    and the RMSE per pair type and novelty band where the competition has them (:func:`breakdown_cells`).

    Examples
    --------
    >>> per_bin_for_log(None)
    {}
    >>> per_bin_for_log({"per_bin_rmse": {"0.0-0.1": 0.2}})
    {'0.0-0.1': 0.2}
    """
    return {} if not details else {**details["per_bin_rmse"], **details.get("top_bin_split", {}),
                                   **breakdown_cells(details)}
